"""Slack end to end over HTTP: /book-call -> modal -> submission -> co-host DM (outbox) ->
Accept -> SLT channel post; refusals as field errors; App Home; pupil search with 1000 pupils.

Every Web API call the adapter makes is checked against Block Kit limits at the end of a test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from chatbot.policy import default_policy
from chatbot.ports import FixedClock
from chatbot.roster import importer as roster
from chatbot.storage.models import Booking
from chatbot.uow import Units
from tests.adapters.test_slack_render import check_call, check_message, check_view
from tests.adapters.test_slack_support import Slack, payload, running

GOOD: dict[str, Any] = {
    "pupils": ["A123456789012"],
    "kind": "one_to_one",
    "date": "2026-12-01",
    "start": "10:00",
    "duration": "20",
    "cohost": "U0COLLEAG",
    "platform": "Zoom",
    "plan": "Sam shares his reading book.",
}


@pytest.fixture
async def slack(school: Units) -> AsyncIterator[Slack]:
    async with running(school) as s:
        yield s
        for call in s.api.calls:
            check_call(call.method, call.body)
        for body in s.api.responses:
            check_message(body, "response_url")


async def bookings(core: Units) -> int:
    async with core.db.transaction() as s:
        return int((await s.execute(select(func.count(Booking.id)))).scalar_one())


async def book(slack: Slack, values: dict[str, Any] | None = None) -> tuple[int, Any]:
    view = await slack.open_form("U0TEACHER", "/book-call")
    return await slack.submit("U0TEACHER", view, values or GOOD)


async def test_full_booking_from_command_to_slt_post(slack: Slack) -> None:
    api = slack.api
    status, body, fields = await slack.command("U0TEACHER", "/book-call")
    assert status == 200 and body is None  # empty ack; the modal opens with the trigger id
    [opened] = api.called("views.open")
    assert opened["trigger_id"] == fields["trigger_id"]
    view = opened["view"]
    assert view["callback_id"] == "book_call" and view["title"]["text"] == "Book a video call"
    check_view(view)

    status, options = await slack.suggest("U0TEACHER", "pupils", "sa")
    assert status == 200
    assert [o["value"] for o in options["options"]] == ["A123456789012"]

    status, body = await slack.submit("U0TEACHER", view, GOOD)
    assert status == 200 and body is None, body  # empty ack closes the modal
    assert await bookings(slack.runtime.units) == 1
    [dm] = slack.posts_to("U0TEACHER")
    assert "Waiting for Colin Colleague" in dm["text"]
    assert {"user": "U0COLLEAG"} in api.called("users.info")  # co-host picker -> email

    report = await slack.runtime.dispatcher.drain()
    assert report.delivered == 1
    assert api.called("users.lookupByEmail") == [{"email": "colleague@school.test"}]
    [request] = slack.posts_to("U0COLLEAG")
    assert request["_channel"] == "D0COLLEAG"
    ids = [
        e["action_id"] for b in request["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert ids == ["cohost.accept#0", "cohost.decline#1"]
    assert slack.posts_to("C0SLT") == []  # not confirmed yet

    status, body, click = await slack.click(
        "U0COLLEAG", request, "cohost.accept", request["_channel"], request["_ts"]
    )
    assert status == 200
    [update] = api.called("chat.update")
    assert (update["channel"], update["ts"]) == (request["_channel"], request["_ts"])
    assert not any(b["type"] == "actions" for b in update["blocks"])  # no stale buttons
    said = [r for r in api.responses if r["_key"] == f"act-{click['trigger_id']}"]
    assert said and said[0]["response_type"] == "ephemeral"

    await slack.runtime.dispatcher.drain()
    [slt] = slack.posts_to("C0SLT")
    assert "Video call booked" in str(slt["blocks"])
    assert "ST" in str(slt["blocks"]) and "Taylor" not in str(slt)  # initials only for SLT
    assert any("accepted" in m["text"] for m in slack.posts_to("U0TEACHER"))


REFUSALS = [
    ("school_day", {"date": "2026-12-05"}, "date", "school day"),
    ("school_hours", {"start": "07:30"}, "start", "outside school hours"),
    ("ends_after_hours", {"start": "14:50"}, "duration", "after school hours"),
    ("length", {"duration": "45"}, "duration", "at most 30 minutes"),
    ("no_consent", {"pupils": ["C123456789012"]}, "pupils", "consent"),
    ("unknown_pupil", {"pupils": ["Z999999999999"]}, "pupils", "Not on the pupil roster"),
    ("no_pupil", {"pupils": []}, "pupils", "at least one pupil"),
    ("one_to_one_many", {"pupils": ["A123456789012", "B123456789012"]}, "kind", "group"),
    ("no_cohost", {"cohost": ""}, "cohost", "second member of staff"),
    ("cohost_self", {"cohost": "U0TEACHER"}, "cohost", "different member of staff"),
    ("cohost_off_roster", {"cohost": "U0STRANGE"}, "cohost", "not on the staff roster"),
    ("cohost_bot", {"cohost": "U0HELPBOT"}, "cohost", "not on the staff roster"),
    ("platform", {"platform": "Skype"}, "platform", "not agreed"),
    ("plan", {"plan": ""}, "plan", "plan"),
    ("bad_time", {"start": "25:00"}, "start", "not a time"),
]


@pytest.mark.parametrize(
    ("case", "change", "block", "words"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
async def test_each_refusal_is_an_error_on_its_block(
    slack: Slack, case: str, change: dict, block: str, words: str
) -> None:
    status, body = await book(slack, {**GOOD, **change})
    assert status == 200
    assert body["response_action"] == "errors", body
    assert block in body["errors"], body
    assert words.lower() in body["errors"][block].lower(), body["errors"]
    view = slack.opened()
    shown = {b["block_id"] for b in view["blocks"] if b["type"] == "input"}
    assert set(body["errors"]) <= shown
    assert await bookings(slack.runtime.units) == 0
    assert slack.posts_to("U0TEACHER") == []


async def test_weekly_limit_and_short_notice_refused(slack: Slack, clock: FixedClock) -> None:
    assert (await book(slack))[1] is None
    status, body = await book(slack, {**GOOD, "date": "2026-12-03", "cohost": "U0OTHER"})
    assert body["response_action"] == "errors" and "limit" in body["errors"]["pupils"]
    clock.set(clock.now().replace(hour=9, minute=30))
    status, body = await book(
        slack,
        {
            **GOOD,
            "pupils": ["B123456789012"],
            "date": "2026-11-30",
            "start": "10:00",
            "cohost": "U0OTHER",
        },
    )
    assert "ahead" in body["errors"]["start"], body
    assert await bookings(slack.runtime.units) == 1


async def test_user_not_on_roster_cannot_book(slack: Slack) -> None:
    status, body, _ = await slack.command("U0STRANGE", "/book-call")
    assert status == 200 and body["response_type"] == "ephemeral"
    assert "not on the school's staff roster" in body["text"]
    check_message(body)
    assert slack.api.called("views.open") == []
    status, options = await slack.suggest("U0STRANGE", "pupils", "")
    assert options == {"options": []}  # no pupil names for people off the roster


async def test_my_calls_and_app_home(slack: Slack) -> None:
    await book(slack)
    status, body, _ = await slack.command("U0TEACHER", "/my-calls")
    assert status == 200 and body["response_type"] == "ephemeral"
    check_message(body)
    assert "Your calls" in str(body["blocks"])

    status, _ = await slack.event(payload("event_app_home_opened.json"))
    assert status == 200
    [home] = slack.api.called("views.publish")
    assert home["user_id"] == "U0TEACHER" and home["view"]["type"] == "home"
    check_view(home["view"])
    assert "waiting for co-host" in str(home["view"]["blocks"])

    # Cancelling from the Home tab refreshes the Home tab.
    booking_id = next(
        e["value"]
        for b in home["view"]["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith("booking.cancel")
    )
    status, _ = await slack.click_home("U0TEACHER", home["view"], "booking.cancel", booking_id)
    assert status == 200
    publishes = slack.api.called("views.publish")  # first it asks, in the Home tab itself
    assert len(publishes) == 2 and "Cancel this call?" in str(publishes[-1]["view"]["blocks"])
    check_view(publishes[-1]["view"])
    status, _ = await slack.click_home(
        "U0TEACHER", publishes[-1]["view"], "booking.cancel_confirm", booking_id
    )
    assert status == 200
    publishes = slack.api.called("views.publish")
    assert len(publishes) == 3 and "no upcoming calls" in str(publishes[-1]["view"]["blocks"])
    assert "Cancelled" in str(slack.posts_to("U0TEACHER")[-1]["text"])


async def test_consent_form_with_pupil_search(slack: Slack) -> None:
    view = await slack.open_form("U0TEACHER", "/consent")
    assert view["callback_id"] == "consent"
    els = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
    assert els["pupil"] == "external_select"
    status, options = await slack.suggest("U0TEACHER", "pupil", "noah")
    assert [o["value"] for o in options["options"]] == ["C123456789012"]
    status, body = await slack.submit(
        "U0TEACHER",
        view,
        {
            "pupil": "C123456789012",
            "parent_email": "parent.noah@home.test",
            "received_date": "2026-11-29",
            "received_time": "18:30",
            "evidence": "<CAF1234@mail.home.test> Re: video calls",
        },
    )
    assert status == 200 and body is None, body
    assert "Recorded written consent" in slack.posts_to("U0TEACHER")[-1]["text"]


async def test_thousand_pupils_stay_searchable(school: Units) -> None:
    rows = ["upn,forename,surname,class,parent_email"]
    rows += [
        f"P{n:012d},Pupil{n:04d},Surname{n:04d},Year {n % 6 + 1},p{n}@home.test"
        for n in range(1000)
    ]
    await roster.import_pupils(school, "\n".join(rows) + "\n")
    async with running(school) as slack:
        view = await slack.open_form("U0TEACHER", "/book-call")
        check_view(view)
        assert len(str(view)) < 10_000  # no pupil list inside the modal
        status, options = await slack.suggest("U0TEACHER", "pupils", "")
        assert status == 200 and 0 < len(options["options"]) <= 100
        status, options = await slack.suggest("U0TEACHER", "pupils", "pupil0999")
        assert [o["value"] for o in options["options"]] == ["P000000000999"]


async def test_checklist_buttons_are_shortened_at_a_word(slack: Slack) -> None:
    """Slack allows 75 characters on a button: a longer checklist label is shortened at a word
    boundary with "…", never cut mid-word."""
    await book(slack)
    await slack.event(payload("event_app_home_opened.json"))
    [home] = slack.api.called("views.publish")
    status, _ = await slack.click_home("U0TEACHER", home["view"], "checklist.open")
    assert status == 200
    checklist = slack.posts_to("U0TEACHER")[-1]
    texts = [
        e["text"]["text"]
        for b in checklist["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    labels = [f"Done: {i.label}" for i in default_policy().checklist]
    assert len(texts) == len(labels)
    shortened = [t for t in texts if t not in labels]
    assert shortened, "the default checklist has labels longer than Slack allows"
    for text in shortened:
        assert len(text) <= 75 and text.endswith("…"), text
        stem = text[:-1]
        [full] = [label for label in labels if label.startswith(stem)]
        assert full[len(stem)] in " ,;:-", f"{text!r} cuts a word of {full!r}"
