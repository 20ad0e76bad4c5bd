"""Teams acks: `book-call` message activities to our endpoint, beside a bare botbuilder bot.

    .venv/bin/python bench/teams_ack.py [--clients 50] [--requests 3000] [--seconds 20]
                                        [--rounds 2] [--database-url URL]

Both servers run on 127.0.0.1 in this process and reply through the same loopback Bot
Connector (its own process); another process runs the clients: ``--clients`` concurrent
clients post message activities (each as a different member of staff) until ``--requests``
are answered or ``--seconds`` pass, in ``--rounds`` rounds alternating the bare bot and ours
(so other work on the machine weighs on both alike). Our server answers `book-call` with the
full booking form card (pupil and staff pickers filled from the database); the bare bot is
the framework's stock ``CloudAdapter`` + ``ActivityHandler`` echoing the text. Both run
without authentication: ours in Bot Framework Emulator mode, as ``chatbot serve
--teams-emulator`` runs it.

Prints ours and the bare bot (requests/s, p50, p99, server CPU ms per request), the ratio and
the target from issue #10 (at least 2x the bare bot, p99 under 300 ms), PASS or MISS; the exit
status is 0 only on PASS.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from botbuilder.core import ActivityHandler, TurnContext  # noqa: E402
from botbuilder.integration.aiohttp import (  # noqa: E402
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from report import HEADER, Run, Target, load_average, passed, process_cpu, row  # noqa: E402

from adapters.server import (  # noqa: E402
    build_app,
    runtime_for,
    settle_heap,
)
from chatbot.config import Settings  # noqa: E402
from chatbot.policy import default_policy  # noqa: E402
from chatbot.ports import FixedClock  # noqa: E402
from chatbot.roster import importer as roster  # noqa: E402
from chatbot.uow import Units  # noqa: E402
from tests.doubles.bot_connector import LoopbackConnector  # noqa: E402

TARGET = Target(2.0, p99_ms=300)
IDS = itertools.count(1)


def teams_settings() -> Settings:
    """The one place our Teams server's settings are made: as ``chatbot serve
    --teams-emulator`` runs it, unauthenticated, on 127.0.0.1, replying to loopback only."""
    return Settings(teams_emulator=True, listen_host="127.0.0.1")


def activity(service_url: str, n: int, text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"bench-{next(IDS)}",
        "text": text,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "timestamp": "2026-11-30T08:00:00.000Z",
        "from": {"id": f"29:staff{n}", "aadObjectId": f"aad-staff{n}", "name": f"Staff {n}"},
        "conversation": {
            "conversationType": "personal",
            "id": f"a:chat-{n}",
            "tenantId": "tenant-1",
        },
        "recipient": {"id": "28:bot", "name": "Safe Video"},
        "channelData": {"tenant": {"id": "tenant-1"}},
        "locale": "en-GB",
    }


async def load(
    url: str, service_url: str, clients: int, requests: int, seconds: float, text: str
) -> Run:
    run = Run()
    remaining = itertools.count()
    deadline = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def client(n: int) -> None:
            while next(remaining) < requests and time.perf_counter() < deadline:
                body = json.dumps(activity(service_url, n, text))
                t0 = time.perf_counter()
                try:
                    async with session.post(
                        url, data=body, headers={"Content-Type": "application/json"}
                    ) as r:
                        await r.read()
                except aiohttp.ClientError:
                    run.outcomes["no answer"] += 1
                    continue
                latency = time.perf_counter() - t0
                run.outcomes["ok" if 200 <= r.status < 300 else f"HTTP {r.status}"] += 1
                if 200 <= r.status < 300:
                    run.latencies.append(latency)

        start = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        run.seconds = time.perf_counter() - start
    return run


def run_connector(queue: Any, clients: int) -> None:
    """The loopback Bot Connector, in its own process like the real one."""

    async def serve_forever() -> None:
        connector = LoopbackConnector(record=False)
        for n in range(clients):
            connector.add_member(f"29:staff{n}", f"aad-staff{n}", f"staff{n}@school.test")
        queue.put(await connector.start())
        await asyncio.Event().wait()

    asyncio.run(serve_forever())


def run_load(
    url: str, service_url: str, clients: int, requests: int, seconds: float, text: str
) -> Run:
    """The load generator, run in its own process so it does not share the servers' CPU."""
    return asyncio.run(load(url, service_url, clients, requests, seconds, text))


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages"


class Echo(ActivityHandler):
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(f"Echo: {turn_context.activity.text}")


def bare_app() -> web.Application:
    config = SimpleNamespace(APP_ID="", APP_PASSWORD="", APP_TYPE="MultiTenant", APP_TENANTID="")
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
    bot = Echo()

    async def messages(request: web.Request) -> web.Response:
        return await adapter.process(request, bot)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    return app


async def our_app(tmp: Path, staff: int, url: str = "") -> web.Application:
    from tests.conftest import fresh_database

    db = await fresh_database(url or f"sqlite+aiosqlite:///{tmp}/bench.db")
    core = Units(
        db=db, policy=default_policy(), clock=FixedClock(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    )
    csv = "email,forename,surname,roles\n" + "".join(
        f"staff{n}@school.test,Staff,Member{n},staff\n" for n in range(staff)
    )
    await roster.import_staff(core, csv)
    pupils = "upn,forename,surname,class,parent_email\n" + "".join(
        f"A{n:012d},Pupil,Name{n},Year {3 + n % 4},parent{n}@home.test\n" for n in range(60)
    )
    await roster.import_pupils(core, pupils)
    return build_app(runtime_for(core, teams_settings()), with_scheduler=False)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=3000, help="per server (default 3000)")
    ap.add_argument("--seconds", type=float, default=20.0, help="time cap per server")
    ap.add_argument("--rounds", type=int, default=2, help="alternate bare and ours (default 2)")
    ap.add_argument(
        "--database-url",
        default="",
        help="an empty database to use (PostgreSQL: a schema of its own is dropped and "
        "recreated); default: a temporary SQLite file",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    load_before = load_average()

    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    connector = spawn.Process(target=run_connector, args=(queue, args.clients), daemon=True)
    connector.start()
    service_url = await asyncio.get_running_loop().run_in_executor(None, queue.get, True, 60)

    with tempfile.TemporaryDirectory() as tmp:
        ours, our_url = await serve(await our_app(Path(tmp), args.clients, args.database_url))
        bare, bare_url = await serve(bare_app())
        settle_heap()  # as chatbot serve does once it has started (the bare bot gains too)
        loop = asyncio.get_running_loop()
        pool = ProcessPoolExecutor(max_workers=1, mp_context=spawn)

        async def measure(url: str, requests: int, seconds: float, text: str) -> Run:
            # Both servers live in this process; only the one being measured gets traffic.
            cpu0 = process_cpu([os.getpid()])
            run: Run = await loop.run_in_executor(
                pool, run_load, url, service_url, args.clients, requests, seconds, text
            )
            cpu1 = process_cpu([os.getpid()])
            run.cpu_seconds = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
            return run

        try:
            # Warm up both (first contact resolves each person's identity by email).
            await measure(our_url, args.clients * 2, 60, "book-call")
            await measure(bare_url, args.clients * 2, 60, "hello")
            bare_r, our_r = Run(), Run()
            rounds = max(1, args.rounds)
            for _ in range(rounds):
                chunk, seconds = args.requests // rounds, args.seconds / rounds
                bare_r.add(await measure(bare_url, chunk, seconds, "hello"))
                our_r.add(await measure(our_url, chunk, seconds, "book-call"))
        finally:
            pool.shutdown()
            await ours.cleanup()
            await bare.cleanup()
            connector.terminate()
            connector.join(10)
    database = args.database_url.split("@")[-1] if args.database_url else "SQLite"
    print(
        f"\nTeams acks: {args.clients} concurrent clients, message activities to /api/messages "
        f"over loopback, replies to a loopback Bot Connector; {args.rounds} round(s) "
        f"alternating the bare bot and ours; database {database}.\n"
        f"Floor: bare = botbuilder's stock CloudAdapter + ActivityHandler echoing the text; "
        f"ours answers book-call with the booking form card.\n"
        f"cpu ms = the servers' process CPU per request. Machine load average {load_before} at "
        f"the start, {load_average()} at the end.\n"
    )
    print(HEADER)
    print("-" * len(HEADER.splitlines()[1]))
    line = row("book-call message", our_r, "bare echo", bare_r, TARGET)
    print(line)
    print(f"\nanswers: ours {dict(our_r.outcomes)}, bare {dict(bare_r.outcomes)}")
    return 0 if passed(line) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
