"""Slack ack latency benchmark: the real server versus a bare bolt app, in the same run.

    python bench/slack_ack.py [--clients 50] [--requests 2000] [--seconds 60]
                              [--replicas N] [--database-url postgresql+asyncpg://...]

Starts three processes on 127.0.0.1: a loopback stand-in for the Slack Web API, the real
server (adapters.server.build_app with the scheduler, SQLite in a temp dir, a seeded roster of
100 staff and 1,100 pupils with consent) and a bare slack-bolt AsyncApp that acks and does
nothing. Then 50 concurrent aiohttp clients send signed ``/book-call`` commands and booking
``view_submission``s (alternately) to each server in turn, for a bounded count or time, and it
prints ack latency p50/p99 and throughput for both. Target: p99 < 300 ms at 50 concurrent
clients, and at least half the bare app's throughput.

``--replicas N`` runs N copies of the real server on one port (SO_REUSEPORT, so the kernel
spreads connections between them) sharing one database, as several replicas would; with
``--database-url`` that database is the given one (its public schema is emptied first)
instead of a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from adapters.slack.fake_api import (  # noqa: E402
    FORM,
    FakeSlackAPI,
    command_body,
    interactive_body,
    signed_headers,
)
from aiohttp import web  # noqa: E402
from bench_school import PUPILS, STAFF, email, school_days, seed, upn  # noqa: E402

from chatbot.policy import Policy  # noqa: E402

SECRET = "bench-signing-secret-0123456789abcdef"
TOKEN = "xoxb-bench"
TEAM = "T0BENCH"


def uid(n: int) -> str:
    return f"U{n:06d}"


# ----- the three servers (each runs in its own process) -----


async def _listen(app: web.Application, port: int = 0) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024, reuse_port=True)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"READY {port}", flush=True)
    await asyncio.Event().wait()


async def serve_fake_api() -> None:
    api = FakeSlackAPI(
        token=TOKEN, users={uid(n): email(n) for n in range(STAFF)}, team_id=TEAM, record=False
    )
    await _listen(api.app())


async def serve_real(api_url: str, database_url: str, port: int) -> None:
    from adapters.runtime import build_runtime

    from adapters.server import build_app
    from chatbot.config import Settings

    first = port == 0
    if first and database_url.startswith("postgresql"):
        from sqlalchemy import text

        from chatbot.storage.db import Database

        db = Database(database_url)
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await db.dispose()
    settings = Settings(
        database_url=database_url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=api_url,
        slack_dsl_channel="C0DSL",
        slack_slt_channel="C0SLT",
    )
    runtime = await build_runtime(settings, migrate=first)
    if first:
        await seed(runtime.core)
    await _listen(build_app(runtime), port)  # with the scheduler, as in production


async def serve_bare(api_url: str) -> None:
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.app.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    bolt = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=api_url), signing_secret=SECRET)

    @bolt.command("/book-call")
    async def _cmd(ack: Any) -> None:
        await ack()

    @bolt.view("book_call")
    async def _view(ack: Any) -> None:
        await ack()

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    await _listen(app)


# ----- the clients -----


@dataclass
class Result:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"command": [], "submit": []})
    errors: int = 0
    elapsed: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def all(self) -> list[float]:
        return self.latencies["command"] + self.latencies["submit"]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k] * 1000


def booking_view() -> dict[str, Any]:
    from chatbot.core import Core
    from chatbot.services.booking import booking_form

    from adapters.slack.blocks import form_view
    from chatbot.policy import Policy

    return form_view(booking_form(Core(db=None, policy=Policy())))  # type: ignore[arg-type]


def submission(
    view: dict[str, Any], user: int, cohost: int, pupil: int, day: date, slot: int, trigger: str
) -> str:
    start = datetime(2000, 1, 1, 9, 0) + timedelta(minutes=30 * slot)
    sel = {"type": "plain_text", "text": "x"}
    state = {
        "pupils": {
            "pupils": {
                "type": "multi_external_select",
                "selected_options": [{"text": sel, "value": upn(pupil)}],
            }
        },
        "kind": {
            "kind": {
                "type": "static_select",
                "selected_option": {"text": sel, "value": "one_to_one"},
            }
        },
        "date": {"date": {"type": "datepicker", "selected_date": day.isoformat()}},
        "start": {"start": {"type": "timepicker", "selected_time": f"{start:%H:%M}"}},
        "duration": {"duration": {"type": "number_input", "value": "20"}},
        "cohost": {"cohost": {"type": "users_select", "selected_user": uid(cohost)}},
        "platform": {
            "platform": {"type": "static_select", "selected_option": {"text": sel, "value": "Zoom"}}
        },
        "plan": {"plan": {"type": "plain_text_input", "value": "Share a reading book."}},
    }
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "bench"},
        "user": {"id": uid(user), "username": f"u{user}", "name": f"u{user}", "team_id": TEAM},
        "api_app_id": "A0BENCH",
        "token": "x",
        "trigger_id": trigger,
        "view": {
            **view,
            "id": f"V{trigger}",
            "team_id": TEAM,
            "hash": "1.x",
            "state": {"values": state},
            "root_view_id": f"V{trigger}",
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return interactive_body(payload)


def command(user: int, trigger: str) -> str:
    return command_body(
        {
            "token": "x",
            "team_id": TEAM,
            "team_domain": "bench",
            "channel_id": "C0BENCH",
            "channel_name": "bench",
            "user_id": uid(user),
            "user_name": f"u{user}",
            "command": "/book-call",
            "text": "",
            "api_app_id": "A0BENCH",
            "is_enterprise_install": "false",
            "response_url": "http://127.0.0.1:9/response",
            "trigger_id": trigger,
        }
    )


async def drive(
    name: str,
    url: str,
    clients: int,
    requests: int,
    seconds: float,
    days: list[date],
    view: dict[str, Any],
    pupil_base: int,
) -> Result:
    result = Result(name)
    per_client = max(1, requests // clients)
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=clients * 2)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(kind: str, body: str) -> None:
            headers = signed_headers(SECRET, body, FORM)
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body.encode(), headers=headers) as resp:
                    text = await resp.read()
                    ok = resp.status == 200
            except aiohttp.ClientError:
                ok, text = False, b""
            dt = time.perf_counter() - t0
            if not ok:
                result.errors += 1
                return
            result.latencies[kind].append(dt)
            outcome = "errors" if b"response_action" in text else ("ephemeral" if text else "empty")
            result.outcomes[f"{kind}:{outcome}"] = result.outcomes.get(f"{kind}:{outcome}", 0) + 1

        async def client(c: int) -> None:
            for i in range(per_client // 2):
                if time.perf_counter() > deadline:
                    return
                trig = f"{name}.{c}.{i}.{time.time_ns()}"
                await one("command", command(c, "c" + trig))
                slot = i % 12
                day = days[(i // 12) % len(days)]
                pupil = pupil_base + (c * (per_client // 2) + i) % 1000
                await one("submit", submission(view, c, clients + c, pupil, day, slot, "s" + trig))

        t0 = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        result.elapsed = time.perf_counter() - t0
    return result


def spawn(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=str(ROOT)
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"server {args} did not start: {line!r}")
    return proc, int(line.split()[1])


def report(r: Result) -> dict[str, float]:
    n = len(r.all)
    return {
        "requests": n,
        "errors": r.errors,
        "seconds": r.elapsed,
        "throughput": n / r.elapsed if r.elapsed else 0.0,
        "p50": pct(r.all, 50),
        "p99": pct(r.all, 99),
        "max": max(r.all) * 1000 if r.all else 0,
        "cmd_p99": pct(r.latencies["command"], 99),
        "submit_p99": pct(r.latencies["submit"], 99),
        "mean": statistics.mean(r.all) * 1000 if r.all else 0,
    }


async def main(args: argparse.Namespace) -> int:
    procs: list[subprocess.Popen[str]] = []
    try:
        api, api_port = spawn("--serve", "api")
        procs.append(api)
        api_url = f"http://127.0.0.1:{api_port}/api/"
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            db_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
            real, real_port = spawn("--serve", "real", "--api-url", api_url, "--db-url", db_url)
            procs.append(real)
            for _ in range(args.replicas - 1):
                procs.append(
                    spawn(
                        "--serve", "real", "--api-url", api_url, "--db-url", db_url,
                        "--port", str(real_port),
                    )[0]
                )  # fmt: skip
            print(
                f"real server ready ({args.replicas} replica(s) on {db_url.split(':')[0]}, "
                f"seeded {STAFF} staff, {PUPILS} pupils) in {time.perf_counter() - t0:.1f}s",
                flush=True,
            )
            bare, bare_port = spawn("--serve", "bare", "--api-url", api_url)
            procs.append(bare)
            # Next Monday, a week ahead: every slot is bookable with notice to spare.
            today = datetime.now(UTC).date()
            monday = today + timedelta(days=7 - today.weekday() + 7)
            days = school_days(Policy(), monday, 10)
            view = booking_view()
            targets = [("bare bolt app", bare_port, 0), ("real server", real_port, 0)]
            # Warm-up (first users.info, auth.test, connection pools), not measured.
            for name, port, _ in targets:
                await drive(
                    "warm" + name[:4],
                    f"http://127.0.0.1:{port}/slack/events",
                    10,
                    40,
                    10,
                    days[-2:],
                    view,
                    1050,
                )
            results = []
            for name, port, base in targets:
                r = await drive(
                    name.split()[0],
                    f"http://127.0.0.1:{port}/slack/events",
                    args.clients,
                    args.requests,
                    args.seconds,
                    days,
                    view,
                    base,
                )
                results.append((name, r))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()

    print(
        f"\nSlack ack latency, {args.clients} concurrent clients over loopback, "
        f"/book-call commands and view submissions alternately; real server: "
        f"{args.replicas} replica(s) on {(args.database_url or 'sqlite').split('+')[0]}\n"
    )
    head = (
        f"{'target':<16}{'acks':>7}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'cmd p99':>9}{'sub p99':>9}{'req/s':>9}"
    )
    print(head)
    print("-" * len(head))
    figures = {}
    for name, r in results:
        f = report(r)
        figures[name] = f
        print(
            f"{name:<16}{f['requests']:>7.0f}{f['errors']:>8.0f}{f['p50']:>9.1f}"
            f"{f['p99']:>9.1f}{f['max']:>9.1f}{f['cmd_p99']:>9.1f}{f['submit_p99']:>9.1f}"
            f"{f['throughput']:>9.0f}"
        )
    real_f, bare_f = figures["real server"], figures["bare bolt app"]
    ratio = real_f["throughput"] / bare_f["throughput"] if bare_f["throughput"] else 0
    print(f"\nreal server outcomes: {json.dumps(dict(sorted(results[1][1].outcomes.items())))}")
    ok_p99 = real_f["p99"] < 300
    ok_ratio = ratio >= 0.5
    print(f"p99 ack {real_f['p99']:.1f} ms (target < 300): {'PASS' if ok_p99 else 'FAIL'}")
    print(
        f"throughput {ratio:.2f} x the bare app (target >= 0.5): {'PASS' if ok_ratio else 'FAIL'}"
    )
    return 0 if ok_p99 and ok_ratio and not real_f["errors"] else 1


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=2000, help="per target (commands + submits)")
    p.add_argument("--seconds", type=float, default=60.0, help="time cap per target")
    p.add_argument("--serve", choices=["api", "real", "bare"], help=argparse.SUPPRESS)
    p.add_argument("--api-url", help=argparse.SUPPRESS)
    p.add_argument("--replicas", type=int, default=1, help="copies of the real server")
    p.add_argument("--database-url", help="default: a fresh SQLite file")
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.serve == "api":
        asyncio.run(serve_fake_api())
    elif args.serve == "real":
        asyncio.run(serve_real(args.api_url, args.db_url, args.port))
    elif args.serve == "bare":
        asyncio.run(serve_bare(args.api_url))
    else:
        return asyncio.run(main(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
