"""Booking submissions through ``Bot.handle`` alone: no HTTP, no platform SDK.

    python bench/core_booking.py [--bookings 1000] [--concurrency 50] [--database-url URL]

Seeds 100 staff and 1,100 pupils with consent, then submits bookings (every rule checked,
each one stored with its audit event and co-host request) from concurrent tasks, and prints
bookings per second and CPU milliseconds per booking. This is the floor under the Slack and
Teams ack benchmarks: whatever the adapter costs comes on top.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_school import PUPILS, STAFF, email, school_days, seed, upn  # noqa: E402

from chatbot.bootstrap import build_bot  # noqa: E402
from chatbot.interaction import Interaction, UserRef  # noqa: E402
from chatbot.policy import default_policy  # noqa: E402
from chatbot.storage.db import Database  # noqa: E402
from chatbot.uow import Units  # noqa: E402


def booking(n: int, host: int, cohost: int, day: date) -> Interaction:
    start = datetime(2000, 1, 1, 9, 0) + timedelta(minutes=30 * (n % 12))
    values: dict[str, Any] = {
        "pupils": [upn(n % PUPILS)],
        "kind": "one_to_one",
        "date": day.isoformat(),
        "start": f"{start:%H:%M}",
        "duration": "20",
        "cohost": email(cohost),
        "platform": "Zoom",
        "plan": "Share a reading book.",
    }
    return Interaction(
        platform="slack",
        kind="submit",
        actor=UserRef(platform="slack", user_id=f"U{host:06d}", email=email(host)),
        name="book_call",
        values=values,
        delivery_id=f"bench-{n}",
    )


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        db = Database(url)
        if db.dialect == "postgresql":
            from sqlalchemy import text

            async with db.engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        await db.create_all()
        core = Units(db=db, policy=default_policy())
        bot = build_bot(core)
        await seed(core)
        today = datetime.now(UTC).date()
        days = school_days(core.policy, today + timedelta(days=14 - today.weekday()), 60)
        c = args.concurrency
        per_task = args.bookings // c
        stored = refused = 0

        async def client(k: int) -> None:
            nonlocal stored, refused
            for i in range(per_task):
                n = k * per_task + i
                # Each (host, slot, day) and (pupil, week) is used once, so every one is stored.
                day = days[n // (12 * STAFF // 2)]
                host = n // 12 % (STAFF // 2)
                effects = await bot.handle(booking(n, host, STAFF // 2 + host, day))
                if type(effects[0]).__name__ == "CloseForm":
                    stored += 1
                else:
                    refused += 1

        await bot.handle(booking(10**6, 0, 1, days[-1]))  # warm-up: connections, caches
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(c)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        await db.dispose()
    total = stored + refused
    print(f"{db.dialect}: {total} submissions ({stored} stored, {refused} refused), {c} tasks")
    print(f"  {total / wall:.0f} bookings/s, {1000 * cpu / total:.2f} ms CPU per booking")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bookings", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--database-url")
    raise SystemExit(asyncio.run(main(p.parse_args())))
