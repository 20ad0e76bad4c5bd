"""The chase (re-send, then escalate) on a fixed clock; out-of-hours; concerns about staff."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime

import pytest

from chatbot.effects import Ephemeral, Popup, Reply
from chatbot.outbox import Dispatcher
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.uow import Units
from tests.conftest import action
from tests.fakes import RecordingMessenger
from tests.unit.test_concern_support import MONDAY_10AM, audits, concerns, events, file_concern

DSLS = {"dsl@school.test", "deputy@school.test"}
SLT = {"slt@school.test", "head@school.test"}


def dm_targets(m: RecordingMessenger) -> list[str]:
    return sorted(s.to for s in m.sent if s.kind == "staff")


async def sweep(bot: Bot) -> int:
    return await bot.sweep()


@pytest.fixture(autouse=True)
def in_school_hours(clock: FixedClock) -> None:
    clock.set(MONDAY_10AM)


async def test_chase_resends_then_escalates_at_configured_times(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    await file_concern(bot)
    await dispatcher.drain()
    assert len(messenger.to("dsl")) == 1 and dm_targets(messenger) == []
    clock.advance(minutes=9)
    assert await sweep(bot) == 0
    await dispatcher.drain()
    assert len(messenger.to("dsl")) == 1
    clock.advance(minutes=2)  # 11 minutes: past concern_ack_minutes (10)
    assert await sweep(bot) == 1
    await dispatcher.drain()
    [_, reminder] = messenger.to("dsl")
    assert "Reminder" in reminder.text and dm_targets(messenger) == []
    assert await sweep(bot) == 0  # claimed once
    clock.advance(minutes=8)  # 19 minutes: escalation is due at 20
    assert await sweep(bot) == 0
    clock.advance(minutes=2)
    assert await sweep(bot) == 1
    await dispatcher.drain()
    assert dm_targets(messenger) == sorted(DSLS | SLT)
    assert all("Escalation" in m.text for w in DSLS | SLT for m in messenger.to(w))
    [c] = await concerns(school)
    kinds = [k for k in await events(school, c.id) if k != "delivered"]
    assert kinds == ["filed", "resent", "escalated"]
    assert len(await audits(school, "concern.escalated")) == 1
    clock.advance(hours=2)
    # Escalation happens once; then the concern is sent to them all again (repeat_minutes).
    assert await sweep(bot) == 1
    await dispatcher.drain()
    assert [k for k in await events(school, c.id) if k != "delivered"][-1] == "repeated"
    # Acknowledging updates the channel posts and every escalation and repeat DM.
    await bot.handle(action("dsl@school.test", "concern.ack", str(c.id)))
    await dispatcher.drain()
    updates = [s for s in messenger.sent if s.kind == "update"]
    assert len(updates) == 2 + 2 * len(DSLS | SLT)


async def test_urgent_concern_chased_sooner(
    school: Units, bot: Bot, clock: FixedClock, dispatcher: Dispatcher
) -> None:
    await file_concern(bot, risk="yes")
    clock.advance(minutes=1)
    assert await sweep(bot) == 0
    clock.advance(minutes=1, seconds=30)  # 2.5 min: past concern_urgent_ack_minutes (2)
    assert await sweep(bot) == 1
    clock.advance(minutes=1)  # 3.5
    assert await sweep(bot) == 0
    clock.advance(minutes=1)  # 4.5
    assert await sweep(bot) == 1


async def test_acknowledged_concern_is_not_chased(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    await file_concern(bot)
    [c] = await concerns(school)
    await bot.handle(action("deputy@school.test", "concern.ack", str(c.id)))
    clock.advance(hours=1)
    assert await sweep(bot) == 0
    assert await events(school, c.id) == ["filed", "acknowledged"]


async def test_configured_ack_minutes(school: Units, bot: Bot, clock: FixedClock) -> None:
    school.policy = dataclasses.replace(school.policy, concern_ack_minutes=30)
    await file_concern(bot)
    clock.advance(minutes=29)
    assert await sweep(bot) == 0
    clock.advance(minutes=2)
    assert await sweep(bot) == 1


async def test_restart_past_both_deadlines_resends_and_escalates(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    await file_concern(bot)
    clock.advance(hours=3)  # the bot was down
    assert await sweep(bot) == 2
    [c] = await concerns(school)
    assert await events(school, c.id) == ["filed", "resent", "escalated"]


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 30, 7, 0, tzinfo=UTC),  # Monday before school
        datetime(2026, 11, 30, 16, 30, tzinfo=UTC),  # Monday after school
        datetime(2026, 12, 5, 11, 0, tzinfo=UTC),  # Saturday
        datetime(2026, 12, 25, 11, 0, tzinfo=UTC),  # Christmas Day (bank holiday)
    ],
)
async def test_out_of_hours_alerts_slt_at_once(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
    when: datetime,
) -> None:
    clock.set(when)
    effects = await file_concern(bot, when_date=when.date().isoformat(), when_time="06:00")
    [receipt] = [e for e in effects if isinstance(e, Reply)]
    assert "SLT have been alerted too" in json.dumps(receipt.message.to_json())
    await dispatcher.drain()
    assert len(messenger.to("dsl")) == 1 and len(messenger.to("slt")) == 1
    [c] = await concerns(school)
    assert c.out_of_hours


async def test_in_hours_does_not_alert_slt_at_once(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    await file_concern(bot)
    await dispatcher.drain()
    assert messenger.to("slt") == [] and dm_targets(messenger) == []


async def test_concern_about_staff_goes_to_dsl_channel_and_head(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    await file_concern(bot, category="staff_conduct", staff="colleague@school.test")
    await dispatcher.drain()
    [alert] = messenger.to("dsl")
    assert "Colin" not in json.dumps(alert.to_json())  # named only in the details
    assert dm_targets(messenger) == ["head@school.test"]
    assert messenger.to("colleague@school.test") == []
    [c] = await concerns(school)
    [eff] = await bot.handle(action("dsl@school.test", "concern.view", str(c.id)))
    assert isinstance(eff, Popup) and "Colin Colleague" in json.dumps(eff.message.to_json())


async def test_concern_about_a_dsl_never_reaches_them(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    await file_concern(bot, category="staff_conduct", staff="dsl@school.test")
    await dispatcher.drain()
    assert messenger.to("dsl") == []  # not the DSL channel: the subject would see it
    assert dm_targets(messenger) == ["deputy@school.test", "head@school.test"]
    [c] = await concerns(school)
    # The subject cannot view it, even with the DSL role; the deputy can.
    [eff] = await bot.handle(action("dsl@school.test", "concern.view", str(c.id)))
    assert isinstance(eff, Ephemeral)
    [eff] = await bot.handle(action("dsl@school.test", "concern.ack", str(c.id)))
    assert isinstance(eff, Ephemeral) and "Only the DSL" in eff.message.text
    [eff] = await bot.handle(action("deputy@school.test", "concern.view", str(c.id)))
    assert isinstance(eff, Popup)
    clock.advance(minutes=30)
    await sweep(bot)
    await dispatcher.drain()
    assert "dsl@school.test" not in {s.to for s in messenger.sent}
    assert set(dm_targets(messenger)) == {
        "deputy@school.test",
        "head@school.test",
        "slt@school.test",
    }
    # The head teacher may acknowledge a concern about staff.
    await bot.handle(action("head@school.test", "concern.ack", str(c.id)))
    [c] = await concerns(school)
    assert c.acknowledged_by_label == "Hal Head"


async def test_staff_concern_out_of_hours_dms_slt_not_the_subject(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    clock.set(datetime(2026, 11, 30, 18, 0, tzinfo=UTC))
    await file_concern(bot, category="staff_conduct", staff="slt@school.test")
    await dispatcher.drain()
    assert messenger.to("slt") == []  # the SLT channel would include the subject
    assert len(messenger.to("dsl")) == 1
    assert dm_targets(messenger) == ["head@school.test"]  # head once, though also SLT


async def test_head_teacher_from_policy(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    school.policy = dataclasses.replace(school.policy, head_teacher_email="Other@school.test")
    await file_concern(bot, category="staff_conduct", staff="colleague@school.test")
    await dispatcher.drain()
    assert dm_targets(messenger) == ["head@school.test", "other@school.test"]


async def test_missing_dsl_channel_falls_back_to_dms(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    messenger.missing_roles = {"dsl"}
    await file_concern(bot)
    await dispatcher.drain()  # the channel fails: direct messages are queued instead
    await dispatcher.drain()
    assert set(dm_targets(messenger)) == DSLS


# ------------------------------------------------------------------ repeats until acknowledged


def repeats_to(m: RecordingMessenger) -> list[str]:
    """Who got a "still not acknowledged" alert, in order."""
    return [
        s.to for s in m.sent if s.kind != "update" and "still not acknowledged" in s.message.text
    ]


async def test_urgent_concern_repeats_until_acknowledged(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    await file_concern(bot, risk="yes")
    [c] = await concerns(school)
    clock.advance(minutes=2, seconds=30)
    assert await sweep(bot) == 1  # reminder
    clock.advance(minutes=2)
    assert await sweep(bot) == 1  # escalation at 4.5 min
    await dispatcher.drain()
    assert repeats_to(messenger) == []
    clock.advance(minutes=9)
    assert await sweep(bot) == 0  # not yet: urgent_repeat_minutes (10) after the escalation
    clock.advance(minutes=1)
    assert await sweep(bot) == 1
    assert await sweep(bot) == 0  # claimed once
    await dispatcher.drain()
    assert sorted(repeats_to(messenger)) == sorted(DSLS | SLT)  # every DSL, deputy and SLT
    [repeat] = messenger.to("dsl@school.test")[-1:]
    flat = json.dumps(repeat.to_json())
    assert "URGENT" in flat and "every 10 minutes until someone acknowledges it" in flat
    for _ in range(3):  # it never goes quiet
        clock.advance(minutes=10)
        assert await sweep(bot) == 1
    kinds = [k for k in await events(school, c.id) if k != "delivered"]
    assert kinds == ["filed", "resent", "escalated", "repeated", "repeated", "repeated", "repeated"]
    assert len(await audits(school, "concern.repeated")) == 4
    await bot.handle(action("deputy@school.test", "concern.ack", str(c.id)))
    clock.advance(hours=5)
    assert await sweep(bot) == 0


async def test_repeat_interval_comes_from_the_policy(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    school.policy = dataclasses.replace(school.policy, concern_urgent_repeat_minutes=3)
    await file_concern(bot, risk="yes")
    clock.advance(minutes=5)
    assert await sweep(bot) == 2  # reminder and escalation
    clock.advance(minutes=2)
    assert await sweep(bot) == 0
    clock.advance(minutes=1)
    assert await sweep(bot) == 1


async def test_urgent_repeats_out_of_hours_also_reach_the_slt_channel(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    clock.set(datetime(2026, 11, 30, 14, 50, tzinfo=UTC))  # filed in school hours
    await file_concern(bot, risk="yes", when_time="14:40")
    clock.advance(minutes=5)
    assert await sweep(bot) == 2
    await dispatcher.drain()
    assert messenger.to("slt") == []
    clock.set(datetime(2026, 11, 30, 22, 0, tzinfo=UTC))  # night: nobody has acknowledged it
    assert await sweep(bot) == 1
    await dispatcher.drain()
    [night] = messenger.to("slt")
    assert "still not acknowledged" in night.text
    assert sorted(repeats_to(messenger)) == sorted(DSLS | SLT | {"slt"})
    clock.advance(minutes=10)
    assert await sweep(bot) == 1


async def test_ordinary_concern_repeats_in_school_hours_only(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 11, 30, 14, 0, tzinfo=UTC))
    await file_concern(bot, when_time="13:50")
    clock.advance(minutes=20)
    assert await sweep(bot) == 2  # reminder and escalation at 14:20
    clock.advance(minutes=59)
    assert await sweep(bot) == 0
    clock.advance(minutes=1)  # 15:20: due, but school has closed
    assert await sweep(bot) == 0
    clock.set(datetime(2026, 12, 1, 6, 0, tzinfo=UTC))  # Tuesday, before school
    assert await sweep(bot) == 0
    clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))  # school opens: raised again
    assert await sweep(bot) == 1
    clock.advance(minutes=30)
    assert await sweep(bot) == 0
    clock.advance(minutes=30)  # repeat_minutes (60)
    assert await sweep(bot) == 1


async def test_a_repeat_is_sent_once_by_replicas_sweeping_together(
    school: Units, clock: FixedClock, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    from chatbot.bootstrap import build_bot

    replicas = [build_bot(school), build_bot(school), build_bot(school)]
    await file_concern(replicas[0], risk="yes")
    clock.advance(minutes=5)
    assert sum(await asyncio.gather(*(r.sweep() for r in replicas))) == 2
    clock.advance(minutes=10)
    assert sum(await asyncio.gather(*(r.sweep() for r in replicas))) == 1
    await dispatcher.drain()
    assert sorted(repeats_to(messenger)) == sorted(DSLS | SLT)
