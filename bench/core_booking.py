"""CPU per booking through ``Bot.handle`` alone (no HTTP, no platform SDK), beside its floor.

    python bench/core_booking.py [--bookings 1000] [--concurrency 50] [--database-url URL]

On a fresh SQLite file, and also on ``--database-url`` when given (a PostgreSQL database whose
public schema is emptied first), each migrated as ``chatbot serve`` migrates it and seeded with
100 staff and 1,100 pupils with consent:

1. ``--bookings`` booking submissions from ``--concurrency`` tasks, each a booking every rule
   allows (bench_school.BookingPlan), so each is checked and stored with its audit event and
   co-host request. Stored and refused ones are counted (in the answers and in the database):
   a refused booking is cheaper than a stored one, so refusals would flatter the figure and
   fail the row.
2. The floor: as many one-INSERT transactions, from as many tasks, through the same
   ``chatbot.storage.db.Database`` class (bench/floor.py): the part of a booking's CPU that
   is the database driver and SQLAlchemy committing a row at all.
3. The statements floor: as many transactions again, each running as many statements as a
   stored booking ran in step 1 (counted there, BEGIN included where the driver sends one),
   as plain SQLAlchemy Core on the same database: the floor's INSERT, after as many
   primary-key reads as make up the difference (bench/floor.py). What a booking's
   statements cost through this stack with no logic around them: the least this design (one
   transaction, SQLAlchemy, these drivers) can spend on a booking.

Prints, per database, this process's CPU time per stored booking beside the target from
issue #10 (at most 3 ms) and the floor's CPU per INSERT. On PostgreSQL the server's own CPU
is not counted (it runs in other processes), only the bot's. The exit status is 0 only when
every database meets the target.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_school import PUPILS, STAFF, BookingPlan, email, seed  # noqa: E402
from floor import Floor  # noqa: E402
from report import load_average  # noqa: E402
from sqlalchemy import event, func, select, text  # noqa: E402

from chatbot.bootstrap import build_bot  # noqa: E402
from chatbot.effects import CloseForm, FormErrors  # noqa: E402
from chatbot.interaction import Interaction, UserRef  # noqa: E402
from chatbot.policy import default_policy  # noqa: E402
from chatbot.storage.db import Database  # noqa: E402
from chatbot.storage.migrate import upgrade  # noqa: E402
from chatbot.storage.models import Booking  # noqa: E402
from chatbot.uow import Units  # noqa: E402

TARGET_MS = 3.0


def booking(n: int, plan: BookingPlan) -> Interaction:
    p = plan[n]
    return Interaction(
        platform="slack",
        kind="submit",
        actor=UserRef(platform="slack", user_id=f"U{p.host:06d}", email=email(p.host)),
        name="book_call",
        values=p.values(cohost=email(p.cohost)),
        delivery_id=f"bench-{n}",
    )


async def fresh(url: str) -> Database:
    db = Database(url)
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await upgrade(db)
    return db


async def concurrently(
    tasks: int, total: int, one: Callable[[int], Awaitable[None]]
) -> tuple[float, float]:
    """Run ``one(i)`` for i in 0..total-1 from ``tasks`` tasks; (CPU seconds, wall seconds)."""
    numbers = iter(range(total))

    async def task() -> None:
        for i in numbers:
            await one(i)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(task() for _ in range(tasks)))
    return time.process_time() - cpu0, time.perf_counter() - t0


async def run(url: str, args: argparse.Namespace) -> tuple[str, bool]:
    """Bookings then the floor on one database; returns (the printed row, target met)."""
    db = await fresh(url)
    core = Units(db=db, policy=default_policy())
    bot = build_bot(core)
    await seed(core)
    plan = BookingPlan(core.policy, datetime.now(UTC).date())
    answers = {"stored": 0, "refused": 0, "other": 0}
    warm = 2 * args.concurrency

    async def submit(n: int) -> None:
        effects = await bot.handle(booking(n, plan))
        first = effects[0] if effects else None
        kind = "stored" if isinstance(first, CloseForm) else "other"
        answers["refused" if isinstance(first, FormErrors) else kind] += 1

    for n in range(warm):  # warm-up: connections, caches, statements (not measured)
        await submit(n)
    answers.update(stored=0, refused=0, other=0)
    async with db.reading() as s:
        before = (await s.execute(select(func.count()).select_from(Booking))).scalar_one()
    executed = [0]

    def counted(*_: object) -> None:
        executed[0] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", counted)
    cpu, wall = await concurrently(args.concurrency, args.bookings, lambda i: submit(warm + i))
    event.remove(db.engine.sync_engine, "before_cursor_execute", counted)
    async with db.reading() as s:
        stored = (await s.execute(select(func.count()).select_from(Booking))).scalar_one() - before
    statements = round(executed[0] / max(stored, 1))
    dialect = db.dialect
    await db.dispose()

    floor = Floor(url)
    await floor.create()
    reads = max(statements - await floor.statements(), 0)  # the statements floor's extra

    async def floor_cpu_and_rate(kind: str, reads: int) -> tuple[float, float]:
        for i in range(warm):
            await floor.store(f"warm-{kind}-{i}", "U0", "book_call", reads)
        cpu, wall = await concurrently(
            args.concurrency,
            args.bookings,
            lambda i: floor.store(f"{kind}-{i}", f"U{i % STAFF:06d}", "book_call", reads),
        )
        return 1000 * cpu / args.bookings, args.bookings / wall

    floor_cpu, floor_rate = await floor_cpu_and_rate("insert", 0)
    stmts_cpu, stmts_rate = await floor_cpu_and_rate("stmts", reads)
    await floor.dispose()

    total = sum(answers.values())
    refused = total - stored
    per_booking = 1000 * cpu / max(stored, 1)
    why = []
    if per_booking > TARGET_MS:
        why.append(f"{per_booking:.2f} ms")
    if refused or answers["stored"] != stored:
        why.append(f"{refused} not stored")
    verdict = "PASS" if not why else "MISS (" + "; ".join(why) + ")"
    line = (
        f"{dialect:<11}{total:>8}{stored:>8}{refused:>8}{total / wall:>11.0f}{per_booking:>11.2f}"
        f"{floor_rate:>11.0f}{floor_cpu:>11.2f}"
        f"{statements:>7}{stmts_rate:>9.0f}{stmts_cpu:>11.2f}"
        f"   <= {TARGET_MS} ms   {verdict}"
    )
    return line, not why


async def main(args: argparse.Namespace) -> int:
    load_before = load_average()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for url in [f"sqlite+aiosqlite:///{tmp}/bench.db", *filter(None, [args.database_url])]:
            rows.append(await run(url, args))
    print(
        f"\nBookings through Bot.handle: {args.bookings} submissions from {args.concurrency} "
        f"tasks ({STAFF} staff, {PUPILS} pupils); cpu ms = this process's CPU per stored "
        f"booking.\nFloor: one INSERT committed per transaction through the same Database "
        f"class, from as many tasks.\nStatements floor: as many transactions, each running "
        f"as many SQLAlchemy Core statements as a booking ran (stmts, BEGIN included): reads by "
        f"primary key and one INSERT.\nMachine load average {load_before} at the start, "
        f"{load_average()} at the end.\n"
    )
    head = (
        f"{'database':<11}{'submits':>8}{'stored':>8}{'refused':>8}{'booked/s':>11}"
        f"{'cpu ms':>11}{'floor/s':>11}{'floor cpu':>11}{'stmts':>7}{'stmts/s':>9}"
        f"{'stmts cpu':>11}   {'target':<13}verdict"
    )
    print(head)
    print("-" * len(head))
    for line, _ in rows:
        print(line)
    return 0 if all(ok for _, ok in rows) else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bookings", type=int, default=1000, help="measured submissions (1000)")
    p.add_argument("--concurrency", type=int, default=50, help="concurrent tasks (50)")
    p.add_argument("--database-url", help="also run on this PostgreSQL database")
    raise SystemExit(asyncio.run(main(p.parse_args())))
