"""The sweeps: co-host lapse, checklist reminders, unticked items at the start, call-log
requests, nudges and reports. Each step happens once, even if sweeps run repeatedly, on
several replicas, or only after a restart that missed the moment it fell due."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from chatbot.bookings.scheduled import run_booking_sweeps
from chatbot.effects import CloseForm, FormErrors, OpenForm
from chatbot.outbox import Dispatcher
from chatbot.policy import default_policy
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.storage.db import Database
from chatbot.storage.models import AuditEvent, Booking, BookingPupil, CallLog, ChecklistTick, Staff
from chatbot.ui import Message
from chatbot.uow import Units
from tests.conftest import COHOST, GOOD, HOST, action, open_database, submit
from tests.fakes import RecordingMessenger

TUE = datetime(2026, 12, 1, tzinfo=UTC)


def at(hour: int, minute: int = 0, days: int = 0) -> datetime:
    return TUE + timedelta(days=days, hours=hour, minutes=minute)


async def make_booking(bot: Bot, confirm: bool = True, **changes: object) -> int:
    effects = await bot.handle(submit(HOST, "book_call", {**GOOD, **changes}))
    assert isinstance(effects[0], CloseForm), effects
    async with bot.units.db.transaction() as s:
        booking_id = (
            await s.execute(select(Booking.id).order_by(Booking.id.desc()).limit(1))
        ).scalar_one()
    if confirm:
        effects = await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
        assert "Thank you" in str(effects), effects
    return booking_id


async def sweep_at(core: Units, clock: FixedClock, when: datetime, dispatcher: Dispatcher) -> None:
    clock.set(when)
    await run_booking_sweeps(core)
    await dispatcher.drain()


def containing(messages: list[Message], words: str) -> list[Message]:
    return [m for m in messages if words in m.text]


async def booking(core: Units, booking_id: int) -> Booking:
    async with core.db.transaction() as s:
        b = await s.get(Booking, booking_id)
        assert b is not None
        return b


# ---------------------------------------------------------------- co-host lapse


async def test_cohost_no_answer_lapses(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot, confirm=False)
    await dispatcher.drain()
    answer_by = at(10) - timedelta(minutes=school.policy.cohost_answer_by_minutes)

    await sweep_at(school, clock, answer_by - timedelta(minutes=1), dispatcher)
    assert (await booking(school, booking_id)).status == "awaiting_cohost"
    assert messenger.to(HOST) == [] and messenger.to("slt") == []

    await sweep_at(school, clock, answer_by, dispatcher)
    assert (await booking(school, booking_id)).status == "lapsed"
    [told] = messenger.to(HOST)
    assert "will not go ahead" in told.text and "did not answer in time" in told.text
    [slt] = messenger.to("slt")
    assert "will not go ahead" in slt.text and "Taylor" not in str(slt.to_json())
    # The co-host's request now says so, and its buttons are gone.
    [edit] = [s for s in messenger.sent if s.kind == "update"]
    assert "no answer in time" in edit.message.text and edit.message.buttons() == []
    async with school.db.transaction() as s:
        assert (await s.execute(select(BookingPupil.active))).scalars().all() == [False]
        lapses = await s.execute(select(func.count()).where(AuditEvent.action == "booking.lapse"))
        assert lapses.scalar_one() == 1

    # Repeated sweeps change nothing; a late Accept cannot revive the call.
    for minutes in (1, 30, 60, 120, 24 * 60):
        await sweep_at(school, clock, answer_by + timedelta(minutes=minutes), dispatcher)
    assert len(messenger.to(HOST)) == 1 and len(messenger.to("slt")) == 1
    clock.set(answer_by + timedelta(minutes=5))
    effects = await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    assert "no answer in time" in str(effects)
    assert (await booking(school, booking_id)).status == "lapsed"
    assert containing(messenger.to(HOST), "checklist") == []

    # Sam's week is free again.
    effects = await bot.handle(submit(HOST, "book_call", {**GOOD, "date": "2026-12-03"}))
    assert isinstance(effects[0], CloseForm), effects


async def test_cohost_answer_in_time_does_not_lapse(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    await sweep_at(school, clock, at(9, 30), dispatcher)
    assert (await booking(school, booking_id)).status == "confirmed"
    assert containing(messenger.to(HOST), "will not go ahead") == []


# ---------------------------------------------------------------- checklist


async def test_checklist_sent_once_at_lead_time(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    await dispatcher.drain()
    lead = school.policy.checklist_lead_minutes
    await sweep_at(school, clock, at(10) - timedelta(minutes=lead + 1), dispatcher)
    assert containing(messenger.to(HOST), "Safety checklist") == []
    for minute in range(0, 6):  # the sweep runs every minute, say
        await sweep_at(school, clock, at(10) - timedelta(minutes=lead - minute), dispatcher)
    [checklist] = containing(messenger.to(HOST), "Safety checklist")
    ticks = [b for b in checklist.buttons() if b.action_id == "checklist.tick"]
    assert len(ticks) == len(school.policy.checklist)
    assert {b.value for b in ticks} == {f"{booking_id}:{i.key}" for i in school.policy.checklist}
    assert (await booking(school, booking_id)).checklist_sent_at == at(10) - timedelta(minutes=lead)
    assert containing(messenger.to(COHOST), "Safety checklist") == []


async def test_checklist_lead_time_from_policy(
    school: Units,
    db: Database,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    await make_booking(bot)
    core = Units(db=db, policy=replace(default_policy(), checklist_lead_minutes=45), clock=clock)
    await sweep_at(core, clock, at(9, 14), dispatcher)
    assert containing(messenger.to(HOST), "Safety checklist") == []
    await sweep_at(core, clock, at(9, 15), dispatcher)
    assert len(containing(messenger.to(HOST), "Safety checklist")) == 1


async def test_reminder_due_during_downtime_sent_once_after_restart(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    db_url: str,
) -> None:
    await make_booking(bot)
    first = RecordingMessenger()
    await Dispatcher(school.db, clock, first).drain()
    await school.db.dispose()  # the process goes down at 08:00 ...

    clock.set(at(9, 55))  # ... and comes back after the 09:45 checklist fell due
    replicas = [open_database(db_url) for _ in range(3)]
    try:
        messenger = RecordingMessenger()
        cores = [Units(db=d, policy=school.policy, clock=clock) for d in replicas]
        # Three replicas start and sweep at once, then keep sweeping.
        await asyncio.gather(*(run_booking_sweeps(c) for c in cores))
        for c in cores:
            await run_booking_sweeps(c)
        await asyncio.gather(*(Dispatcher(d, clock, messenger).drain() for d in replicas))
        await Dispatcher(replicas[0], clock, messenger).drain()
        assert len(containing(messenger.to(HOST), "Safety checklist")) == 1
    finally:
        for d in replicas:
            await d.dispose()


async def test_downtime_past_the_start_still_sends_checklist_and_flag_once(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    await make_booking(bot)
    clock.set(at(10, 5))
    await run_booking_sweeps(school)
    await run_booking_sweeps(school)
    await dispatcher.drain()
    assert len(containing(messenger.to(HOST), "Safety checklist")) == 1
    assert len(containing(messenger.to(HOST), "Your call is starting")) == 1
    # 10:05 is also when unticked checks go to SLT (and the host hears so): once each.
    assert len(containing(messenger.to(HOST), "SLT have been told")) == 1
    assert len(containing(messenger.to("slt"), "still not ticked")) == 1


async def test_unticked_items_flagged_at_start(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    await sweep_at(school, clock, at(9, 45), dispatcher)
    items = school.policy.checklist
    for item in items[:2]:
        effects = await bot.handle(action(HOST, "checklist.tick", f"{booking_id}:{item.key}"))
        assert effects and not isinstance(effects[0], FormErrors)
    await sweep_at(school, clock, at(9, 59), dispatcher)
    assert containing(messenger.to(HOST), "not ticked") == []
    await sweep_at(school, clock, at(10), dispatcher)
    await sweep_at(school, clock, at(10, 1), dispatcher)
    [flag] = containing(messenger.to(HOST), "not ticked")
    body = str(flag.to_json())
    assert f"{len(items) - 2} safety checks" in flag.text
    for item in items[2:]:
        assert item.label in body
    for item in items[:2]:
        assert item.label not in body
    assert [b.action_id for b in flag.buttons()] == ["checklist.open"]


async def test_all_ticked_no_flag(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    clock.set(at(9, 50))
    for item in school.policy.checklist:
        if item.stage != "start":
            await bot.handle(action(COHOST, "checklist.tick", f"{booking_id}:{item.key}"))
    clock.set(at(10))  # the start-of-call checks can be ticked from the start
    for item in school.policy.checklist_stage("start"):
        await bot.handle(action(HOST, "checklist.tick", f"{booking_id}:{item.key}"))
    await sweep_at(school, clock, at(10), dispatcher)
    await sweep_at(school, clock, at(10, 10), dispatcher)
    assert containing(messenger.to(HOST), "not ticked") == []
    assert containing(messenger.to("slt"), "not ticked") == []
    [checklist] = containing(messenger.to(HOST), "Safety checklist")
    assert "Every check is done" in str(checklist.to_json())


async def test_ticks_stored_with_who_and_when_idempotent(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    booking_id = await make_booking(bot)
    clock.set(at(9, 46))
    effects = await bot.handle(action(HOST, "checklist.tick", f"{booking_id}:waiting_room"))
    assert "☑ Waiting room switched on" in str(effects)
    clock.set(at(9, 47))
    await bot.handle(action(HOST, "checklist.tick", f"{booking_id}:waiting_room"))
    await asyncio.gather(
        *(bot.handle(action(COHOST, "checklist.tick", f"{booking_id}:video_on")) for _ in range(5))
    )
    async with school.db.transaction() as s:
        ticks = await s.execute(select(ChecklistTick).order_by(ChecklistTick.item_key))
        rows = [(t.item_key, t.ticked_by_id, t.ticked_at) for t in ticks.scalars()]
        host = (await s.execute(select(Staff).where(Staff.email == HOST))).scalar_one()
        co = (await s.execute(select(Staff).where(Staff.email == COHOST))).scalar_one()
        audits = (
            await s.execute(select(func.count()).where(AuditEvent.action == "checklist.tick"))
        ).scalar_one()
    assert rows == [("video_on", co.id, at(9, 47)), ("waiting_room", host.id, at(9, 46))]
    assert audits == 2


async def test_ticks_refused_for_strangers_and_unknown_items(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    booking_id = await make_booking(bot)
    effects = await bot.handle(
        action("other@school.test", "checklist.tick", f"{booking_id}:waiting_room")
    )
    assert "not one of your calls" in str(effects)
    effects = await bot.handle(action(HOST, "checklist.tick", f"{booking_id}:sing_a_song"))
    assert "not in the school's checklist" in str(effects)
    await bot.handle(action(HOST, "booking.cancel_confirm", str(booking_id)))
    effects = await bot.handle(action(HOST, "checklist.tick", f"{booking_id}:waiting_room"))
    assert "cancelled" in str(effects)
    async with school.db.transaction() as s:
        assert (await s.execute(select(func.count(ChecklistTick.id)))).scalar_one() == 0


# ---------------------------------------------------------------- call log


async def test_log_requested_nudged_reported(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    p = school.policy
    end = at(10, 20)
    nudge = end + timedelta(minutes=p.log_nudge_after_minutes)
    report = end + timedelta(minutes=p.log_report_after_minutes)

    def requests() -> list[Message]:
        return containing(messenger.to(HOST), "Please write the Keeping in Touch log")

    def nudges() -> list[Message]:
        return containing(messenger.to(HOST), "is still missing")

    def reports() -> list[Message]:
        return containing(messenger.to("slt"), "No Keeping in Touch log")

    await sweep_at(school, clock, end - timedelta(minutes=1), dispatcher)
    assert requests() == []
    await sweep_at(school, clock, end, dispatcher)
    [req] = requests()
    assert [b.action_id for b in req.buttons()] == ["calllog.open"]
    assert req.buttons()[0].value == str(booking_id)
    await sweep_at(school, clock, nudge - timedelta(minutes=1), dispatcher)
    assert nudges() == []
    await sweep_at(school, clock, nudge, dispatcher)
    await sweep_at(school, clock, nudge + timedelta(minutes=1), dispatcher)
    assert len(nudges()) == 1
    await sweep_at(school, clock, report - timedelta(minutes=1), dispatcher)
    assert reports() == []
    await sweep_at(school, clock, report, dispatcher)
    await sweep_at(school, clock, report + timedelta(hours=5), dispatcher)
    [slt] = reports()
    assert "Tess Teacher" in slt.text and "Taylor" not in str(slt.to_json())
    assert len(requests()) == 1 and len(nudges()) == 1


LOG = {
    "attended": "Sam T.",
    "minutes": "18",
    "summary": "Read two chapters together.",
    "worrying": "no",
    "cohost_present": "yes",
}


async def write_log(
    bot: Bot, booking_id: int, values: dict[str, object] | None = None, who: str = HOST
) -> list[object]:
    return await bot.handle(
        submit(
            who,
            "call_log",
            values or LOG,  # type: ignore[arg-type]
            state={"booking_id": str(booking_id)},
        )
    )


async def test_no_nudge_or_report_once_logged(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    await sweep_at(school, clock, at(10, 20), dispatcher)
    assert len(containing(messenger.to(HOST), "Please write")) == 1
    clock.set(at(10, 30))
    effects = await write_log(bot, booking_id)
    assert isinstance(effects[0], CloseForm), effects
    for when in (at(12, 20), at(12, 21), at(10, 20, days=1), at(10, 20, days=2)):
        await sweep_at(school, clock, when, dispatcher)
    assert containing(messenger.to(HOST), "still missing") == []
    assert containing(messenger.to("slt"), "No Keeping in Touch log") == []


async def test_no_request_if_logged_before_the_end(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    clock.set(at(10, 19))  # the call is under way; the host writes the log straight after
    effects = await write_log(bot, booking_id)
    assert isinstance(effects[0], CloseForm), effects
    for when in (at(10, 20), at(12, 20), at(10, 20, days=1)):
        await sweep_at(school, clock, when, dispatcher)
    host_texts = " ".join(m.text for m in messenger.to(HOST))
    assert "Keeping in Touch" not in host_texts
    assert containing(messenger.to("slt"), "No Keeping in Touch log") == []


async def test_no_log_asked_for_calls_that_did_not_go_ahead(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    await bot.handle(action(HOST, "booking.cancel_confirm", str(booking_id)))
    for when in (at(9, 45), at(10), at(10, 20), at(12, 20), at(10, 20, days=1)):
        await sweep_at(school, clock, when, dispatcher)
    host_texts = " ".join(m.text for m in messenger.to(HOST))
    assert "checklist" not in host_texts and "Keeping in Touch" not in host_texts
    assert "not ticked" not in host_texts
    assert containing(messenger.to("slt"), "No Keeping in Touch log") == []


async def log_rows(core: Units) -> list[CallLog]:
    async with core.db.transaction() as s:
        return list((await s.execute(select(CallLog))).scalars())


async def test_call_log_form_saves(school: Units, bot: Bot, clock: FixedClock) -> None:
    booking_id = await make_booking(bot)
    effects = await bot.handle(action(HOST, "calllog.open", str(booking_id)))
    assert "after the call" in str(effects)
    clock.set(at(10, 25))
    [opened] = await bot.handle(action(HOST, "calllog.open", str(booking_id)))
    assert isinstance(opened, OpenForm) and opened.form.id == "call_log"
    assert opened.form.state == {"booking_id": str(booking_id)}
    effects = await write_log(bot, booking_id, {**LOG, "summary": "Zoë's café story ☕"})
    assert isinstance(effects[0], CloseForm) and "Saved" in str(effects[1])
    [row] = await log_rows(school)
    host_id = (await booking(school, booking_id)).host_id
    assert (row.actual_minutes, row.summary, row.worrying) == (18, "Zoë's café story ☕", False)
    assert (row.logged_by_id, row.logged_at) == (host_id, at(10, 25))
    # Saving again (a double click) keeps the first log.
    effects = await write_log(bot, booking_id, {**LOG, "summary": "Different"})
    assert "already saved" in str(effects)
    assert [r.summary for r in await log_rows(school)] == ["Zoë's café story ☕"]
    effects = await bot.handle(action(HOST, "calllog.open", str(booking_id)))
    assert "already written" in str(effects)


async def test_call_log_worrying_is_recorded(school: Units, bot: Bot, clock: FixedClock) -> None:
    booking_id = await make_booking(bot)
    clock.set(at(10, 25))
    effects = await write_log(bot, booking_id, {**LOG, "worrying": "yes"})
    assert not any(isinstance(e, FormErrors) for e in effects), effects
    [row] = await log_rows(school)
    assert row.worrying is True


async def test_call_log_refuses_bad_input(school: Units, bot: Bot, clock: FixedClock) -> None:
    booking_id = await make_booking(bot)
    clock.set(at(10, 25))
    cases = [
        ({"summary": ""}, "summary", "required"),
        ({"summary": "x" * 10_000}, "summary", "too long"),
        ({"attended": ""}, "attended", "required"),
        ({"attended": "y" * 10_000}, "attended", "too long"),
        ({"minutes": "about twenty"}, "minutes", "whole number"),
        ({"minutes": "-3"}, "minutes", "between"),
        ({"minutes": ""}, "minutes", "required"),
        ({"worrying": "maybe"}, "worrying", "yes or no"),
    ]
    for change, field, words in cases:
        [err] = await write_log(bot, booking_id, {**LOG, **change})
        assert isinstance(err, FormErrors), (change, err)
        assert field in err.errors and words in err.errors[field], (change, err.errors)
        assert len(err.errors[field]) < 200
    assert await log_rows(school) == []


async def test_call_log_only_by_the_host_after_a_call_that_went_ahead(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    booking_id = await make_booking(bot)
    clock.set(at(10, 25))
    [err] = await write_log(bot, booking_id, who=COHOST)
    assert isinstance(err, FormErrors) and "Only the host" in str(err.errors)
    [err] = await write_log(bot, 9999)
    assert isinstance(err, FormErrors)
    assert await log_rows(school) == []


async def test_call_log_not_saved_before_the_call(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    """A form replayed (or crafted) before the call starts must not store a log."""
    booking_id = await make_booking(bot)
    clock.set(at(9, 30))
    [err] = await write_log(bot, booking_id)
    assert isinstance(err, FormErrors), err
    assert "after the call" in " ".join(err.errors.values())
    assert await log_rows(school) == []
