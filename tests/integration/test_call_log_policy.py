"""Issue #11, point 6: the Keeping in Touch log asks whether the second member of staff was
there and tells SLT what they must know; a worry must end in a filed concern (the host is
reminded, then the DSL told); and logs can be read, by the host and by SLT and the DSL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from chatbot.bookings.calllog import log_form
from chatbot.effects import CloseForm, Ephemeral, FormErrors, OpenForm
from chatbot.outbox import Dispatcher
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, Booking, CallLog, Concern
from chatbot.ui import Message
from chatbot.uow import Units
from tests.conftest import COHOST, GOOD, HOST, action, command, submit
from tests.fakes import RecordingMessenger
from tests.integration.test_sweeps import LOG, at, containing, make_booking, sweep_at, write_log
from tests.unit.test_concern_support import good

SLT = "slt@school.test"
DSL = "dsl@school.test"
SUMMARY = "Secret-summary-4411: we read the café story."


async def audits(core: Units, name: str) -> list[AuditEvent]:
    async with core.db.transaction() as s:
        q = select(AuditEvent).where(AuditEvent.action == name).order_by(AuditEvent.id)
        return list((await s.execute(q)).scalars())


async def the_log(core: Units) -> CallLog:
    async with core.db.transaction() as s:
        return (await s.execute(select(CallLog))).scalar_one()


# ---------------------------------------------------------------- the second member of staff


async def test_log_asks_whether_the_second_member_of_staff_was_there(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    booking_id = await make_booking(bot)
    clock.set(at(10, 25))
    [opened] = await bot.handle(action(HOST, "calllog.open", str(booking_id)))
    assert isinstance(opened, OpenForm)
    question = opened.form.input("cohost_present")
    assert "Colin Colleague" in question.label and question.kind == "select"
    assert {o.value for o in question.options} == {"yes", "no"}
    assert question.initial is None  # the host must answer; it is not assumed

    no_answer = {k: v for k, v in LOG.items() if k != "cohost_present"}
    for values in (no_answer, {**LOG, "cohost_present": "perhaps"}):
        [err] = await write_log(bot, booking_id, values)
        assert isinstance(err, FormErrors) and err.errors == {"cohost_present": "Answer yes or no."}
    async with school.db.transaction() as s:
        assert (await s.execute(select(CallLog))).first() is None


async def test_second_member_of_staff_absent_goes_to_slt_at_once(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    await dispatcher.drain()
    before = len(messenger.to("slt"))
    clock.set(at(10, 25))
    effects = await write_log(bot, booking_id, {**LOG, "cohost_present": "no", "summary": SUMMARY})
    assert isinstance(effects[0], CloseForm)
    await dispatcher.drain()  # no sweep needed: it went with the log
    [told] = messenger.to("slt")[before:]
    body = str(told.to_json())
    assert "The second member of staff was not on the call." in body
    assert "Tess Teacher" in body and f"Call #{booking_id}" in body
    assert "Secret-summary" not in body and "Taylor" not in body  # no log text, initials only
    assert (await the_log(school)).cohost_present is False
    [saved] = await audits(school, "calllog.save")
    assert saved.detail == {"worrying": False, "cohost_present": False, "for_slt": ["no_cohost"]}


async def test_call_longer_than_the_policy_allows_is_flagged_to_slt(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    first = await make_booking(bot)
    await dispatcher.drain()
    before = len(messenger.to("slt"))
    clock.set(at(10, 50))
    await write_log(bot, first, {**LOG, "minutes": "30"})  # the limit itself: fine
    await dispatcher.drain()
    assert messenger.to("slt")[before:] == []

    second = await make_booking(bot, date="2026-12-08")
    await dispatcher.drain()
    before = len(messenger.to("slt"))
    clock.set(at(11, days=7))
    await write_log(bot, second, {**LOG, "minutes": "45"})
    await dispatcher.drain()
    [told] = messenger.to("slt")[before:]
    assert "The call lasted 45 minutes; the school's limit is 30." in str(told.to_json())

    # The limit is the policy's.
    third = await make_booking(bot, date="2026-12-15")
    school.policy = replace(school.policy, max_call_minutes=50)
    clock.set(at(11, days=14))
    await dispatcher.drain()
    before = len(messenger.to("slt"))
    await write_log(bot, third, {**LOG, "minutes": "45"})
    await dispatcher.drain()
    assert messenger.to("slt")[before:] == []


async def test_log_form_takes_values_known_from_elsewhere(school: Units, bot: Bot) -> None:
    booking_id = await make_booking(bot)
    async with school.db.transaction() as s:
        b = await s.get(Booking, booking_id)
        assert b is not None
        form = log_form(b, initial={"minutes": "17", "cohost_present": "yes"})
    assert form.input("minutes").initial == "17"
    assert form.input("cohost_present").initial == "yes"
    assert form.input("attended").initial == "Sam T"


# ---------------------------------------------------------------- a worry ends in a concern


async def test_worrying_log_stays_open_until_a_concern_is_filed(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    saved_at = at(10, 25)
    clock.set(saved_at)
    effects = await write_log(bot, booking_id, {**LOG, "worrying": "yes", "summary": SUMMARY})
    said, form = effects
    assert isinstance(said, Ephemeral) and "the log stays open" in said.message.text
    assert isinstance(form, OpenForm) and form.form.id == "concern"
    assert form.form.state == {"booking_id": str(booking_id)}
    # The host closes the concern form without sending it.

    def reminders() -> list[Message]:
        return containing(messenger.to(HOST), "no concern has been filed")

    def dsl() -> list[Message]:
        return containing(messenger.to("dsl"), "no concern")

    p = school.policy
    remind = saved_at + timedelta(minutes=p.worry_reminder_after_minutes)
    report = saved_at + timedelta(minutes=p.worry_dsl_after_minutes)
    await sweep_at(school, clock, remind - timedelta(minutes=1), dispatcher)
    assert reminders() == []
    await sweep_at(school, clock, remind, dispatcher)
    await sweep_at(school, clock, remind + timedelta(minutes=1), dispatcher)
    [reminder] = reminders()
    [button] = reminder.buttons()
    assert (button.action_id, button.value) == ("concern.open", f"booking:{booking_id}")
    await sweep_at(school, clock, report - timedelta(minutes=1), dispatcher)
    assert dsl() == []
    await sweep_at(school, clock, report, dispatcher)
    await sweep_at(school, clock, report + timedelta(hours=3), dispatcher)
    [alert] = dsl()
    body = str(alert.to_json())
    assert f"Call #{booking_id}" in body and "worrying" in body
    assert "Secret-summary" not in body and "Sam" not in body and "Taylor" not in body
    assert len(reminders()) == 1
    assert [a.subject_id for a in await audits(school, "calllog.worry_reminded")] == [
        str(booking_id)
    ]
    assert len(await audits(school, "calllog.worry_unfiled_reported")) == 1

    # /my-calls says so, and the reminder's button opens the concern form linked to the call.
    assert "log written; concern still to file" in str(await bot.handle(command(HOST, "my-calls")))
    [opened] = await bot.handle(action(HOST, "concern.open", f"booking:{booking_id}"))
    assert isinstance(opened, OpenForm) and opened.form.state == {"booking_id": str(booking_id)}
    filed = await bot.handle(
        submit(HOST, "concern", good(when_date="2026-12-01", when_time="10:10"), opened.form.state)
    )
    assert isinstance(filed[0], CloseForm), filed
    assert "concern still to file" not in str(await bot.handle(command(HOST, "my-calls")))


async def test_concern_filed_from_the_log_closes_it(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    clock.set(at(10, 25))
    _, form = await write_log(bot, booking_id, {**LOG, "worrying": "yes"})
    assert isinstance(form, OpenForm)
    clock.set(at(10, 27))
    filed = await bot.handle(
        submit(HOST, "concern", good(when_date="2026-12-01", when_time="10:10"), form.form.state)
    )
    assert isinstance(filed[0], CloseForm), filed
    async with school.db.transaction() as s:
        [concern] = (await s.execute(select(Concern))).scalars()
    assert concern.booking_id == booking_id
    for minutes in (5, 15, 60, 24 * 60):
        await sweep_at(school, clock, at(10, 25) + timedelta(minutes=minutes), dispatcher)
    assert containing(messenger.to(HOST), "no concern has been filed") == []
    assert containing(messenger.to("dsl"), "no concern") == []


async def test_concern_filed_before_the_log_already_answers_its_worry(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    booking_id = await make_booking(bot)
    clock.set(at(10, 15))  # during the call, from its "Report a concern" button
    state = {"booking_id": str(booking_id)}
    await bot.handle(
        submit(HOST, "concern", good(when_date="2026-12-01", when_time="10:10"), state)
    )
    clock.set(at(10, 25))
    effects = await write_log(bot, booking_id, {**LOG, "worrying": "yes"})
    assert isinstance(effects[0], CloseForm) and "Saved" in str(effects[1])


async def test_a_concern_by_someone_else_does_not_close_the_hosts_log(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    """Only the host's own concern about the call answers the host's own log."""
    booking_id = await make_booking(bot)
    clock.set(at(10, 25))
    await write_log(bot, booking_id, {**LOG, "worrying": "yes"})
    state = {"booking_id": str(booking_id)}
    await bot.handle(
        submit(COHOST, "concern", good(when_date="2026-12-01", when_time="10:10"), state)
    )
    await sweep_at(school, clock, at(10, 40), dispatcher)
    assert len(containing(messenger.to("dsl"), "no concern")) == 1


# ---------------------------------------------------------------- reading the logs


async def book(bot: Bot, host: str, pupil: str, date: str) -> int:
    """A confirmed call with ``pupil`` on ``date`` at 10:00, hosted by ``host``."""
    effects = await bot.handle(submit(host, "book_call", {**GOOD, "pupils": [pupil], "date": date}))
    assert isinstance(effects[0], CloseForm), effects
    async with bot.units.db.transaction() as s:
        booking_id = (
            await s.execute(select(Booking.id).order_by(Booking.id.desc()).limit(1))
        ).scalar_one()
    await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    return booking_id


async def two_logged_calls(bot: Bot, clock: FixedClock, summary: str = "x") -> tuple[int, int]:
    """Sam's call (Tue, hosted by Tess) and Zoë's (Wed, hosted by Olive), both logged."""
    clock.set(at(8))
    sam = await book(bot, HOST, "A123456789012", "2026-12-01")
    zoe = await book(bot, "other@school.test", "B123456789012", "2026-12-02")
    clock.set(at(12, days=1))
    for booking_id, host, text in ((sam, HOST, summary), (zoe, "other@school.test", "Sums")):
        effects = await write_log(bot, booking_id, {**LOG, "summary": text}, who=host)
        assert isinstance(effects[0], CloseForm), effects
    return sam, zoe


async def ask(bot: Bot, who: str, text: str) -> Message:
    [answer] = await bot.handle(command(who, "calls", text))
    assert isinstance(answer, Ephemeral), answer
    return answer.message


async def test_logs_read_in_chat_by_host_slt_and_dsl_and_every_read_audited(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    sam, zoe = await two_logged_calls(bot, clock, "Sam: **read** <b>well</b>")

    mine = str((await ask(bot, HOST, "log")).to_json())
    assert f"Call #{sam}" in mine and f"Call #{zoe}" not in mine  # the host sees their own
    assert "Sam: \\\\*\\\\*read\\\\*\\\\* <b>well</b>" in mine  # people's text is escaped
    for reader in (SLT, DSL, "deputy@school.test"):
        both = str((await ask(bot, reader, "log")).to_json())
        assert f"Call #{sam}" in both and f"Call #{zoe}" in both, reader

    by_pupil = str((await ask(bot, SLT, "log pupil Zoë")).to_json())
    assert f"Call #{zoe}" in by_pupil and f"Call #{sam}" not in by_pupil
    by_upn = str((await ask(bot, SLT, "log pupil a123456789012")).to_json())
    assert f"Call #{sam}" in by_upn and f"Call #{zoe}" not in by_upn
    by_class = str((await ask(bot, DSL, "log class year 3")).to_json())
    assert f"Call #{sam}" in by_class and f"Call #{zoe}" in by_class
    assert "No Keeping in Touch logs" in (await ask(bot, DSL, "log class Year 4")).text
    by_date = str((await ask(bot, SLT, "log date 2026-12-02")).to_json())
    assert f"Call #{zoe}" in by_date and f"Call #{sam}" not in by_date
    by_range = str((await ask(bot, SLT, "log from 2026-12-01 to 2026-12-01")).to_json())
    assert f"Call #{sam}" in by_range and f"Call #{zoe}" not in by_range
    # The host filtering still sees only their own calls.
    assert "No Keeping in Touch logs" in (await ask(bot, HOST, "log pupil Zoë")).text

    reads = await audits(school, "calllog.read")
    assert len(reads) == 11
    assert reads[0].actor_label == HOST and reads[0].subject_id == "chat"
    assert reads[0].detail == {"count": 1, "bookings": [sam]}
    by_pupil_read = reads[4]
    assert by_pupil_read.actor_label == SLT and by_pupil_read.detail["bookings"] == [zoe]
    assert by_pupil_read.detail["pupil_ids"]  # ids, never the name typed
    assert "Zoë" not in str([r.detail for r in reads])
    assert reads[8].detail == {
        "from": "2026-12-02",
        "to": "2026-12-02",
        "count": 1,
        "bookings": [zoe],
    }


async def test_log_commands_with_bad_input_get_a_plain_answer_and_read_nothing(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    await two_logged_calls(bot, clock)
    for text, words in (
        ("", "/calls log"),
        ("list", "/calls log"),
        ("log sideways", "/calls log"),
        ("log date 2026-13-01", "is not a date"),
        ("log date", "/calls log"),
        ("log from 2026-12-05 to 2026-12-01", "before the first"),
        ("log pupil Nobody-at-all", "No pupil on the roster matches"),
    ):
        message = await ask(bot, SLT, text)
        assert words in message.text, (text, message.text)
        assert message.buttons() == []
    assert await audits(school, "calllog.read") == []
    [refused] = await bot.handle(command("stranger@else.test", "calls", "log"))
    assert "not on the school's staff roster" in str(refused)
