"""Who a concern is routed to may read, note and acknowledge it (#11.9); DSLs list the open
concerns with /concerns (#11.11). Through the Bot, on a real database."""

from __future__ import annotations

import dataclasses
import json

import pytest

from chatbot.effects import Ephemeral, OpenForm, Popup
from chatbot.outbox import Dispatcher
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.uow import Units
from tests.conftest import action, command, submit
from tests.fakes import RecordingMessenger
from tests.unit.test_concern_support import (
    MONDAY_10AM,
    NARRATIVE,
    audits,
    concerns,
    events,
    file_concern,
)

HEAD = "head@school.test"  # roles staff, slt, admin
SUBJECT = "colleague@school.test"


@pytest.fixture(autouse=True)
def in_school_hours(clock: FixedClock) -> None:
    clock.set(MONDAY_10AM)


def shown(eff: object) -> str:
    assert isinstance(eff, Popup | Ephemeral), eff
    return json.dumps(eff.message.to_json())


async def test_head_teacher_reads_notes_and_acknowledges_a_concern_about_staff(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    await file_concern(bot, category="staff_conduct", staff=SUBJECT)
    [c] = await concerns(school)
    await dispatcher.drain()
    [alert] = messenger.to(HEAD)
    assert "the DSL, the deputy DSL and the head teacher" in json.dumps(alert.to_json())
    # The head teacher reads the details, and the read is recorded.
    [eff] = await bot.handle(action(HEAD, "concern.view", str(c.id)))
    assert isinstance(eff, Popup) and NARRATIVE in shown(eff)
    assert [a.actor_label for a in await audits(school, "concern.view")] == [HEAD]
    # Acknowledging is recorded as theirs, and everyone who got the alert sees who has it.
    await bot.handle(action(HEAD, "concern.ack", str(c.id)))
    [c] = await concerns(school)
    assert (c.acknowledged_by_label, c.acknowledged_by_id is not None) == ("Hal Head", True)
    [ack] = await audits(school, "concern.ack")
    assert ack.actor_label == HEAD
    await dispatcher.drain()
    updates = [json.dumps(s.message.to_json()) for s in messenger.sent if s.kind == "update"]
    assert len(updates) == 2  # the DSL channel post and the head teacher's own alert
    assert all("Acknowledged by Hal Head" in u for u in updates)
    # ...and adds a note.
    [form] = await bot.handle(action(HEAD, "concern.note", str(c.id)))
    assert isinstance(form, OpenForm)
    await bot.handle(
        submit(HEAD, "concern_note", {"note": "Spoke to the LADO."}, {"concern_id": str(c.id)})
    )
    [eff] = await bot.handle(action("dsl@school.test", "concern.view", str(c.id)))
    assert "Spoke to the LADO." in shown(eff) and "Hal Head" in shown(eff)
    assert [k for k in await events(school, c.id) if k != "delivered"] == [
        "filed",
        "viewed",
        "acknowledged",
        "note",
        "viewed",
    ]


async def test_head_teacher_named_in_the_policy_reads_a_concern_about_staff(
    school: Units, bot: Bot
) -> None:
    school.policy = dataclasses.replace(school.policy, head_teacher_email="Other@school.test")
    await file_concern(bot, category="staff_conduct", staff=SUBJECT)
    [c] = await concerns(school)
    [eff] = await bot.handle(action("other@school.test", "concern.view", str(c.id)))
    assert isinstance(eff, Popup) and NARRATIVE in shown(eff)


async def test_routing_gives_no_one_else_the_details(school: Units, bot: Bot) -> None:
    await file_concern(bot)  # about a pupil: not routed to the head teacher
    await file_concern(bot, category="staff_conduct", staff=SUBJECT)
    await file_concern(bot, category="staff_conduct", staff=HEAD)  # about the head teacher
    pupil, staff, about_head = await concerns(school)
    refused = [
        (HEAD, pupil),
        ("slt@school.test", staff),  # SLT are told of escalations; they don't get the details
        (SUBJECT, staff),  # never the member of staff it is about
        (HEAD, about_head),
    ]
    for who, c in refused:
        for name in ("concern.view", "concern.ack", "concern.note"):
            [eff] = await bot.handle(action(who, name, str(c.id)))
            assert isinstance(eff, Ephemeral), (who, name)
            assert NARRATIVE not in shown(eff) and "Only the DSL" in eff.message.text
    assert len(await audits(school, "concern.view_refused")) == len(refused)
    assert all(c.acknowledged_at is None for c in await concerns(school))


# ------------------------------------------------------------------ /concerns


async def test_dsl_lists_open_concerns_unacknowledged_first(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    await file_concern(bot, category="self_harm")  # 10:00, will be acknowledged
    clock.advance(minutes=30)
    await file_concern(bot)  # 10:30
    clock.advance(minutes=15)
    await file_concern(bot, risk="yes", category="violence")  # 10:45, urgent
    clock.advance(minutes=5)
    await file_concern(bot, category="staff_conduct", staff="deputy@school.test")  # 10:50
    first, second, urgent, about_deputy = await concerns(school)
    await bot.handle(action("dsl@school.test", "concern.ack", str(first.id)))
    await file_concern(bot, category="drugs")  # closed below: not listed
    closed = (await concerns(school))[-1]
    await bot.handle(
        submit(
            "dsl@school.test", "concern_close", {"note": "Done."}, {"concern_id": str(closed.id)}
        )
    )
    clock.advance(hours=2, minutes=10)  # 13:00

    [eff] = await bot.handle(command("dsl@school.test", "concerns"))
    assert isinstance(eff, Ephemeral)
    lines = [b.text for b in eff.message.blocks if getattr(b, "kind", "") == "section"][1:]
    assert lines == [
        f"{urgent.reference} · URGENT · NOT ACKNOWLEDGED · 2 h 15 min old · "
        "Violence or encouraging people to hurt others",
        f"{second.reference} · NOT ACKNOWLEDGED · 2 h 30 min old · "
        "Online abuse, exploitation or bullying",
        f"{about_deputy.reference} · NOT ACKNOWLEDGED · 2 h 10 min old · "
        "A concern about a member of staff",
        f"{first.reference} · acknowledged by Dee Lead · 3 h old · "
        "Self-harm, suicide or eating disorders",
    ]
    flat = json.dumps(eff.message.to_json())
    assert NARRATIVE not in flat and "Sam" not in flat and "Dan Deputy" not in flat
    assert [b.value for b in eff.message.buttons()] == [
        str(c.id) for c in (urgent, second, about_deputy, first)
    ]
    [a] = await audits(school, "concern.list")
    assert a.actor_label == "dsl@school.test" and a.detail == {"count": 4}
    # The deputy does not see the concern about them.
    [eff] = await bot.handle(command("deputy@school.test", "concerns"))
    assert about_deputy.reference not in json.dumps(eff.message.to_json())


async def test_concerns_list_is_only_for_those_concerns_go_to(school: Units, bot: Bot) -> None:
    await file_concern(bot)
    await file_concern(bot, category="staff_conduct", staff=SUBJECT)
    pupil, staff = await concerns(school)
    for who in ("teacher@school.test", "slt@school.test", "stranger@else.test"):
        [eff] = await bot.handle(command(who, "concerns"))
        assert isinstance(eff, Ephemeral) and "Only the DSL" in eff.message.text, who
        assert pupil.reference not in eff.message.text
    assert len(await audits(school, "concern.list_refused")) == 3
    # The head teacher sees the concerns about staff, not the others.
    [eff] = await bot.handle(command(HEAD, "concerns"))
    flat = json.dumps(eff.message.to_json())
    assert staff.reference in flat and pupil.reference not in flat


async def test_help_names_the_concerns_command(school: Units, bot: Bot) -> None:
    [eff] = await bot.handle(command("dsl@school.test", "help"))
    assert "/concerns" in json.dumps(eff.message.to_json())  # type: ignore[union-attr]
