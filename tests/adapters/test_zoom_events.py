"""Zoom's webhooks at POST /zoom/events on the real server, signed exactly as Zoom signs them:
the URL validation challenge, signatures (bad, missing, stale: 401 and nothing processed),
repeated deliveries recorded once, and what the bot draws from the events: the co-host not
there, a call running long, a meeting started when no call is booked, and the Keeping in
Touch log filled in from what Zoom saw."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from chatbot.effects import OpenForm
from chatbot.ports import FixedClock
from chatbot.storage.models import AuditEvent, Meeting, MeetingEvent
from chatbot.uow import Units
from tests.adapters.zoom_support import Zoomed, running
from tests.conftest import COHOST, HOST, action, snapshot
from tests.doubles.zoom import WEBHOOK_SECRET, meeting_event, person, webhook_headers

TUE_10 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
async def z(school: Units, clock: FixedClock) -> AsyncIterator[Zoomed]:
    async with running(school, clock) as zoomed:
        yield zoomed


async def made(z: Zoomed) -> tuple[int, dict[str, Any]]:
    booking_id = await z.book()
    await z.work()
    return booking_id, z.the_meeting()


def host_of(meeting: dict[str, Any]) -> dict[str, Any]:
    return person("Tess Teacher", HOST, host_id=meeting["host_id"], n=1)


COLIN = person("Colin Colleague", COHOST, n=2)
SAM = person("Sam T iPad", n=3)  # a family joining without a Zoom account: name only


async def events_stored(z: Zoomed) -> int:
    async with z.runtime.units.db.reading() as s:
        return int((await s.execute(select(func.count(MeetingEvent.id)))).scalar_one())


def texts(z: Zoomed, who: str) -> list[str]:
    return [str(m.to_json()) for m in z.messenger.to(who)]


# ----------------------------------------------------------------- the endpoint


async def test_url_validation_challenge_answered(z: Zoomed) -> None:
    body = {
        "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
        "event_ts": 1654503849680,
        "event": "endpoint.url_validation",
    }
    status, answer = await z.post_event(body)
    assert status == 200
    expected = hmac.new(
        WEBHOOK_SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256
    ).hexdigest()
    assert answer == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}


@pytest.mark.parametrize(
    "case",
    ["wrong_secret", "tampered_body", "no_signature", "no_timestamp", "stale", "future", "not_v0"],
)
async def test_bad_missing_and_stale_signatures_get_401_and_nothing_is_processed(
    z: Zoomed, case: str
) -> None:
    _, meeting = await made(z)
    body = json.dumps(meeting_event("meeting.started", meeting, TUE_10)).encode()
    now = int(time.time())
    headers = webhook_headers(body)
    if case == "wrong_secret":
        headers = webhook_headers(body, secret="not-the-secret")
    elif case == "tampered_body":
        body = body.replace(b"meeting.started", b"meeting.ended__")
    elif case == "no_signature":
        del headers["x-zm-signature"]
    elif case == "no_timestamp":
        del headers["x-zm-request-timestamp"]
    # Well outside Zoom's 5-minute window: ``now`` is whole seconds and the request is checked
    # a moment later, so a timestamp just past the window could fall back inside it.
    elif case == "stale":
        headers = webhook_headers(body, timestamp=now - 330)
    elif case == "future":
        headers = webhook_headers(body, timestamp=now + 330)
    else:
        headers["x-zm-signature"] = headers["x-zm-signature"].replace("v0=", "v1=")
    before = await snapshot(z.runtime.units.db)
    status, _ = await z.post_event(body, headers=headers)
    assert status == 401
    assert await snapshot(z.runtime.units.db) == before
    # The challenge is not answered without a signature either.
    challenge = json.dumps(
        {"event": "endpoint.url_validation", "payload": {"plainToken": "abc"}}
    ).encode()
    status, answer = await z.post_event(challenge, headers={"Content-Type": "application/json"})
    assert status == 401 and "encryptedToken" not in str(answer)


async def test_signed_but_malformed_events_get_400(z: Zoomed) -> None:
    _, meeting = await made(z)
    good = meeting_event("meeting.participant_joined", meeting, TUE_10, COLIN)
    broken: list[Any] = [
        b"not json",
        [1, 2],
        {"payload": {}},
        {"event": "meeting.started", "payload": "x"},
        {**good, "payload": {"object": {**good["payload"]["object"], "id": "12; DROP"}}},
        {**good, "payload": {"object": {**good["payload"]["object"], "participant": None}}},
    ]
    before = await snapshot(z.runtime.units.db)
    for body in broken:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, _ = await z.post_event(raw)
        assert status == 400, body
    assert await snapshot(z.runtime.units.db) == before


async def test_repeated_webhook_processed_once(z: Zoomed, clock: FixedClock) -> None:
    _, meeting = await made(z)
    body = meeting_event("meeting.participant_joined", meeting, TUE_10, host_of(meeting))
    for _ in range(3):  # Zoom retries a delivery it thinks failed
        status, _ = await z.post_event(body)
        assert status == 200
    assert await events_stored(z) == 1


async def test_events_of_other_meetings_are_not_stored(z: Zoomed) -> None:
    _, meeting = await made(z)
    other = {**meeting, "id": 99999999999, "uuid": "elsewhere=="}
    status, _ = await z.post_event(meeting_event("meeting.started", other, TUE_10))
    assert status == 200
    status, _ = await z.post_event({"event": "recording.completed", "payload": {}})
    assert status == 200
    assert await events_stored(z) == 0


# ----------------------------------------------------------------- what the bot draws from them


async def test_cohost_absent_tells_host_and_slt(z: Zoomed, clock: FixedClock) -> None:
    booking_id, meeting = await made(z)
    await z.post_event(meeting_event("meeting.started", meeting, TUE_10))
    await z.post_event(
        meeting_event("meeting.participant_joined", meeting, TUE_10, host_of(meeting))
    )
    await z.post_event(meeting_event("meeting.participant_joined", meeting, TUE_10, SAM))
    minutes = z.runtime.units.policy.zoom_cohost_absent_minutes
    clock.set(TUE_10 + timedelta(minutes=minutes, seconds=-1))
    await z.work()
    assert not any("Co-host not in the call" in t for t in texts(z, HOST))
    clock.set(TUE_10 + timedelta(minutes=minutes))
    await z.work()
    [host] = [t for t in texts(z, HOST) if "Co-host not in the call" in t]
    assert "Colin Colleague" in host
    [slt] = [t for t in texts(z, "slt") if "Co-host not in the call" in t]
    assert "Sam" not in slt and "ST" in slt  # initials only
    await z.work()
    assert len([t for t in texts(z, HOST) if "Co-host not in the call" in t]) == 1
    row = await z.meeting_row(booking_id)
    assert row.host_joined_at == TUE_10 and row.cohost_joined_at is None


async def test_cohost_who_joins_in_time_raises_nothing(z: Zoomed, clock: FixedClock) -> None:
    _, meeting = await made(z)
    await z.post_event(
        meeting_event("meeting.participant_joined", meeting, TUE_10, host_of(meeting))
    )
    await z.post_event(
        meeting_event("meeting.participant_joined", meeting, TUE_10 + timedelta(minutes=2), COLIN)
    )
    clock.set(TUE_10 + timedelta(minutes=30))
    await z.work()
    assert not any("Co-host not in the call" in t for t in texts(z, HOST) + texts(z, "slt"))


async def test_overlong_call_flagged_to_host_then_slt(z: Zoomed, clock: FixedClock) -> None:
    _, meeting = await made(z)
    await z.post_event(meeting_event("meeting.started", meeting, TUE_10))
    p = z.runtime.units.policy
    clock.set(TUE_10 + timedelta(minutes=p.max_call_minutes))
    await z.work()
    assert not any("Call running long" in t for t in texts(z, HOST))
    clock.set(TUE_10 + timedelta(minutes=p.max_call_minutes + 1))
    await z.work()
    [host] = [t for t in texts(z, HOST) if "Call running long" in t]
    assert f"longer than the {p.max_call_minutes} minutes" in host
    assert not any("Call running long" in t for t in texts(z, "slt"))
    clock.set(TUE_10 + timedelta(minutes=p.max_call_minutes + p.zoom_overrun_slt_minutes + 1))
    await z.work()
    assert len([t for t in texts(z, "slt") if "Call running long" in t]) == 1
    await z.work()
    assert len([t for t in texts(z, HOST) if "Call running long" in t]) == 1
    assert len([t for t in texts(z, "slt") if "Call running long" in t]) == 1


async def test_call_that_ended_long_is_flagged_when_zoom_says_so(z: Zoomed) -> None:
    _, meeting = await made(z)
    await z.post_event(meeting_event("meeting.started", meeting, TUE_10))
    await z.post_event(meeting_event("meeting.ended", meeting, TUE_10 + timedelta(minutes=45)))
    await z.runtime.dispatcher.drain()
    assert any("has run 45 minutes" in t for t in texts(z, HOST))
    assert any("has run 45 minutes" in t for t in texts(z, "slt"))


@pytest.mark.parametrize(
    ("started", "why"),
    [
        (datetime(2026, 12, 1, 19, 30, tzinfo=UTC), "outside school hours"),
        (datetime(2026, 12, 2, 10, 0, tzinfo=UTC), "on a day with no booking for it"),
    ],
)
async def test_meeting_started_at_odd_times_reported_to_slt(
    z: Zoomed, started: datetime, why: str
) -> None:
    _, meeting = await made(z)
    await z.post_event(meeting_event("meeting.started", meeting, started))
    await z.runtime.dispatcher.drain()
    [slt] = [t for t in texts(z, "slt") if "started unexpectedly" in t]
    assert why in slt
    assert meeting["join_url"] not in slt


async def test_meeting_started_on_time_is_not_reported(z: Zoomed) -> None:
    _, meeting = await made(z)
    await z.post_event(meeting_event("meeting.started", meeting, TUE_10 - timedelta(minutes=3)))
    await z.runtime.dispatcher.drain()
    assert not any("started unexpectedly" in t for t in texts(z, "slt"))


async def test_log_form_prefilled_from_the_events(z: Zoomed, clock: FixedClock) -> None:
    booking_id, meeting = await made(z)
    start = TUE_10 + timedelta(minutes=1)
    for body in (
        meeting_event("meeting.started", meeting, start),
        meeting_event("meeting.participant_joined", meeting, start, host_of(meeting)),
        meeting_event("meeting.participant_joined_waiting_room", meeting, start, SAM),
        meeting_event("meeting.participant_admitted", meeting, start, SAM),
        meeting_event("meeting.participant_joined", meeting, start, SAM),
        meeting_event("meeting.participant_joined", meeting, start, COLIN),
        meeting_event("meeting.participant_left", meeting, start + timedelta(minutes=17), COLIN),
        meeting_event(
            "meeting.participant_joined", meeting, start + timedelta(minutes=18), COLIN, 99
        ),
        meeting_event("meeting.ended", meeting, start + timedelta(minutes=19)),
    ):
        status, _ = await z.post_event(body)
        assert status == 200
    clock.set(TUE_10 + timedelta(minutes=30))
    [effect] = await z.runtime.bot.handle(action(HOST, "calllog.open", str(booking_id)))
    assert isinstance(effect, OpenForm)
    form = effect.form
    assert "started 10:01, ended 10:20 (19 minutes)" in form.intro
    assert form.input("minutes").initial == "19"
    attended = form.input("attended").initial
    assert attended == "Tess Teacher (host); Sam T iPad; Colin Colleague (co-host)"
    async with z.runtime.units.db.reading() as s:
        kinds = list(
            (await s.execute(select(MeetingEvent.kind).order_by(MeetingEvent.id))).scalars()
        )
        m = (await s.execute(select(Meeting))).scalar_one()
    assert kinds.count("waiting") == 1 and kinds.count("admitted") == 1 and "left" in kinds
    assert m.started_at == start and m.ended_at == start + timedelta(minutes=19)


async def test_no_passcode_or_link_in_any_log_line_or_channel_post(
    z: Zoomed, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole life of a meeting, failures included, logged at DEBUG by every logger: no
    join link, start link or passcode in a log line, a channel post or an audit row."""
    caplog.set_level(logging.DEBUG)
    z.zoom.forced = {"waiting_room": False}
    z.zoom.fail_next(1, 503, method="GET", path="/meetings/")
    booking_id, meeting = await made(z)
    clock.advance(minutes=5)
    await z.work()
    await z.runtime.bot.handle(action(HOST, "checklist.open", str(booking_id)))
    for body in (
        meeting_event("meeting.started", meeting, TUE_10 + timedelta(hours=9)),
        meeting_event("meeting.participant_joined", meeting, TUE_10, host_of(meeting)),
    ):
        await z.post_event(body)
    clock.set(TUE_10 + timedelta(minutes=50))
    await z.work()
    clock.set(TUE_10 - timedelta(hours=1))
    z.zoom.fail_next(1, 429, retry_after="5", method="DELETE")
    await z.runtime.bot.handle(action(HOST, "booking.cancel_confirm", str(booking_id)))
    await z.work()
    clock.advance(seconds=10)
    await z.work()
    assert z.zoom.meetings == {}

    secrets = [meeting["join_url"], meeting["start_url"], meeting["password"]]
    secrets += [s.split("?")[1] for s in secrets[:2]]  # the pwd= and zak= parts on their own
    logged = [r.getMessage() + (r.exc_text or "") + str(r.args) for r in caplog.records]
    assert len(logged) > 20  # really logging
    for secret in secrets:
        assert not [line for line in logged if secret in line], secret
    posts = [str(s.message.to_json()) for s in z.messenger.sent if s.kind == "role"]
    assert any("not as the policy requires" in p for p in posts)  # channels were posted to
    async with z.runtime.units.db.reading() as s:
        audit = str(list((await s.execute(select(AuditEvent.detail))).scalars()))
    for secret in secrets:
        assert not [p for p in posts if secret in p], secret
        assert secret not in audit
    # The host and co-host did get them.
    assert any(meeting["join_url"] in t for t in texts(z, HOST))
    assert any(meeting["password"] in t for t in texts(z, COHOST))
