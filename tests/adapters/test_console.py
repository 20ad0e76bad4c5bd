"""The console adapter drives the same core: prompts, validation, numbered buttons."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import func, select

from adapters.console.app import Console
from adapters.server import runtime_for
from chatbot.bootstrap import build_bot
from chatbot.outbox import Dispatcher
from chatbot.ports import FixedClock
from chatbot.storage.models import Booking, ChecklistTick, Concern
from chatbot.uow import Units
from tests.conftest import COHOST, GOOD, HOST, action, submit
from tests.fakes import RecordingMessenger


def scripted(lines: Iterable[str]):  # type: ignore[no-untyped-def]
    queue = list(lines)
    prompts: list[str] = []

    async def read(prompt: str) -> str | None:
        prompts.append(prompt)
        return queue.pop(0) if queue else None

    return read, prompts


async def run(core: Units, email: str, lines: list[str]) -> str:
    out: list[str] = []
    read, _ = scripted(lines)
    console = Console(runtime_for(core), email, read, out.append)
    assert await console.run() == 0
    return "".join(out)


async def test_book_accept_and_slt_post_in_console(school: Units) -> None:
    out = await run(
        school,
        "teacher@school.test",
        [
            "/book-call",
            "Sam",  # pupils, resolved by name search
            "1",  # one-to-one
            "2026-12-01",
            "25:00",  # refused, asked again
            "",  # duration default
            "colleague@school.test",
            "",  # platform default
            "Sam reads to us",
            "10:00",  # the corrected start time
            "/as colleague@school.test",
            "1",  # the Accept button
            "/quit",
        ],
    )
    assert "is not a time of day" in out
    assert "Waiting for Colin Colleague" in out
    assert "posted in the SLT channel" in out
    async with school.db.transaction() as s:
        status = (await s.execute(select(Booking.status))).scalar_one()
    assert status == "confirmed"


async def test_cancelled_form_writes_nothing(school: Units) -> None:
    out = await run(school, "teacher@school.test", ["/book-call", "Sam", "cancel"])
    assert "nothing was saved" in out
    async with school.db.transaction() as s:
        assert (await s.execute(select(func.count(Booking.id)))).scalar_one() == 0


async def test_unknown_user_is_told_plainly(school: Units) -> None:
    out = await run(school, "stranger@elsewhere.test", ["/book-call"])
    assert "not on the school's staff roster" in out


async def test_ambiguous_name_asks_for_upn(school: Units) -> None:
    out = await run(school, "teacher@school.test", ["/book-call", "a", "cancel"])
    assert "matches several pupils" in out


async def run_with_prompts(core: Units, email: str, lines: list[str]) -> tuple[str, str]:
    out: list[str] = []
    read, prompts = scripted(lines)
    console = Console(runtime_for(core), email, read, out.append)
    assert await console.run() == 0
    return "".join(out), "\n".join(prompts)


async def book(core: Units) -> int:
    """Tuesday's call (GOOD), accepted by its co-host."""
    bot = build_bot(core)
    await bot.handle(submit(HOST, "book_call", GOOD))
    async with core.db.transaction() as s:
        booking_id = int((await s.execute(select(Booking.id))).scalar_one())
    await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    return booking_id


async def test_numbers_click_only_the_last_messages_buttons(
    school: Units, clock: FixedClock
) -> None:
    """Typing 2 to tick the second checklist item once cancelled a call: the 2 was still
    live on the list of calls further up."""
    booking_id = await book(school)
    clock.set(datetime(2026, 12, 1, 9, 50, tzinfo=UTC))  # ten minutes before the call
    # Everything due so far (the checklist's own message too) was delivered elsewhere.
    await build_bot(school).sweep()
    await Dispatcher(school.db, clock, RecordingMessenger()).drain()
    out = await run(
        school,
        HOST,
        [
            "/my-calls",  # [1] Checklist [2] Cancel call [3] Report a concern
            "1",  # open the checklist: its buttons are numbered from 1
            "2",  # the second checklist item
            "99",  # not on the last message: clicks nothing
            "/quit",
        ],
    )
    assert "[2] Done: Meeting set up from your school account" in out
    assert "Cancel this call?" not in out
    assert "There is no [99] on the latest message with buttons" in out
    async with school.db.transaction() as s:
        assert (await s.execute(select(Booking.status))).scalar_one() != "cancelled"
        ticks = (await s.execute(select(ChecklistTick.item_key))).scalars().all()
    assert "school_account" in ticks, out
    assert booking_id


async def test_cancelling_from_the_console_asks_first(school: Units) -> None:
    await book(school)
    out = await run(school, HOST, ["/my-calls", "2", "2", "/my-calls", "2", "1", "/quit"])
    assert out.count("Cancel this call?") == 2
    assert "[1] Yes, cancel the call" in out and "[2] No, keep it" in out
    async with school.db.transaction() as s:
        assert (await s.execute(select(Booking.status))).scalar_one() == "cancelled"
    assert out.index("still booked") < out.index("Cancelled Call #")


async def test_quit_inside_a_form_leaves_and_saves_nothing(school: Units) -> None:
    out = await run(school, HOST, ["/book-call", "Sam", "/quit", "/my-calls"])
    assert "nothing was saved" in out and "no upcoming calls" not in out
    out = await run(school, HOST, ["/concern", "/my-calls", "cancel", "/quit"])
    assert "answer the question, or type cancel" in out and "no upcoming calls" not in out
    async with school.db.transaction() as s:
        assert (await s.execute(select(func.count(Booking.id)))).scalar_one() == 0
        assert (await s.execute(select(func.count(Concern.id)))).scalar_one() == 0


async def test_help_is_one_text_naming_every_command(school: Units) -> None:
    out = await run(school, HOST, ["/help"])
    assert out.count("/book-call") == 1  # not a console list beside the bot's own
    assert "/consent letter" in out and "/concern" in out and "/my-calls" in out
    assert "/as EMAIL" in out and "/quit" in out


async def test_prompts_show_labels_not_internal_values(school: Units) -> None:
    booking_id = await book(school)
    out, prompts = await run_with_prompts(
        school, HOST, ["/book-call", "Sam", "cancel", "/my-calls", "3", "cancel", "/quit"]
    )
    assert "Type of call [One-to-one]" in prompts and "one_to_one" not in prompts
    # The concern form opened from the call chooses its pupil: shown by name, not by UPN.
    assert "Report a safeguarding concern" in out
    assert "Pupil (if the concern is about a pupil) (a name or UPN) [optional] [Sam T" in prompts
    assert "A123456789012" not in prompts
    assert booking_id
