"""CPU per operation through ``Bot.handle`` and per outbox delivery, beside one INSERT.

    python bench/core_ops.py [--count 400] [--database-url postgresql+asyncpg://...]

Where ``bench/slack_ack.py`` measures whole servers under load (and so also bolt, aiohttp,
the loopback Slack API and the load generator sharing the machine's cores), this measures the
core alone, one operation at a time, in this process: the part of each request that is ours.

On a fresh SQLite file (or ``--database-url``, a PostgreSQL database whose public schema is
emptied first), migrated and seeded as bench_school seeds it:

- ``/book-call``: the command that opens the booking form (a read; no delivery id);
- checklist.open: a host's click on their call's checklist (a read);
- concern: a /concern submission about a pupil, filed with its chronology, audit row, DSL
  alert and receipt;
- booking: a booking submission every rule allows, stored with its co-host request;
- cohost.accept: the co-host's Accept, each on a different booking;
- outbox delivery: one queued notice delivered to the loopback Slack Web API (a process of
  its own, whose CPU is not counted) and marked delivered: DSL channel posts and direct
  messages, half each;
- the floor: one INSERT committed per transaction through the same ``Database`` class.

Prints CPU milliseconds per operation, and each one's multiple of the floor. No target: the
Slack and Teams targets are held against whole servers in slack_ack.py and teams_ack.py, and
the booking's 3 ms in core_booking.py.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_school import PUPILS, STAFF, BookingPlan, email, seed, upn  # noqa: E402
from core_booking import fresh  # noqa: E402
from floor import Floor  # noqa: E402
from report import load_average  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from chatbot.bootstrap import build_bot  # noqa: E402
from chatbot.concerns.filing import FORM_ID, STAFF_CATEGORY  # noqa: E402
from chatbot.effects import CloseForm, Effect, Ephemeral, OpenForm, Reply  # noqa: E402
from chatbot.interaction import Interaction, UserRef  # noqa: E402
from chatbot.policy import default_policy  # noqa: E402
from chatbot.storage.models import Booking, Staff  # noqa: E402
from chatbot.ui import Message, Section  # noqa: E402
from chatbot.uow import Units  # noqa: E402

NARRATIVE = (
    "During the reading call the pupil said an older boy they met online keeps asking them to "
    "turn their camera on when they are alone, and told them not to tell anyone."
)


def actor(n: int) -> UserRef:
    return UserRef(platform="slack", user_id=f"U{n:06d}", email=email(n))


async def cpu_per(count: int, one: Callable[[int], Awaitable[None]]) -> float:
    """CPU milliseconds per call of ``one(i)``, i in 0..count-1, one at a time. Each kind
    starts from a collected heap, so no kind pays for garbage another one left."""
    gc.collect()
    t0 = time.process_time()
    for i in range(count):
        await one(i)
    return 1000 * (time.process_time() - t0) / count


def expect(effects: list[Effect], kind: type, what: str) -> None:
    """Each measured operation must do its whole job: a refusal would flatter the figure."""
    if not any(isinstance(e, kind) for e in effects):
        raise SystemExit(f"{what} did not do its job: {effects!r:.300}")


async def operations(url: str, count: int, api_port: int) -> list[tuple[str, float]]:
    db = await fresh(url)
    units = Units(db=db, policy=default_policy())
    bot = build_bot(units)
    await seed(units)
    policy = units.policy
    category = next(c.key for c in policy.concern_categories if c.key != STAFF_CATEGORY)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    plan = BookingPlan(policy, datetime.now(UTC).date())
    deliveries = iter(range(10**9))

    def booking(n: int) -> Interaction:
        p = plan[n]
        values = p.values(cohost=email(p.cohost))
        return Interaction(
            platform="slack",
            kind="submit",
            actor=actor(p.host),
            name="book_call",
            values=values,
            delivery_id=f"b{next(deliveries)}",
        )

    def concern(n: int) -> Interaction:
        values = {
            "category": category,
            "risk": "no",
            "when_date": yesterday,
            "when_time": "10:30",
            "pupil": upn(n % PUPILS),
            "narrative": NARRATIVE,
        }
        return Interaction(
            platform="slack",
            kind="submit",
            actor=actor(n % STAFF),
            name=FORM_ID,
            values=values,
            delivery_id=f"c{next(deliveries)}",
        )

    def click(name: str, who: int, value: int) -> Interaction:
        return Interaction(
            platform="slack",
            kind="action",
            actor=actor(who),
            name=name,
            value=str(value),
            delivery_id=f"a{next(deliveries)}",
        )

    async def run(i: Interaction, kind: type, what: str) -> None:
        expect(await bot.handle(i), kind, what)

    # Bookings to click on (and the warm-up of connections, caches and statements).
    for n in range(count + 20):
        await run(booking(n), CloseForm, "a booking")
    async with db.reading() as s:
        number = {email(n): n for n in range(STAFF)}
        who = {i: number.get(e, -1) for i, e in await s.execute(select(Staff.id, Staff.email))}
        booked = [
            (b, who[h], who[c])
            for b, h, c in await s.execute(
                select(Booking.id, Booking.host_id, Booking.cohost_id).order_by(Booking.id)
            )
        ]
    command = Interaction(platform="slack", kind="command", actor=actor(0), text="/book-call")
    for n in range(20):
        await run(replace(command, actor=actor(n)), OpenForm, "/book-call")
        await run(concern(n), CloseForm, "a concern")
        await run(click("checklist.open", booked[n][1], booked[n][0]), Reply, "checklist.open")

    figures = [
        (
            "/book-call",
            await cpu_per(
                count,
                lambda n: run(replace(command, actor=actor(n % STAFF)), OpenForm, "/book-call"),
            ),
        ),
        (
            "checklist.open",
            await cpu_per(
                count,
                lambda n: run(
                    click("checklist.open", booked[n][1], booked[n][0]), Reply, "checklist.open"
                ),
            ),
        ),
        ("concern", await cpu_per(count, lambda n: run(concern(n), CloseForm, "a concern"))),
        (
            "booking",
            await cpu_per(count, lambda n: run(booking(count + 20 + n), CloseForm, "a booking")),
        ),
        (
            "cohost.accept",
            await cpu_per(
                count,
                lambda n: run(
                    click("cohost.accept", booked[20 + n][2], booked[20 + n][0]),
                    Ephemeral,
                    "cohost.accept",
                ),
            ),
        ),
    ]
    async with db.reading() as s:
        confirmed = await s.execute(
            select(func.count()).select_from(Booking).where(Booking.status == "confirmed")
        )
        if confirmed.scalar_one() != count:
            raise SystemExit("cohost.accept: not every Accept confirmed its call")
    figures.append(("outbox delivery", await deliveries_cpu(units, count, api_port)))
    await db.dispose()
    return figures


async def deliveries_cpu(units: Units, count: int, port: int) -> float:
    """CPU per notice delivered to the loopback Slack Web API by the server's own dispatcher
    (as ``chatbot serve`` builds it); the queue is emptied first."""
    from aiohttp import web

    from adapters.server import build_app, runtime_for
    from chatbot.config import Settings

    settings = Settings(
        database_url=units.db.url,
        slack_bot_token="xoxb-bench",
        slack_signing_secret="bench-signing-secret-0123456789abcdef",
        slack_api_url=f"http://127.0.0.1:{port}/api/",
        slack_dsl_channel="C0DSL",
        slack_slt_channel="C0SLT",
    )
    runtime = runtime_for(units, settings)
    runner = web.AppRunner(build_app(runtime, with_scheduler=False))
    await runner.setup()  # starts the Slack adapter's HTTP session, as serving does
    try:
        await runtime.dispatcher.drain(rounds=10**6)  # what the operations queued
        async with units.read() as u:
            known = [email(n) for n in range(STAFF)]  # the ones the loopback API knows
            found = await u.session.execute(select(Staff.id).where(Staff.email.in_(known)))
            staff = list(found.scalars())
        async with units.write() as u:
            for n in range(count):
                note = Message(f"Notice {n}", (Section(f"**Notice {n}** for the bench"),))
                if n % 2:
                    u.to_role("dsl", note, thread_key=f"bench:{n}")
                else:
                    u.to_staff(staff[n % len(staff)], note)
        gc.collect()
        t0 = time.process_time()
        report = await runtime.dispatcher.drain(rounds=10**6)
        cpu = time.process_time() - t0
    finally:
        await runner.cleanup()
    if report.delivered != count:
        raise SystemExit(f"outbox: {report.delivered} of {count} delivered")
    return 1000 * cpu / count


async def floor_cpu(url: str, count: int) -> float:
    floor = Floor(url)
    await floor.create()
    for i in range(20):
        await floor.store(f"warm-{i}", "U0", "book_call")
    ms = await cpu_per(count, lambda i: floor.store(f"op-{i}", f"U{i % STAFF:06d}", "book_call"))
    await floor.dispose()
    return ms


async def main(args: argparse.Namespace) -> int:
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        figures = await operations(url, args.count, args.api_port)
        floor = await floor_cpu(
            args.database_url or f"sqlite+aiosqlite:///{tmp}/floor.db", args.count
        )
    store = url.split("+")[0].split(":")[0]
    print(
        f"\nCore operations through Bot.handle, one at a time, {args.count} of each, on {store} "
        f"({STAFF} staff, {PUPILS} pupils);\ncpu ms = this process's CPU per operation. Floor: "
        f"one INSERT committed per transaction through the same Database class.\n"
        f"Machine load average {load_before} at the start, {load_average()} at the end.\n"
    )
    print(f"{'operation':<18}{'cpu ms':>8}{'x floor':>9}")
    print("-" * 35)
    for name, ms in figures:
        print(f"{name:<18}{ms:>8.2f}{ms / floor:>8.1f}x")
    print(f"{'floor: one INSERT':<18}{floor:>8.2f}{1:>8.1f}x")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--count", type=int, default=400, help="operations of each kind (400)")
    p.add_argument("--database-url", help="a PostgreSQL database instead of SQLite")
    args = p.parse_args()
    # The loopback Slack Web API, in a process of its own (its CPU is not ours).
    api = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "slack_ack.py"), "--serve", "api"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )
    try:
        assert api.stdout is not None
        args.api_port = int(api.stdout.readline().split()[1])
        raise SystemExit(asyncio.run(main(args)))
    finally:
        api.kill()
