"""The console adapter drives the same core: prompts, validation, numbered buttons."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from adapters.console.app import Console
from adapters.server import runtime_for
from chatbot.storage.models import Booking
from chatbot.uow import Units


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
