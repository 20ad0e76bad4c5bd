"""Zoom meetings made by the bot, through the real server against a loopback Zoom: created
only once the co-host accepts, with every setting the policy asks for, read back and compared;
account settings checked; deleted when the call is called off; recovered after 401, 429, 5xx
and a crash between Zoom's answer and storing it, without a duplicate meeting."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from chatbot.mail import MailSetup
from chatbot.meetings.worker import LEASE
from chatbot.ports import FixedClock
from chatbot.storage.models import AuditEvent, Booking, CallJoin, MailOut, Meeting
from chatbot.ui import Message
from chatbot.uow import Units
from tests.adapters.zoom_support import Zoomed, running
from tests.conftest import COHOST, HOST, action, command
from tests.fakes import Sent

TUE_10 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # GOOD's start (GMT, so also UTC)


@pytest.fixture
async def z(school: Units, clock: FixedClock) -> AsyncIterator[Zoomed]:
    async with running(school, clock) as zoomed:
        yield zoomed


def flat(message: Message) -> str:
    return str(message.to_json())


def texts_to(z: Zoomed, who: str) -> list[str]:
    return [flat(m) for m in z.messenger.to(who)]


def all_posts(z: Zoomed) -> list[Sent]:
    return list(z.messenger.sent)


# ----------------------------------------------------------------- creation


async def test_meeting_created_after_acceptance_with_each_setting(z: Zoomed) -> None:
    booking_id = await z.book(confirm=False)
    await z.work()
    assert z.zoom.api_calls() == []  # awaiting the co-host: no meeting yet

    await z.runtime.bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    assert z.zoom.api_calls() == []  # the acceptance itself never calls Zoom
    await z.work()

    [create] = z.zoom.called("POST", "/meetings")
    assert create.path == f"/v2/users/{HOST}/meetings"
    body = create.body
    assert body["topic"] == f"Ash Lea School video call #{booking_id}"
    assert "Sam" not in str(body) and "Taylor" not in str(body)  # no pupil names
    assert body["type"] == 2
    assert body["start_time"] == "2026-12-01T10:00:00" and body["timezone"] == "Europe/London"
    assert body["duration"] == 20
    assert re.fullmatch(r"[0-9]{10}", body["password"])
    assert body["settings"] == {
        "waiting_room": True,
        "host_video": True,
        "participant_video": True,
        "join_before_host": False,
        "alternative_hosts": COHOST,
    }
    row = await z.meeting_row(booking_id)
    assert body["agenda"].endswith(row.marker)
    # Read back, and the host's account settings read before the call.
    assert [c.method + " " + c.path for c in z.zoom.api_calls()] == [
        f"POST /v2/users/{HOST}/meetings",
        f"GET /v2/meetings/{row.zoom_id}",
        f"GET /v2/users/{HOST}/settings",
    ]
    assert row.state == "ready" and row.mismatches == {"meeting": [], "account": []}
    meeting = z.the_meeting()
    join_url, passcode = meeting["join_url"], meeting["password"]
    for who in (HOST, COHOST):
        [ready] = [t for t in texts_to(z, who) if "Zoom meeting ready" in t]
        assert join_url in ready and passcode in ready
    assert "alternative host" in texts_to(z, COHOST)[-1]
    for post in z.messenger.to("slt"):
        assert join_url not in flat(post) and passcode not in flat(post)
    # The checklist shows them, to paste into the invitation.
    effects = await z.runtime.bot.handle(action(HOST, "checklist.open", str(booking_id)))
    assert join_url in str(effects) and passcode in str(effects)


async def test_confirmation_says_the_bot_makes_the_meeting(z: Zoomed) -> None:
    await z.book()
    await z.runtime.dispatcher.drain()
    [confirmation] = [t for t in texts_to(z, HOST) if "accepted" in t]
    assert "The bot is creating the Zoom meeting" in confirmation


async def test_call_without_cohost_gets_its_meeting_at_once(
    school: Units, clock: FixedClock
) -> None:
    policy = replace(school.policy, cohost_required_one_to_one=False)
    units = Units(school.db, policy, clock)
    async with running(units, clock) as z:
        await z.book(confirm=False, cohost="")
        await z.work()
        [create] = z.zoom.called("POST", "/meetings")
        assert create.body["settings"]["alternative_hosts"] == ""


# ----------------------------------------------------------------- read back


async def test_read_back_mismatch_reported_and_flagged_until_fixed(
    z: Zoomed, clock: FixedClock
) -> None:
    z.zoom.forced = {"waiting_room": False}  # locked off for the whole account
    booking_id = await z.book()
    await z.work()
    row = await z.meeting_row(booking_id)
    assert row.mismatches == {"meeting": ["waiting_room"], "account": []}
    [to_host] = [t for t in texts_to(z, HOST) if "not as the policy requires" in t]
    assert "waiting room on (waiting_room)" in to_host
    [to_slt] = [t for t in texts_to(z, "slt") if "not as the policy requires" in t]
    assert "waiting room on (waiting_room)" in to_slt
    assert z.the_meeting()["password"] not in to_slt
    # Flagged where the host looks.
    effects = await z.runtime.bot.handle(command(HOST, "my-calls"))
    assert "Zoom settings need fixing" in str(effects)
    effects = await z.runtime.bot.handle(action(HOST, "checklist.open", str(booking_id)))
    assert "Zoom settings to fix" in str(effects)

    # IT unlocks it; shortly before the call the bot asks again and reads back.
    z.zoom.forced = {}
    clock.set(TUE_10 - timedelta(minutes=z.runtime.units.policy.checklist_lead_minutes))
    await z.work()
    row = await z.meeting_row(booking_id)
    assert row.mismatches == {"meeting": [], "account": []} and row.prechecked_at is not None
    assert any("now has the school's settings" in t for t in texts_to(z, HOST))
    assert any("now has the school's settings" in t for t in texts_to(z, "slt"))
    effects = await z.runtime.bot.handle(command(HOST, "my-calls"))
    assert "Zoom settings need fixing" not in str(effects)


async def test_settings_read_again_shortly_before_the_call(z: Zoomed, clock: FixedClock) -> None:
    booking_id = await z.book()
    await z.work()
    row = await z.meeting_row(booking_id)
    lead = timedelta(minutes=z.runtime.units.policy.checklist_lead_minutes)
    assert row.due_at == TUE_10 - lead  # nothing to do until then
    before = len(z.zoom.api_calls())
    sent = len(z.messenger.sent)
    clock.set(TUE_10 - lead - timedelta(seconds=1))
    await z.work()
    assert len(z.zoom.api_calls()) == before
    clock.set(TUE_10 - lead)
    await z.work()
    assert [c.method + " " + c.path for c in z.zoom.api_calls()[before:]] == [
        f"GET /v2/meetings/{row.zoom_id}",
        f"GET /v2/users/{HOST}/settings",
    ]
    # The checklist goes out then; the join details messages are left alone (nothing changed).
    new = z.messenger.sent[sent:]
    assert [s.kind for s in new] == ["staff"] and "Safety checklist" in new[0].message.text
    row = await z.meeting_row(booking_id)
    assert row.prechecked_at == clock.now() and row.due_at is None
    await z.work()
    assert len(z.zoom.api_calls()) == before + 2


async def test_alternative_host_refused_meeting_made_without(z: Zoomed) -> None:
    z.zoom.refuse_alternative_hosts = True
    booking_id = await z.book()
    await z.work()
    creates = z.zoom.called("POST", "/meetings")
    assert [c.status for c in creates] == [400, 201]
    assert creates[1].body["settings"]["alternative_hosts"] == ""
    row = await z.meeting_row(booking_id)
    assert row.alt_host_refused and row.state == "ready"
    assert any("make them co-host" in t for t in texts_to(z, HOST))
    await z.work()
    assert len(z.zoom.called("POST", "/meetings")) == 2  # not asked again and again


# ----------------------------------------------------------------- account settings


async def test_user_settings_that_break_the_policy_reported_with_how_to_fix(z: Zoomed) -> None:
    z.zoom.users[HOST].update(who_can_share_screen="all", allow_participants_to_rename=True)
    booking_id = await z.book()
    await z.work()
    [told] = [t for t in texts_to(z, HOST) if "Your Zoom account breaks" in t]
    assert "Who can share?: Host Only" in told
    assert "Allow participants to rename themselves: off" in told
    assert z.zoom.called("PATCH", "/settings") == []  # the policy file does not allow it
    row = await z.meeting_row(booking_id)
    assert row.mismatches == {"meeting": [], "account": ["screen_sharing", "rename"]}
    assert not any("Your Zoom account" in t for t in texts_to(z, "slt"))


async def test_user_settings_fixed_by_the_bot_when_the_policy_allows(
    school: Units, clock: FixedClock
) -> None:
    units = Units(school.db, replace(school.policy, zoom_fix_user_settings=True), clock)
    async with running(units, clock) as z:
        z.zoom.users[HOST].update(allow_participants_to_rename=True)
        booking_id = await z.book()
        await z.work()
        [patch] = z.zoom.called("PATCH", "/settings")
        assert patch.path == f"/v2/users/{HOST}/settings"
        assert patch.body == {"in_meeting": {"allow_participants_to_rename": False}}
        assert z.zoom.users[HOST]["allow_participants_to_rename"] is False
        [told] = [t for t in texts_to(z, HOST) if "I changed your Zoom settings" in t]
        assert "rename themselves" in told
        row = await z.meeting_row(booking_id)
        assert row.mismatches == {"meeting": [], "account": []}


# ----------------------------------------------------------------- changes follow the booking


async def test_cancel_deletes_the_meeting_and_its_link(z: Zoomed) -> None:
    booking_id = await z.book()
    await z.work()
    meeting = z.the_meeting()
    effects = await z.runtime.bot.handle(action(HOST, "booking.cancel_confirm", str(booking_id)))
    assert "Cancelled" in str(effects)
    assert z.zoom.called("DELETE") == []  # not inside the click
    await z.work()
    [delete] = z.zoom.called("DELETE")
    assert delete.path == f"/v2/meetings/{meeting['id']}"
    assert z.zoom.meetings == {}
    row = await z.meeting_row(booking_id)
    assert row.state == "deleted"
    # The messages that carried the link now say it no longer works.
    edits = [s for s in z.messenger.sent if s.kind == "update"]
    assert any("no longer works" in flat(s.message) for s in edits)
    await z.work()
    assert len(z.zoom.called("DELETE")) == 1


async def test_rebooked_time_updates_the_meeting(z: Zoomed) -> None:
    """A booking's new time (or co-host) reaches Zoom as one update, read back again."""
    from chatbot.meetings.service import booking_changed

    booking_id = await z.book()
    await z.work()
    async with z.runtime.units.write() as u:
        b = await u.session.get(Booking, booking_id)
        assert b is not None
        b.starts_at += timedelta(hours=1)
        b.ends_at += timedelta(hours=1)
        await booking_changed(u, b)
    await z.work()
    [patch] = z.zoom.called("PATCH", "/meetings/")
    assert patch.body["start_time"] == "2026-12-01T11:00:00"
    assert z.the_meeting()["start_time"] == "2026-12-01T11:00:00Z"
    row = await z.meeting_row(booking_id)
    assert row.state == "ready" and row.mismatches == {"meeting": [], "account": []}
    assert any("Zoom meeting updated" in flat(s.message) for s in z.messenger.sent)
    assert len(z.zoom.called("POST", "/meetings")) == 1


async def test_declined_call_never_gets_a_meeting(z: Zoomed) -> None:
    booking_id = await z.book(confirm=False)
    await z.runtime.bot.handle(action(COHOST, "cohost.decline", str(booking_id)))
    await z.work()
    assert z.zoom.api_calls() == []


# ----------------------------------------------------------------- failures


async def test_token_cached_then_refreshed_once_when_it_expires_mid_run(z: Zoomed) -> None:
    booking_id = await z.book()
    await z.work()
    assert z.zoom.token_requests == 1  # one token for the create, read-back and settings
    z.zoom.expire_tokens()
    await z.runtime.bot.handle(action(HOST, "booking.cancel_confirm", str(booking_id)))
    await z.work()
    deletes = z.zoom.called("DELETE")
    assert [c.status for c in deletes] == [401, 204]
    assert deletes[0].token != deletes[1].token
    assert z.zoom.token_requests == 2
    assert z.zoom.meetings == {}


async def test_token_renewed_before_it_expires(school: Units, clock: FixedClock) -> None:
    async with running(school, clock) as z:
        z.zoom.expires_in = 30  # less than the bot's safety margin: never reused
        await z.book()
        await z.work()
        assert z.zoom.token_requests == 3
        assert all(c.status < 300 for c in z.zoom.api_calls())


async def test_429_and_5xx_recovered_without_loss_or_duplicates(
    z: Zoomed, clock: FixedClock
) -> None:
    z.zoom.fail_next(1, 429, retry_after="30", method="POST")
    booking_id = await z.book()
    await z.work()
    row = await z.meeting_row(booking_id)
    assert row.state == "creating" and row.zoom_id is None
    assert row.due_at == clock.now() + timedelta(seconds=30)  # Zoom's Retry-After
    assert z.zoom.meetings == {}

    clock.advance(seconds=29)
    await z.work()
    assert len(z.zoom.called("POST", "/meetings")) == 1  # not before Zoom said

    clock.advance(seconds=1)
    z.zoom.fail_next(1, 503, method="GET", path="/meetings")  # the restart's look-up fails
    await z.work()
    row = await z.meeting_row(booking_id)
    assert row.attempts == 2 and (row.last_error or "").startswith("zoom_503")
    clock.advance(seconds=60)
    await z.work()
    assert len(z.zoom.meetings) == 1
    row = await z.meeting_row(booking_id)
    assert row.state == "ready" and row.attempts == 0
    assert [c.status for c in z.zoom.called("POST", "/meetings")] == [429, 201]
    [ready] = [t for t in texts_to(z, HOST) if "Zoom meeting ready" in t]
    assert z.the_meeting()["join_url"] in ready
    assert not any("No Zoom meeting yet" in t for t in texts_to(z, HOST))  # not worth a word


async def test_daily_limit_reported_clearly_and_retried_after_it(
    z: Zoomed, clock: FixedClock
) -> None:
    z.zoom.fail_next(1, 429, method="POST", daily=True)  # no Retry-After: midnight UTC
    booking_id = await z.book()
    await z.work()
    [host] = [t for t in texts_to(z, HOST) if "No Zoom meeting yet" in t]
    assert "daily limit" in host and "100 a day" in host
    [slt] = [t for t in texts_to(z, "slt") if "No Zoom meeting yet" in t]
    assert "daily limit" in slt
    row = await z.meeting_row(booking_id)
    assert row.due_at is not None and row.due_at > clock.now() + timedelta(minutes=1)
    clock.set(row.due_at)
    await z.work()
    assert len(z.zoom.meetings) == 1


async def test_other_4xx_reported_and_not_retried(z: Zoomed, clock: FixedClock) -> None:
    del z.zoom.users[HOST]  # the host's school email is not a Zoom user
    booking_id = await z.book()
    await z.work()
    row = await z.meeting_row(booking_id)
    assert row.state == "failed" and row.due_at is None and row.last_error == "zoom_404_1001"
    [host] = [t for t in texts_to(z, HOST) if "No Zoom meeting yet" in t]
    assert "not a user of the school's Zoom account" in host
    assert any("No Zoom meeting yet" in t for t in texts_to(z, "slt"))
    calls = len(z.zoom.api_calls())
    for _ in range(3):
        clock.advance(minutes=30)
        await z.work()
    assert len(z.zoom.api_calls()) == calls


async def test_change_refused_by_zoom_reported_as_such(z: Zoomed) -> None:
    from chatbot.meetings.service import booking_changed

    booking_id = await z.book()
    await z.work()
    z.zoom.fail_next(2, 400, method="PATCH")  # refused, with the co-host and without
    async with z.runtime.units.write() as u:
        b = await u.session.get(Booking, booking_id)
        assert b is not None
        b.starts_at += timedelta(hours=1)
        b.ends_at += timedelta(hours=1)
        await booking_changed(u, b)
    await z.work()
    [host] = [t for t in texts_to(z, HOST) if "Zoom meeting not brought up to date" in t]
    assert "Zoom refused the request (zoom_400_300)" in host
    assert any("Zoom meeting not brought up to date" in t for t in texts_to(z, "slt"))
    assert not any("No Zoom meeting yet" in t for t in texts_to(z, HOST))
    row = await z.meeting_row(booking_id)
    assert row.state == "failed" and row.due_at is None


async def test_killed_between_create_and_store_no_duplicate_meeting(
    z: Zoomed, clock: FixedClock
) -> None:
    """The worker dies after Zoom made the meeting and before the bot stored its answer;
    another worker takes the row over when the lease runs out and finds that meeting by the
    marker it carries, instead of making a second one."""
    released = z.zoom.hold("POST")
    booking_id = await z.book()
    job, _ = z.runtime.jobs()["zoom"]
    first = asyncio.create_task(job())
    await asyncio.wait_for(z.zoom.reached["POST"].wait(), 10)
    assert len(z.zoom.meetings) == 1  # made at Zoom...
    first.cancel()  # ...and the process dies before storing the answer
    with pytest.raises(asyncio.CancelledError):
        await first
    released.set()
    row = await z.meeting_row(booking_id)
    assert row.state == "creating" and row.zoom_id is None

    await z.work()  # the lease still holds: nobody touches it
    assert len(z.zoom.called("POST", "/meetings")) == 1
    clock.advance(seconds=LEASE.total_seconds() + 1)
    await z.work()
    assert len(z.zoom.meetings) == 1 and len(z.zoom.called("POST", "/meetings")) == 1
    [listing] = z.zoom.called("GET", f"/users/{HOST}/meetings")
    assert listing.query["type"] == "scheduled"
    row = await z.meeting_row(booking_id)
    assert row.state == "ready" and row.zoom_id == str(z.the_meeting()["id"])
    assert len([t for t in texts_to(z, HOST) if "Zoom meeting ready" in t]) == 1
    async with z.runtime.units.db.reading() as s:
        actions = list((await s.execute(select(AuditEvent.action))).scalars())
    assert "meeting.adopt" in actions and "meeting.create" not in actions


async def test_worker_that_outlives_its_lease_lets_go(
    z: Zoomed, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Zoom answers a create so slowly that the lease runs out: a second worker takes over
    and adopts the meeting; the first, when its answer finally comes, stores nothing."""
    released = z.zoom.hold("POST")
    booking_id = await z.book()
    job, _ = z.runtime.jobs()["zoom"]
    slow = asyncio.create_task(job())
    await asyncio.wait_for(z.zoom.reached["POST"].wait(), 10)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    z.zoom.answer_at_once("POST")  # the second worker's are not held
    await z.work()
    released.set()
    await slow
    await z.runtime.dispatcher.drain()
    assert len(z.zoom.meetings) == 1 and len(z.zoom.called("POST", "/meetings")) == 1
    row = await z.meeting_row(booking_id)
    assert row.state == "ready" and row.claimed_by is None
    assert len([t for t in texts_to(z, HOST) if "Zoom meeting ready" in t]) == 1
    assert "claim lost" in caplog.text


async def test_meeting_deleted_in_zoom_is_made_again(z: Zoomed, clock: FixedClock) -> None:
    booking_id = await z.book()
    await z.work()
    z.zoom.meetings.clear()  # the host deleted it in Zoom
    clock.set(TUE_10 - timedelta(minutes=z.runtime.units.policy.checklist_lead_minutes))
    await z.work()
    assert len(z.zoom.meetings) == 1
    row = await z.meeting_row(booking_id)
    assert row.state == "ready" and row.zoom_id == str(z.the_meeting()["id"])


async def test_one_meeting_per_booking_row(z: Zoomed) -> None:
    booking_id = await z.book()
    await z.work()
    async with z.runtime.units.db.reading() as s:
        count = (
            await s.execute(select(func.count(Meeting.id)).where(Meeting.booking_id == booking_id))
        ).scalar_one()
    assert count == 1


async def test_every_zoom_message_renders_on_slack_and_teams(z: Zoomed, clock: FixedClock) -> None:
    """The meeting's messages (join details, mismatches, account settings, failures, alerts)
    as Slack and Teams would draw them: valid Block Kit, and a card for Teams."""
    from adapters.slack.blocks import message_payload
    from adapters.teams.cards import message_card
    from tests.adapters.test_slack_render import check_message

    z.zoom.forced = {"join_before_host": True}
    z.zoom.users[HOST].update(allow_participants_to_rename=True)
    z.zoom.refuse_alternative_hosts = True
    booking_id = await z.book()
    await z.work()
    await z.runtime.bot.handle(action(HOST, "booking.cancel_confirm", str(booking_id)))
    await z.work()
    messages = [s.message for s in z.messenger.sent]
    assert len(messages) >= 8
    for message in messages:
        check_message(message_payload(message), message.text[:40])
        assert message_card(message)["body"]


async def test_families_are_invited_with_the_meetings_own_join_details(
    school: Units, clock: FixedClock
) -> None:
    """Zoom and email together: once the bot has made and checked the meeting, each family's
    invitation carries that meeting's link and passcode, and the host is not asked for them."""
    with_mail = replace(school, mail=MailSetup(sender="office@school.test"))
    async with running(with_mail, clock) as z:
        booking_id = await z.book()
        async with z.runtime.units.db.reading() as s:
            assert (await s.execute(select(MailOut))).scalars().all() == []  # nothing yet
        await z.work()
        meeting = z.the_meeting()
        async with z.runtime.units.db.reading() as s:
            [invite] = (await s.execute(select(MailOut).where(MailOut.kind == "invite"))).scalars()
            join = await s.get(CallJoin, booking_id)
        assert join is not None and join.source == "zoom"
        raw = invite.raw.decode("utf-8", "replace")
        assert invite.recipients == "parent.sam@home.test"
        assert meeting["password"] in raw and str(meeting["id"]) in raw
        asked = [m for m in z.messenger.to(HOST) if "invite.details" in str(m.to_json())]
        assert asked == []  # Zoom supplied the join details: the host is not asked
