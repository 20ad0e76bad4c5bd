"""Text from people is shown as text on Slack, Teams and the console (issue #9).

A school imports rosters whose names and class carry Slack mentions and links, markdown links,
bold and italic markup, a terminal hyperlink (OSC 8), a clear-screen sequence and a bidi
override; a plan, a concern and a DSL note carry the same. Each surface is driven through its
real adapter: every co-host request, SLT notice, DSL alert, details view, receipt, App Home
and my-calls it sends is checked with tests/adapters/text_checks.py, and the strings are
shown to have arrived, as text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

import pytest

from adapters.console.app import Console
from adapters.server import runtime_for
from adapters.slack.blocks import escape
from chatbot.consent import service as consent
from chatbot.roster import importer as roster
from chatbot.uow import Units
from tests.adapters.test_slack_support import payload, running
from tests.adapters.test_teams_adapter import (
    BOOKING,
    DSL_CHANNEL,
    PEOPLE,
    SLT_CHANNEL,
    start,
    stop,
)
from tests.adapters.text_checks import (
    CONTROLS,
    console_findings,
    slack_findings,
    teams_findings,
)
from tests.conftest import MONDAY_8AM
from tests.doubles.bot_connector import Call, LoopbackConnector

OSC8_LINK = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07"
CLEAR_SCREEN = "\x1b[2J"
EVIL = " ".join(
    (
        "<!channel>",
        "<!here>",
        "<@U123>",
        "<https://evil.example|click>",
        "[click](https://evil.example)",
        "**bold**",
        "_x_",
        OSC8_LINK,
        CLEAR_SCREEN,
        "\u202eexe.txt",
    )
)
UPN = "A123456789012"
HOST_NAME = "<!channel> **bold** <https://evil.example|click> _x_"
COHOST_NAME = "[click](https://evil.example) <@U123>" + CLEAR_SCREEN
DSL_NAME = "<!here> " + OSC8_LINK
STAFF = (
    ("teacher@school.test", "<!channel> **bold**", "<https://evil.example|click> _x_", "staff"),
    ("colleague@school.test", "[click](https://evil.example)", "<@U123>" + CLEAR_SCREEN, "staff"),
    ("slt@school.test", "Sally", "Leader", "staff;slt"),
    ("dsl@school.test", "<!here>", OSC8_LINK, "staff;dsl"),
    ("head@school.test", "Hal", "Head", "staff;slt;admin"),
)
PUPIL = (
    UPN,
    "<!here> [click](https://evil.example)",
    OSC8_LINK,
    "<@U123> **b** _x_ \u202egnp.exe",
    "parent@home.test",
)


def no_controls(text: str) -> str:
    """``text`` as it may be shown: without what a terminal would act on."""
    return CONTROLS.sub("", text)


def _csv(header: tuple[str, ...], *rows: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture
async def evil_school(core: Units) -> Units:
    checked = ("2024-09-02", "2025-09-01")  # DBS and training on record: no SLT warnings
    staff = await roster.import_staff(
        core,
        _csv(
            ("email", "forename", "surname", "roles", "dbs_checked", "safeguarding_training"),
            *(row + checked for row in STAFF),
        ),
    )
    pupils = await roster.import_pupils(
        core, _csv(("upn", "forename", "surname", "class", "parent_email"), PUPIL)
    )
    assert (staff.created, staff.rejected, pupils.created, pupils.rejected) == (5, [], 1, [])
    async with core.write() as u:
        res = await consent.grant(
            u,
            upn=UPN,
            parent_email="parent@home.test",
            received_at=MONDAY_8AM,
            evidence_kind="message_id",
            evidence="<abc@home.test> Re: video calls",
            actor=None,
        )
    assert not res.errors
    return core


# ----- Slack -----

SLACK_BOOKING = {
    "pupils": [UPN],
    "kind": "one_to_one",
    "date": "2026-12-01",
    "start": "10:00",
    "duration": "20",
    "cohost": "U0COLLEAG",
    "platform": "Zoom",
    "plan": EVIL,
}


def mrkdwn_texts(body: dict[str, Any]) -> list[str]:
    """The top-level text and every mrkdwn text of a Slack body or view."""
    found = [body["text"]] if isinstance(body.get("text"), str) else []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if v.get("type") == "mrkdwn":
                found.append(v["text"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(body)
    return found


def shows(body: dict[str, Any], text: str) -> bool:
    """``text`` is in a mrkdwn field of ``body``, escaped as Slack shows it literally."""
    return any(escape(no_controls(text)) in t for t in mrkdwn_texts(body))


async def test_slack_shows_peoples_text_as_text(evil_school: Units) -> None:
    async with running(evil_school) as slack:
        acks: list[Any] = []
        drain = slack.runtime.dispatcher.drain

        # Booking: the teacher's receipt, the co-host request, the SLT notice.
        view = await slack.open_form("U0TEACHER", "/book-call")
        status, options = await slack.suggest("U0TEACHER", "pupils", "")
        acks.append(options)
        assert status == 200 and options["options"][0]["value"] == UPN
        status, body = await slack.submit("U0TEACHER", view, SLACK_BOOKING)
        assert status == 200 and body is None, body
        [receipt] = slack.posts_to("U0TEACHER")
        await drain()
        [request] = slack.posts_to("U0COLLEAG")
        status, _, _ = await slack.click(
            "U0COLLEAG", request, "cohost.accept", request["_channel"], request["_ts"]
        )
        await drain()
        [slt] = slack.posts_to("C0SLT")

        # my-calls for host and co-host, and the teacher's App Home.
        for user in ("U0TEACHER", "U0COLLEAG"):
            status, body, _ = await slack.command(user, "/my-calls")
            assert status == 200 and body["response_type"] == "ephemeral"
            acks.append(body)
        status, _ = await slack.event(payload("event_app_home_opened.json"))
        [home] = slack.api.called("views.publish")

        # A concern: the reporter's receipt, the DSL alert, a note, the details view.
        view = await slack.open_form("U0TEACHER", "/concern")
        inputs = {b["block_id"] for b in view["blocks"] if b["type"] == "input"}
        values = {
            "pupil": UPN,
            "category": "online_abuse",
            "risk": "no",
            "when_date": "2026-11-30",
            "when_time": "07:30",
            "narrative": EVIL,
        }
        status, body = await slack.submit("U0TEACHER", view, {**dict.fromkeys(inputs), **values})
        assert status == 200 and body is None, body
        concern_receipt = slack.posts_to("U0TEACHER")[-1]
        await drain()
        [alert] = slack.posts_to("C0DSL")
        where = (alert["_channel"], alert["_ts"])
        await slack.click("U0DSL", alert, "concern.ack", *where)
        acked = slack.api.called("chat.update")[-1]
        _, _, click = await slack.click("U0DSL", acked, "concern.note", *where)
        status, body = await slack.submit(
            "U0DSL", slack.opened(click["trigger_id"]), {"note": EVIL}
        )
        assert status == 200 and body is None, body
        _, _, click = await slack.click("U0DSL", acked, "concern.view", *where)
        [popup] = [
            c for c in slack.api.called("views.open") if c["trigger_id"] == click["trigger_id"]
        ]

        # Nothing anywhere is a live mention, a link or a control sequence...
        for call in slack.api.calls:
            assert slack_findings(call.body) == [], call.method
        for response in slack.api.responses:
            assert slack_findings(response) == []
        for ack in acks:
            assert slack_findings(ack) == []

    # ...and every message carried the people's text, shown as written.
    assert shows(request, HOST_NAME) and shows(request, EVIL)  # name and plan
    assert f"*Plan:* {escape(no_controls(EVIL))}" in mrkdwn_texts(request)
    assert not re.search(r"(?<!\*)\*bold\*(?!\*)", str(request))  # "**bold**" is not made bold
    assert shows(receipt, COHOST_NAME)
    assert shows(slt, HOST_NAME) and shows(slt, COHOST_NAME)
    assert all(shows(acks[n], "<!here> [click](https://evil.example)") for n in (1, 2))
    assert shows(home["view"], "<!here> [click](https://evil.example)")
    assert "Concern recorded" in concern_receipt["text"]
    assert shows(alert, HOST_NAME)  # reported by
    assert shows(acked, DSL_NAME)  # acknowledged by
    assert shows(popup["view"], EVIL) and shows(popup["view"], PUPIL[3])  # narrative, class
    assert sum(escape(no_controls(EVIL)) in t for t in mrkdwn_texts(popup["view"])) == 2


# ----- Teams -----


def runs(call: Call) -> list[str]:
    """Every TextRun's text on the activity's cards."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if v.get("type") == "TextRun":
                found.append(v["text"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(call.cards)
    return found


def drawn(call: Call, text: str) -> bool:
    """``text`` is on the card as the text of a TextRun (where markdown is not parsed)."""
    return any(no_controls(text) in r for r in runs(call))


async def test_teams_shows_peoples_text_as_text(evil_school: Units) -> None:
    connector = LoopbackConnector()
    for email, (pid, aad, _chat) in PEOPLE.items():
        connector.add_member(pid, aad, email)
    await connector.start()
    t = await start(evil_school, connector)
    try:
        for channel in (SLT_CHANNEL, DSL_CHANNEL):
            assert await t.add_to_channel(channel) == 201
        for who in ("teacher@school.test", "colleague@school.test", "dsl@school.test"):
            assert await t.install(who) == 201

        # Booking: receipt, co-host request, SLT notice.
        assert await t.say("teacher@school.test", "/book-call") == 201
        form = t.last_to("teacher@school.test")
        booking = dict(BOOKING, in_pupils=UPN, in_plan=EVIL)
        assert await t.submit("teacher@school.test", form, booking) == 201
        receipt = t.last_to("teacher@school.test")
        await t.drain()
        [request] = [c for c in t.to("colleague@school.test") if "cohost.accept" in c.text]
        await t.click(
            "colleague@school.test", request, "cohost.accept", activity_id=request.activity_id
        )
        await t.drain()
        [slt] = t.connector.sent(SLT_CHANNEL)
        await t.say("colleague@school.test", "my-calls")
        my_calls = t.last_to("colleague@school.test")

        # A concern: receipt, DSL alert, acknowledgement, a note, the details view.
        await t.say("teacher@school.test", "concern")
        concern = {
            "in_pupil": UPN,
            "in_category": "online_abuse",
            "in_staff": "",
            "in_risk": "no",
            "in_when_date": "2026-11-30",
            "in_when_time": "07:30",
            "in_narrative": EVIL,
        }
        form = t.last_to("teacher@school.test")
        assert await t.submit("teacher@school.test", form, concern) == 201
        await t.drain()
        [alert] = t.connector.sent(DSL_CHANNEL)
        alert_id = alert.activity_id
        await t.click("dsl@school.test", alert, "concern.ack", channel=True, activity_id=alert_id)
        [acked] = [c for c in t.connector.updates() if c.activity_id == alert_id]
        await t.click("dsl@school.test", acked, "concern.note", channel=True, activity_id=alert_id)
        note_form = t.last_to("dsl@school.test")
        assert await t.submit("dsl@school.test", note_form, {"in_note": EVIL}) == 201
        await t.click("dsl@school.test", alert, "concern.view", channel=True, activity_id=alert_id)
        details = t.last_to("dsl@school.test")

        # Every activity: no markdown link where Teams parses markdown, no control character,
        # a valid card (teams_findings and the schema, as in every Teams test).
        assert t.connector.calls
        assert [f for c in t.connector.calls for f in teams_findings(c.body)] == []
        t.validate_cards()
        assert all(
            c.body.get("textFormat") == "plain" for c in t.connector.calls if "text" in c.body
        )
    finally:
        await stop(t)
        await connector.stop()

    assert drawn(request, HOST_NAME) and f" {no_controls(EVIL)}" in runs(request)  # the plan
    assert drawn(receipt, COHOST_NAME)
    assert drawn(slt, HOST_NAME) and drawn(slt, COHOST_NAME)
    assert drawn(my_calls, HOST_NAME) and drawn(my_calls, PUPIL[1])
    assert drawn(alert, HOST_NAME) and drawn(acked, DSL_NAME)
    assert no_controls(EVIL) in runs(details) and drawn(details, PUPIL[3])  # narrative, class
    assert sum(no_controls(EVIL) in r for r in runs(details)) == 2  # and the note


# ----- console -----


def button(label: str) -> Callable[[str], str]:
    """Type the number of the latest button with this label."""

    def pick(shown: str) -> str:
        return re.findall(rf"\[(\d+)\] {re.escape(label)}\n", shown)[-1]

    return pick


async def test_console_shows_peoples_text_inert(evil_school: Units) -> None:
    script: list[str | Callable[[str], str]] = [
        "/book-call",
        UPN,
        "1",  # one-to-one
        "2026-12-01",
        "10:00",
        "",  # duration: the default
        "colleague@school.test",
        "",  # platform: the default
        EVIL,  # the plan, pasted
        "/as colleague@school.test",
        button("Accept"),
        "/my-calls",
        "/as teacher@school.test",
        "/concern",
        UPN,
        "1",  # category
        "",  # no member of staff
        "",  # risk: no
        "2026-11-30",
        "07:30",
        EVIL,  # what happened
        "/as dsl@school.test",
        button("Acknowledge"),
        button("Add note"),
        EVIL,
        button("View details"),
        "/quit",
    ]
    out: list[str] = []
    prompts: list[str] = []

    async def read(prompt: str) -> str | None:
        prompts.append(prompt)
        if not script:
            return None
        line = script.pop(0)
        return line if isinstance(line, str) else line("".join(out))

    console = Console(runtime_for(evil_school), "teacher@school.test", read, out.append)
    assert await console.run() == 0
    shown = "".join(out)
    assert script == []
    assert console_findings(shown) == [] and console_findings("".join(prompts)) == []
    # Each message was shown, with the people's text in it (inert).
    for heading in ("posted in the SLT channel", "posted in the DSL channel", "Concern C-"):
        assert heading in shown
    assert shows_inert(shown, HOST_NAME) and shows_inert(shown, COHOST_NAME)
    assert shows_inert(shown, DSL_NAME) and shows_inert(shown, EVIL)
    assert "<!here> [click](https://evil.example) ]8;;https://evil.example" in shown


def shows_inert(shown: str, text: str) -> bool:
    return no_controls(text) in shown
