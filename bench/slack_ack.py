"""Slack acks, one kind of request at a time: the real server beside its floor, in one run.

    python bench/slack_ack.py [--clients 50] [--requests 1000] [--seconds 20] [--rounds 2]
                              [--replicas N] [--database-url postgresql+asyncpg://...]
                              [--plain-floor] [--outbox-seconds S] [--profile DIR]

Processes on 127.0.0.1, each server in its own:
- a loopback stand-in for the Slack Web API (tests.doubles.slack_api);
- the real server: ``adapters.server.build_app`` with its scheduler, as ``chatbot serve`` runs
  it, on a fresh SQLite file (or ``--database-url``, whose public schema is emptied first),
  seeded with 100 staff and 1,100 pupils, all with consent (bench_school);
- the bare floor: a slack-bolt AsyncApp that acks and does nothing (the floor for commands and
  clicks);
- the bare+api floor: the bare app, making after each ack the one Web API call the answer needs
  (views.open with the booking form for a command; chat.postMessage or chat.update for a
  click), as the real server does after its ack: what the call itself costs, shown beside the
  issue's rows;
- the insert floor: a slack-bolt AsyncApp that, per view_submission, commits one INSERT and
  then acks (the floor for submissions). It writes through the product's own
  ``chatbot.storage.db.Database`` (bench/floor.py says why) to a database of the same kind: its
  own SQLite file with the product's settings, or a table in the ``--database-url`` database.
  ``--plain-floor`` uses a stock SQLAlchemy engine on aiosqlite instead;
- the stmts+api floor: the insert floor, running first in the same transaction as many
  statements as the real server runs to store that form's submission (the difference made up
  with reads by primary key; the real server's count is taken before the run, see
  ``statements_per_submission``), and making after each ack the two Web API calls that any
  server doing what the policy asks must make for a submission (chat.postMessage to the
  person who submitted: the receipt or the booking's confirmation; and chat.postMessage to
  the DSL channel or the co-host: the alert or the co-host request). What this design's
  statements and both messages cost with none of the logic, shown beside the issue's rows.
All servers use bolt with ``process_before_response``, as the real server does.

Five phases. In each, ``--clients`` concurrent clients send the same signed requests, one at a
time each, to the floor and to the real server in ``--rounds`` alternating rounds (so other
work on the machine weighs on both alike), until ``--requests`` are answered or ``--seconds``
pass. The servers not being measured are paused (SIGSTOP), and each round waits for the
servers to be idle first. Each phase starts once the outbox has delivered everything earlier
phases queued, so a phase's figures carry only its own deliveries.

1. ``/book-call`` commands: the real server acks, then opens the booking modal (views.open).
2. Checklist clicks (``checklist.open``) by hosts on the warm-up's bookings: the click that
   can be repeated any number of times. Its delivery id is stored, the checklist read and
   sent as a direct message.
3. Concern view_submissions (the /concern form, about a pupil): each checked and stored with
   its chronology, audit row and DSL alert before the ack; counted in the database.
4. Booking view_submissions, each one a booking every rule allows (bench_school.BookingPlan),
   checked and stored before the ack; counted in the database.
5. Co-host Accept clicks on the bookings stored in phase 4, each by the invited co-host, each
   booking accepted once, so every click does the whole job: a conditional UPDATE, an audit
   row, two notices queued, the clicked message updated. Confirmations counted in the database.

A submission not stored is reported with the field errors its ack carried, and fails its row:
a refusal costs less than a stored booking or concern, so refusals would flatter the figures.

Then three tables: ours and the issue's floor (requests/s, p50 and p99 ack latency, the server
processes' CPU ms per request), the throughput ratio, the target from issue #10, PASS or MISS;
ours against the bare+api and stmts+api floors; and those two floors themselves held to the
issue's targets against the issue's floors, which says whether a target is within reach of any
server that does that much. The
outbox delivers the notices a phase queues while the phase runs, as it would in production
(its CPU is counted), and the notes say how many were delivered during the phase.
``--outbox-seconds 3600`` keeps their delivery out of the figures altogether.

``--replicas N`` runs N copies of the real server, and of each floor, on one port
(SO_REUSEPORT: the kernel spreads connections between them), each kind sharing one database.
The exit status is 0 only when every row passes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from bench_school import HOSTS, PUPILS, STAFF, BookingPlan, email, seed, upn  # noqa: E402
from report import HEADER, Run, Target, load_average, passed, process_cpu, row  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from chatbot.policy import default_policy  # noqa: E402
from chatbot.storage.db import Database  # noqa: E402
from chatbot.storage.models import Booking, Concern  # noqa: E402
from tests.adapters.test_slack_support import payload, submission  # noqa: E402
from tests.doubles.slack_api import (  # noqa: E402
    FORM,
    FakeSlackAPI,
    command_body,
    interactive_body,
    signed_headers,
)

SECRET = "bench-signing-secret-0123456789abcdef"
TOKEN = "xoxb-bench"
TEAM = "T0BENCH"
TRIGGERS = itertools.count(1)

COMMAND_TARGET = Target(0.8, p99_ms=300)  # commands and clicks, against the bare app
SUBMIT_TARGET = Target(0.5, p99_of_floor=1.5)  # submissions, against the insert floor


def uid(n: int) -> str:
    """Staff member ``n``'s Slack user id (the loopback API knows their email)."""
    return f"U{n:06d}"


def trigger() -> str:
    return f"{next(TRIGGERS)}.{time.time_ns()}"


# ----- the servers (each runs in its own process; prints READY <port>) -----


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


def real_settings(api_url: str, database_url: str) -> Any:
    from chatbot.config import Settings

    return Settings(
        database_url=database_url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=api_url,
        slack_dsl_channel="C0DSL",
        slack_slt_channel="C0SLT",
    )


async def emptied(database_url: str) -> None:
    """A PostgreSQL database's public schema emptied (a SQLite file is always a new one)."""
    if database_url.startswith("postgresql"):
        from sqlalchemy import text

        db = Database(database_url)
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await db.dispose()


async def serve_real(api_url: str, database_url: str, port: int, outbox: float | None) -> None:
    from adapters.server import build_app, build_runtime, settle_heap

    first = port == 0
    if first:
        await emptied(database_url)
    settings = real_settings(api_url, database_url)
    if outbox is not None:
        settings = replace(settings, outbox_interval_seconds=outbox)
    runtime = await build_runtime(settings, migrate=first)
    if first:
        await seed(runtime.units)
    if os.environ.get("BENCH_PROFILE"):
        _Profiler(Path(os.environ["BENCH_PROFILE"]))
    app = build_app(runtime)  # with the scheduler, as in production
    settle_heap()  # as chatbot serve does once it has started
    await _listen(app, port)


class _Profiler:
    """``--profile``: cProfile over this server; each SIGUSR1 saves the profile so far as the
    next numbered file and starts a new one (the bench signals after the warm-up and after
    each phase)."""

    def __init__(self, folder: Path):
        import cProfile

        self.new = cProfile.Profile
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.n = 0
        self.profile = self.new()
        self.profile.enable()
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.save)

    def save(self) -> None:
        self.profile.disable()
        self.profile.dump_stats(str(self.folder / f"{self.n}.prof"))
        self.n += 1
        self.profile = self.new()
        self.profile.enable()


async def serve_floor(
    api_url: str,
    floor_url: str | None,
    port: int,
    plain: bool,
    follow_up: bool = False,
    reads: dict[str, int] | None = None,
) -> None:
    """A bolt app that acks everything; with ``floor_url``, each view_submission first
    commits one INSERT there (after ``reads[callback_id]`` reads by primary key, in the same
    transaction); with ``follow_up``, each command and click is followed, after the ack, by
    the one Web API call its answer needs, and each submission by its two messages."""
    from floor import Floor
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.app.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    # One HTTP session for every Web API call, as the real server keeps (without one,
    # slack_sdk opens a session, and a connection, per call).
    session = aiohttp.ClientSession()
    bolt = AsyncApp(
        client=AsyncWebClient(token=TOKEN, base_url=api_url, session=session),
        signing_secret=SECRET,
        process_before_response=True,
    )

    async def ack_only(ack: Any) -> None:
        await ack()

    later: set[asyncio.Task[Any]] = set()

    def after_ack(call: Any) -> None:
        task = asyncio.get_running_loop().create_task(call)
        later.add(task)
        task.add_done_callback(later.discard)

    form = booking_view()
    message = follow_up_message()

    async def open_modal(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()  # /book-call: the booking form, in a modal (views.open)
        after_ack(client.views_open(trigger_id=body["trigger_id"], view=form))

    async def answer_click(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        action = str((body.get("actions") or [{}])[0].get("action_id", ""))
        if action.startswith("checklist"):  # the checklist, as a direct message
            after_ack(client.chat_postMessage(channel=body["user"]["id"], **message))
        else:  # Accept: the clicked message edited in place
            where = body.get("container") or {}
            after_ack(
                client.chat_update(
                    channel=where.get("channel_id"), ts=where.get("message_ts"), **message
                )
            )

    bolt.command(re.compile(".*"))(open_modal if follow_up else ack_only)
    bolt.action(re.compile(".*"))(answer_click if follow_up else ack_only)
    if floor_url is None:
        bolt.view(re.compile(".*"))(ack_only)
    else:
        store = Floor(floor_url, plain=plain)
        if port == 0:
            await store.create()

        receipt, alert = submission_messages()

        @bolt.view(re.compile(".*"))
        async def stored(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            view = body.get("view") or {}
            user = (body.get("user") or {}).get("id", "")
            form = str(view.get("callback_id"))
            await store.store(str(body.get("trigger_id")), user, form, (reads or {}).get(form, 0))
            await ack()
            if follow_up:  # the receipt to the person, the alert to the DSL channel
                after_ack(client.chat_postMessage(channel=user, **receipt))
                after_ack(client.chat_postMessage(channel="C0DSL", **alert))

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    from adapters.server import settle_heap

    settle_heap()  # as the real server does: the floors get the same help
    await _listen(app, port)


def follow_up_message() -> dict[str, Any]:
    """The api floor's direct message and edit: as long as a call's checklist (a dozen items,
    each with its Done button), rendered by our own Slack renderer once."""
    from adapters.slack.blocks import message_payload
    from chatbot.ui import Actions, Button, Message, Section

    blocks: list[Any] = [Section("**Checklist for call C-123**, Tuesday 10:00-10:30")]
    for i in range(12):
        blocks.append(Section(f"☐ Item {i + 1}: a check the host makes before the call starts"))
        blocks.append(Actions((Button("checklist.tick", "Done", f"123:{i}"),)))
    return message_payload(Message("Checklist for call C-123", tuple(blocks)))


def submission_messages() -> tuple[dict[str, Any], dict[str, Any]]:
    """The stmts+api floor's two messages per submission, about as long as a concern's
    receipt and DSL alert, rendered by our own Slack renderer once."""
    from adapters.slack.blocks import message_payload
    from chatbot.ui import Message, Section

    receipt = Message(
        "Concern C-2026-0001 recorded",
        (Section("**Recorded as C-2026-0001.** The DSL has been alerted; thank you."),),
    )
    alert = Message(
        "New safeguarding concern C-2026-0001",
        (
            Section("**New safeguarding concern C-2026-0001** (online safety)"),
            Section("Reported by a member of staff about pupil A.B., yesterday at 10:30."),
            Section("Acknowledge within 60 minutes: open it with /concerns C-2026-0001."),
        ),
    )
    return message_payload(receipt), message_payload(alert)


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


@contextmanager
def paused(procs: list[subprocess.Popen[str]]) -> Iterator[None]:
    """Stop these processes (SIGSTOP) while another server is measured."""
    for p in procs:
        os.kill(p.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for p in procs:
            os.kill(p.pid, signal.SIGCONT)


# ----- the requests, built and signed before a phase starts -----


@dataclass
class Request:
    body: bytes
    headers: dict[str, str]


def signed(body: str) -> Request:
    return Request(body.encode(), signed_headers(SECRET, body, FORM))


def command(user: int, response_url: str) -> Request:
    return signed(
        command_body(
            {
                **payload("command_book_call.json"),
                "team_id": TEAM,
                "user_id": uid(user),
                "user_name": f"u{user}",
                "command": "/book-call",
                "text": "",
                "response_url": response_url,
                "trigger_id": trigger(),
            }
        )
    )


def submit(user: int, view: dict[str, Any], values: dict[str, Any]) -> Request:
    p = submission(uid(user), view, values, trigger())
    p["team"] = {"id": TEAM, "domain": "bench"}
    p["user"]["team_id"] = TEAM
    return signed(interactive_body(p))


def click(user: int, action: str, value: str, response_url: str) -> Request:
    """A button on a direct message from the bot, clicked by ``user``."""
    p = payload("block_actions_cohost_accept.json")
    channel = "D" + uid(user)[1:]
    p["user"] = {"id": uid(user), "username": f"u{user}", "name": f"u{user}", "team_id": TEAM}
    p["team"] = {"id": TEAM, "domain": "bench"}
    p["container"] = {**p["container"], "channel_id": channel}
    p["channel"] = {"id": channel, "name": "directmessage"}
    p["trigger_id"] = trigger()
    p["response_url"] = response_url
    p["actions"] = [{**p["actions"][0], "action_id": f"{action}#0", "value": value}]
    return signed(interactive_body(p))


def booking_view() -> dict[str, Any]:
    from adapters.slack.blocks import form_view
    from chatbot.bookings.forms import booking_form

    return form_view(booking_form(default_policy()))


def concern_view() -> tuple[dict[str, Any], str]:
    """The /concern form as Slack shows it, and a category about a pupil."""
    from adapters.slack.blocks import form_view
    from chatbot.concerns.filing import STAFF_CATEGORY, concern_form
    from chatbot.uow import Unit

    policy = default_policy()
    category = next(c.key for c in policy.concern_categories if c.key != STAFF_CATEGORY)
    form = concern_form(Unit(None, policy, datetime.now(UTC)))  # type: ignore[arg-type]
    return form_view(form), category


class Submissions:
    """The two forms' view_submissions, as the bench's staff send them."""

    def __init__(self) -> None:
        self.plan = BookingPlan(default_policy(), datetime.now(UTC).date())
        self.b_view = booking_view()
        self.c_view, category = concern_view()
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        self.c_values = {"category": category, "risk": "no", "when_date": yesterday}

    def booking(self, i: int) -> Request:
        """The plan's ``i``-th booking, submitted by its host."""
        p = self.plan[i]
        return submit(p.host, self.b_view, p.values(cohost=uid(p.cohost)))

    def concern(self, i: int) -> Request:
        """A concern about pupil ``i`` (modulo the roll), from staff member ``i`` (likewise)."""
        about = {"pupil": upn(i % PUPILS), "when_time": "10:30", "narrative": NARRATIVE}
        return submit(i % STAFF, self.c_view, {**self.c_values, **about})


NARRATIVE = (
    "During the reading call the pupil said an older boy they met online keeps asking them to "
    "turn their camera on when they are alone, and told them not to tell anyone. They seemed "
    "worried and asked if they were in trouble. I told them they were right to tell me."
)


# ----- the clients -----


def outcome(status: int, body: bytes) -> str:
    """How the server answered: "ok", "refused: <field>: <the start of its message>" (a
    ``response_action: errors`` ack), or "HTTP <status>"."""
    if status != 200:
        return f"HTTP {status}"
    if b"response_action" in body:
        answer = json.loads(body)
        errors = answer.get("errors") or {}
        if answer.get("response_action") == "errors" and errors:
            field = min(errors)
            message = str(errors[field])
            said = message if len(message) <= 50 else message[:50] + "..."
            return f'refused: {field}: "{said}"'
    return "ok"


async def drive(url: str, requests: list[Request], clients: int, seconds: float) -> Run:
    """``clients`` concurrent clients, each sending one request at a time, until every request
    has been sent once or ``seconds`` have passed."""
    run = Run()
    queue = iter(requests)
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:

        async def client() -> None:
            for req in queue:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=req.body, headers=req.headers) as resp:
                        body, status = await resp.read(), resp.status
                except aiohttp.ClientError:
                    run.outcomes["no answer"] += 1
                    continue
                latency = time.perf_counter() - t0
                run.outcomes[outcome(status, body)] += 1
                if status == 200:
                    run.latencies.append(latency)

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        run.seconds = time.perf_counter() - t0
    return run


@dataclass
class Server:
    name: str
    procs: list[subprocess.Popen[str]]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def api_url(self) -> str:
        """For the loopback Slack API: the Web API's base URL."""
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


class Bench:
    def __init__(self, args: argparse.Namespace, api: Server, servers: dict[str, Server]):
        self.args = args
        self.api = api
        self.servers = servers
        self.settle_waits: list[float] = []
        self.drain_waits: list[float] = []
        self.profiles: list[str] = []

    def profiled(self, what: str) -> None:
        """With ``--profile``: the real server saves its profile of ``what`` (SIGUSR1)."""
        if self.args.profile:
            for pid in self.servers["real"].pids:
                os.kill(pid, signal.SIGUSR1)
            self.profiles.append(f"{self.args.profile}/{len(self.profiles)}.prof: {what}")

    async def quiet(self, limit: float = 10.0) -> None:
        """Wait until every server is idle (under 10% of a core for half a second): follow-up
        Web API calls done, nothing left over from the phase before."""
        pids = self.api.pids + [pid for s in self.servers.values() for pid in s.pids]
        t0 = time.perf_counter()
        before = process_cpu(pids)
        while before is not None and time.perf_counter() - t0 < limit:
            await asyncio.sleep(0.5)
            now = process_cpu(pids)
            if now is None or now - before < 0.05:
                break
            before = now
        self.settle_waits.append(time.perf_counter() - t0)

    async def drained(self, db: Database, limit: float = 120.0) -> None:
        """Wait, with only the real server running, until its outbox has delivered every
        notice queued so far: a phase then pays for its own deliveries, not earlier ones.
        With ``--outbox-seconds`` nothing is delivered during the run, so there is no wait."""
        if self.args.outbox_seconds:
            return
        others = [p for s in self.servers.values() if s.name != "real" for p in s.procs]
        t0 = time.perf_counter()
        with paused(others):
            while time.perf_counter() - t0 < limit:
                if not (await notices(db))[0]:
                    break
                await asyncio.sleep(0.25)
        self.drain_waits.append(time.perf_counter() - t0)

    async def measure(self, name: str, requests: list[Request], seconds: float) -> Run:
        """One round against one server, the others paused."""
        server = self.servers[name]
        others = [p for s in self.servers.values() if s is not server for p in s.procs]
        with paused(others):
            await self.quiet()
            cpu0 = process_cpu(server.pids)
            run = await drive(server.url, requests, self.args.clients, seconds)
            cpu1 = process_cpu(server.pids)
        run.cpu_seconds = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        return run

    async def pair(self, floor: str, requests: list[Request], *also: str) -> tuple[Run, ...]:
        """The same requests to the floor (and the ``also`` floors) and to the real server, in
        alternating rounds (so other work on the machine weighs on all alike); returns (ours,
        floor, *also)."""
        names = [floor, *also, "real"]
        runs = {name: Run() for name in names}
        rounds = max(1, self.args.rounds)
        size = -(-len(requests) // rounds)
        for i in range(rounds):
            chunk = requests[i * size : (i + 1) * size]
            for name in names:
                runs[name].add(await self.measure(name, chunk, self.args.seconds / rounds))
        return (runs["real"], runs[floor], *(runs[name] for name in also))

    async def warm(self, name: str, requests: list[Request]) -> None:
        """Not measured: first contact with each user, connection pools, caches."""
        with paused([p for s in self.servers.values() if s.name != name for p in s.procs]):
            run = await drive(self.servers[name].url, requests, self.args.clients, 60)
        if run.failed:
            raise SystemExit(f"warm-up of the {name} server failed: {dict(run.outcomes)}")


async def count(db: Database, statement: Any) -> int:
    async with db.reading() as s:
        return int((await s.execute(statement)).scalar_one())


async def bookings_awaiting(db: Database) -> list[tuple[int, int, int]]:
    """(booking id, host, co-host) of every booking waiting for its co-host, oldest first."""
    from chatbot.storage.models import Staff

    staff_no = {email(n): n for n in range(STAFF)}
    async with db.reading() as s:
        emails = {i: e for i, e in await s.execute(select(Staff.id, Staff.email))}
        rows = await s.execute(
            select(Booking.id, Booking.host_id, Booking.cohost_id)
            .where(Booking.status == "awaiting_cohost")
            .order_by(Booking.id)
        )
        return [(b, staff_no[emails[h]], staff_no[emails[c]]) for b, h, c in rows]


async def notices(db: Database) -> tuple[int, int]:
    """Notices in the outbox: (waiting to be delivered, delivered)."""
    from chatbot.storage.models import OutboxMessage

    async with db.reading() as s:
        rows = await s.execute(
            select(OutboxMessage.delivered_at.is_(None), func.count()).group_by(
                OutboxMessage.delivered_at.is_(None)
            )
        )
        by_state = {bool(waiting): int(n) for waiting, n in rows}
    return by_state.get(True, 0), by_state.get(False, 0)


class Outbox:
    """What the outbox did while a phase ran: its deliveries use the server's CPU too."""

    def __init__(self, db: Database):
        self.db = db

    async def __aenter__(self) -> Outbox:
        self.waiting, self._delivered = await notices(self.db)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.delivered = (await notices(self.db))[1] - self._delivered

    def __str__(self) -> str:
        return (
            f"Outbox: {self.waiting} notices waiting at the start, "
            f"{self.delivered} delivered during the phase."
        )


def refusals(run: Run) -> str:
    """The field errors the acks carried, counted (first field and message only)."""
    refused = {k: n for k, n in run.outcomes.items() if k.startswith("refused")}
    listed = "; ".join(f"{n} x {k.removeprefix('refused: ')}" for k, n in sorted(refused.items()))
    return f"Field errors in the acks: {listed}" if listed else "No field errors in the acks."


async def phases(
    bench: Bench, db: Database, api_url: str
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Run the five phases; return the table's rows against the issue's floors, against the
    floors that also do the least the answer needs, those floors' own rows against the
    issue's floors, and the notes under them."""
    n, clients = bench.args.requests, bench.args.clients
    response_url = api_url.replace("/api/", "/response/bench")
    forms = Submissions()
    planned = itertools.count()

    def bookings(k: int) -> list[Request]:
        return [forms.booking(i) for i in itertools.islice(planned, k)]

    def concerns(k: int) -> list[Request]:
        return [forms.concern(i) for i in range(k)]

    def commands(k: int) -> list[Request]:
        return [command(i % STAFF, response_url) for i in range(k)]

    def checklist_clicks(k: int, booked: list[tuple[int, int, int]]) -> list[Request]:
        return [
            click(host, "checklist.open", str(b), response_url)
            for b, host, _ in itertools.islice(itertools.cycle(booked), k)
        ]

    def accepts(booked: list[tuple[int, int, int]]) -> list[Request]:
        return [click(co, "cohost.accept", str(b), response_url) for b, _, co in booked]

    lines: list[str] = []
    fairer: list[str] = []  # against the floors that also do the least the answer needs
    reach: list[str] = []  # those floors held to the targets
    notes: list[str] = []

    async def submissions(name: str, model: Any, requests: list[Request]) -> None:
        """A submissions phase: stored ones counted in the database, the rest listed."""
        before = await count(db, select(func.count()).select_from(model))
        await bench.drained(db)
        async with Outbox(db) as outbox:
            ours, floor, fair = await bench.pair("insert", requests, "stmts+api")
        stored = await count(db, select(func.count()).select_from(model)) - before
        missing = ours.done - stored
        short = f"{missing} not stored" if missing else ""
        lines.append(row(name, ours, "insert", floor, SUBMIT_TARGET, short))
        fairer.append(row(name, ours, "stmts+api", fair, SUBMIT_TARGET, short))
        reach.append(row(name, fair, "insert", floor, SUBMIT_TARGET))
        notes.append(
            f"{name}: {ours.done} answered, {stored} stored, {missing} not stored "
            f"({100 * missing / max(ours.done, 1):.1f}%). {refusals(ours)} {outbox}"
        )

    async def clicks(name: str, requests: list[Request], confirms: bool = False) -> None:
        """A commands or clicks phase; ``confirms``: each click should confirm a booking."""
        confirmed = select(func.count()).select_from(Booking).where(Booking.status == "confirmed")
        before = await count(db, confirmed)
        await bench.drained(db)
        async with Outbox(db) as outbox:
            ours, floor, fair = await bench.pair("bare", requests, "bare+api")
        done = await count(db, confirmed) - before
        short = f"only {done} confirmed" if confirms and done != ours.done else ""
        lines.append(row(name, ours, "bare", floor, COMMAND_TARGET, short))
        fairer.append(row(name, ours, "bare+api", fair, COMMAND_TARGET, short))
        reach.append(row(name, fair, "bare", floor, COMMAND_TARGET))
        said = f", {done} bookings confirmed" if confirms else ""
        notes.append(f"{name}: {ours.done} answered{said}. {outbox}")

    warm = 2 * clients
    # Warm-up: every member of staff makes first contact (the server looks them up once).
    await bench.warm("real", commands(STAFF) + bookings(warm) + concerns(warm))
    booked = await bookings_awaiting(db)
    await bench.warm("real", accepts(booked[:clients]) + checklist_clicks(warm, booked))
    await bench.warm("bare", commands(warm) + checklist_clicks(warm, booked))
    await bench.warm("bare+api", commands(warm) + checklist_clicks(warm, booked))
    await bench.warm("insert", bookings(warm) + concerns(warm))
    await bench.warm("stmts+api", bookings(warm) + concerns(warm))
    bench.profiled("warm-up")

    # Accepts need the bookings phase's bookings, so the phases run in this order.
    await clicks("/book-call command", commands(n))
    bench.profiled("/book-call command")
    await clicks("click checklist.open", checklist_clicks(n, booked))  # the warm-up's bookings
    bench.profiled("click checklist.open")
    await submissions("concern submission", Concern, concerns(n))
    bench.profiled("concern submission")
    await submissions("booking submission", Booking, bookings(n))
    bench.profiled("booking submission")
    booked = await bookings_awaiting(db)
    await clicks("click cohost.accept", accepts(booked[:n]), confirms=True)
    bench.profiled("click cohost.accept")
    return lines, fairer, reach, notes


async def statements_per_submission(api_url: str, url: str) -> dict[str, int]:
    """For each form, how many more statements the real server runs to store one submission
    than the insert floor runs to store its row: the reads the stmts+api floor adds.

    Counted in this process before the bench's servers start, through ``build_app`` as
    ``chatbot serve`` builds it (its scheduler off, so nothing else runs), on a school of its
    own: ``url`` is a scratch SQLite file, or the PostgreSQL database that the real server
    empties when it starts. Each form is sent three times by people the server has met, and
    the fewest statements counted (a first contact also looks the person up)."""
    from floor import Floor
    from sqlalchemy import event

    from adapters.server import build_app, build_runtime

    executed = [0]

    def counted(*_: object) -> None:
        executed[0] += 1

    await emptied(url)
    runtime = await build_runtime(real_settings(api_url, url))
    await seed(runtime.units)
    runner = web.AppRunner(build_app(runtime, with_scheduler=False), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    forms = Submissions()
    engine = runtime.units.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counted)
    try:
        async with aiohttp.ClientSession() as session:

            async def statements(req: Request) -> int:
                executed[0] = 0
                where = f"http://127.0.0.1:{port}/slack/events"
                async with session.post(where, data=req.body, headers=req.headers) as resp:
                    said = outcome(resp.status, await resp.read())
                if said != "ok":
                    raise SystemExit(f"counting statements: the real server answered {said}")
                await asyncio.sleep(0.2)  # and made the ack's follow-up calls
                return executed[0]

            # The same host (staff 0) and co-host each time, on other slots and pupils.
            ours = {
                forms.c_view["callback_id"]: [
                    await statements(forms.concern(i * STAFF)) for i in range(3)
                ],
                forms.b_view["callback_id"]: [
                    await statements(forms.booking(i * HOSTS)) for i in range(3)
                ],
            }
    finally:
        event.remove(engine, "before_cursor_execute", counted)
        await runner.cleanup()
        await runtime.units.db.dispose()
    floor = Floor(url)
    await floor.create()
    its_own = await floor.statements()
    await floor.dispose()
    return {form: max(min(counts) - its_own, 0) for form, counts in ours.items()}


def start_servers(
    args: argparse.Namespace,
    api: Server,
    db_url: str,
    floor_url: str,
    reads: dict[str, int],
    procs: list[subprocess.Popen[str]],
) -> dict[str, Server]:
    """The real server and the floors (each started process is added to ``procs`` at once,
    so it is stopped whatever happens next)."""
    servers: dict[str, Server] = {}
    outbox = ("--outbox-seconds", str(args.outbox_seconds)) if args.outbox_seconds else ()
    for name, extra in (
        ("real", ("--db-url", db_url, *outbox)),
        ("bare", ()),
        ("bare+api", ()),
        ("insert", ("--db-url", floor_url, *(("--plain-floor",) if args.plain_floor else ()))),
        (
            "stmts+api",
            (
                "--db-url",
                floor_url.replace("floor.db", "floor-api.db"),
                "--reads",
                json.dumps(reads),
            ),
        ),
    ):
        # The first copy prepares the database; the others join it on the same port.
        server_args = ("--serve", name.replace("+", "-"), "--api-url", api.api_url, *extra)
        first, port = spawn(*server_args)
        procs.append(first)
        for _ in range(args.replicas - 1):
            procs.append(spawn(*server_args, "--port", str(port))[0])
        servers[name] = Server(name, procs[-args.replicas :], port)
    return servers


async def main(args: argparse.Namespace) -> int:
    procs: list[subprocess.Popen[str]] = []
    reads: dict[str, int] = {}
    started = time.perf_counter()
    load_before = load_average()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
            floor_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/floor.db"
            api_proc, api_port = spawn("--serve", "api")
            procs.append(api_proc)
            api = Server("api", [api_proc], api_port)
            count_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/count.db"
            reads = await statements_per_submission(api.api_url, count_url)
            servers = start_servers(args, api, db_url, floor_url, reads, procs)
            print(
                f"servers ready in {time.perf_counter() - started:.1f}s ({args.replicas} "
                f"of each; {STAFF} staff and {PUPILS} pupils seeded)",
                flush=True,
            )
            bench = Bench(args, api, servers)
            db = Database(db_url)
            try:
                table, fairer, reach, notes = await phases(bench, db, api.api_url)
            finally:
                await db.dispose()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()

    store = (args.database_url or "sqlite").split("+")[0].split(":")[0]
    floor_kind = (
        "a stock aiosqlite engine" if args.plain_floor and store == "sqlite" else "Database"
    )
    print(
        f"\nSlack acks: {args.clients} concurrent clients over loopback, up to {args.requests} "
        f"requests a phase in {args.rounds} round(s) alternating floor and ours; "
        f"{args.replicas} replica(s) of each server on {store}.\n"
        f"Floors: bare = a bolt app that only acks; insert = a bolt app that commits one INSERT "
        f"per submission ({floor_kind}) before it acks.\n"
        f"cpu ms = the server processes' CPU per request. Machine load average "
        f"{load_before} at the start, {load_average()} at the end.\n"
    )
    print(HEADER)
    print("-" * len(HEADER.splitlines()[1]))
    print("\n".join(table))
    forms = ", ".join(f"{form} {n}" for form, n in reads.items())
    print(
        "\nAgainst floors that also do the least the answer needs, with none of its logic. "
        "bare+api = the bare app, then\nthe one Web API call the answer needs, after the ack "
        "as the real server makes it (views.open with the booking\nform; chat.postMessage or "
        "chat.update with a checklist-sized message). stmts+api = the insert floor, running\n"
        "first as many statements in its transaction as the real server runs to store that "
        f"submission (reads by primary\nkey added: {forms}), then two chat.postMessage calls "
        "(the receipt to the person, the alert to a channel).\n"
    )
    print("\n".join(fairer))
    print(
        "\nWithin reach? Those floors held to the issue's targets against the issue's floors "
        "(in the 'ours' columns).\nA MISS here means no server that does that much can meet "
        "the target on this machine.\n"
    )
    print("\n".join(reach))
    print("\n" + "\n".join(notes))
    print(
        f"longest wait for idle servers before a round: {max(bench.settle_waits):.1f}s; "
        f"for the outbox to empty before a phase: {max(bench.drain_waits, default=0):.1f}s; "
        f"whole run {time.perf_counter() - started:.0f}s"
    )
    if bench.profiles:
        print("profiles (python -m pstats FILE): " + "; ".join(bench.profiles))
    return 0 if all(passed(line) for line in table) else 1


def cli() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    p.add_argument(
        "--requests", type=int, default=1000, help="requests per phase per server (default 1000)"
    )
    p.add_argument(
        "--seconds", type=float, default=20.0, help="time cap per phase and server (default 20)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternate floor and real server this many times a phase (default 2)",
    )
    p.add_argument("--replicas", type=int, default=1, help="copies of each server (default 1)")
    p.add_argument("--database-url", help="default: fresh SQLite files")
    p.add_argument(
        "--plain-floor",
        action="store_true",
        help="the insert floor uses a stock aiosqlite engine, not the product's Database",
    )
    p.add_argument(
        "--outbox-seconds",
        type=float,
        help="how often the real server delivers queued notices (default: as chatbot serve "
        "does); a large value keeps their delivery out of the figures",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="profile the real server (cProfile), one file per phase in DIR (one replica)",
    )
    p.add_argument(
        "--serve",
        choices=["api", "real", "bare", "bare-api", "insert", "stmts-api"],
        help=argparse.SUPPRESS,
    )
    p.add_argument("--api-url", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    p.add_argument("--reads", default="{}", help=argparse.SUPPRESS)  # stmts-api: per form
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.profile:
        os.environ["BENCH_PROFILE"] = args.profile  # read by the real server's process
    logging.basicConfig(level=logging.ERROR)
    if args.serve == "api":
        asyncio.run(serve_fake_api())
    elif args.serve == "real":
        asyncio.run(serve_real(args.api_url, args.db_url, args.port, args.outbox_seconds))
    elif args.serve == "bare":
        asyncio.run(serve_floor(args.api_url, None, args.port, False))
    elif args.serve == "bare-api":
        asyncio.run(serve_floor(args.api_url, None, args.port, False, follow_up=True))
    elif args.serve == "insert":
        asyncio.run(serve_floor(args.api_url, args.db_url, args.port, args.plain_floor))
    elif args.serve == "stmts-api":
        reads = json.loads(args.reads)
        asyncio.run(serve_floor(args.api_url, args.db_url, args.port, False, True, reads))
    else:
        return asyncio.run(main(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
