"""Two `chatbot serve` replicas on one database, one killed with SIGKILL while it is posting
DSL alerts: every stored concern's alert still reaches the DSL channel within 30 seconds of the
kill, and at most the message that was on its way out is posted twice (recognised by the outbox
id each Slack message carries in its metadata).

Each replica is a real process (`python -m adapters.cli serve`) with its own port, configured
for Slack against its own loopback Web API, which holds back every chat.postMessage answer for
a moment so that sends are in flight when the kill comes. Concerns are filed over HTTP with
requests signed as Slack signs them. On PostgreSQL the replicas use this test process's schema
through ``DATABASE_URL``'s ``options=-c search_path=...``."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from sqlalchemy import select

from chatbot.policy import default_policy
from chatbot.ports import SystemClock
from chatbot.roster import importer as roster
from chatbot.storage.migrate import upgrade
from chatbot.storage.models import Concern, OutboxMessage
from chatbot.uow import Units
from tests.adapters.test_serve import free_port
from tests.adapters.test_slack_concern import values_for
from tests.adapters.test_slack_support import BOTS, SECRET, TEAM, USERS, payload, submission
from tests.conftest import PUPILS_CSV, STAFF_CSV, fresh_database, open_database, pg_schema
from tests.doubles.slack_api import (
    FORM,
    Call,
    FakeSlackAPI,
    command_body,
    interactive_body,
    signed_headers,
)

ANSWER_DELAY = 0.3  # seconds each chat.postMessage answer is held back
WITHIN = 30.0  # seconds after the kill by which every alert must be out
TRIGGERS = itertools.count(1)


def trigger_id() -> str:
    return f"1334522{next(TRIGGERS):04d}.738474920.{os.getpid():032x}"


@dataclass
class Replica:
    name: str
    api: FakeSlackAPI
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    acked: list[str] = field(default_factory=list)  # trigger ids of concerns Slack was told of

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def replica_url(db_url: str) -> str:
    """The database URL a replica is given: on PostgreSQL, confined to this process's schema."""
    if not db_url.startswith("postgresql"):
        return db_url
    sep = "&" if "?" in db_url else "?"
    return f"{db_url}{sep}options={quote(f'-c search_path={pg_schema()}')}"


async def school_database(db_url: str) -> None:
    """An empty database migrated as `chatbot serve` would (so the replicas' own upgrade at
    start-up has nothing to do), with the staff and pupil rosters imported."""
    db = await fresh_database(db_url, create=False)
    try:
        await upgrade(db)
        core = Units(db=db, policy=default_policy(), clock=SystemClock())
        await roster.import_staff(core, STAFF_CSV)
        await roster.import_pupils(core, PUPILS_CSV)
    finally:
        await db.dispose()


def start(replica: Replica, db_url: str) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "Microsoft", "TEAMS_", "CHATBOT_", "DATABASE_URL"))
    }
    env.update(
        DATABASE_URL=replica_url(db_url),
        SLACK_BOT_TOKEN=replica.api.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=replica.api.api_url,
        SLACK_DSL_CHANNEL_ID="C0DSL",
        SLACK_SLT_CHANNEL_ID="C0SLT",
        CHATBOT_OUTBOX_INTERVAL_SECONDS="0.5",
    )
    with replica.log.open("wb") as out:
        replica.proc = subprocess.Popen(  # noqa: ASYNC220 - a replica is its own process
            [sys.executable, "-m", "adapters.cli", "serve", "--host", "127.0.0.1"]
            + ["--port", str(replica.port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def ready(http: aiohttp.ClientSession, replica: Replica) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert replica.proc is not None and replica.proc.poll() is None, replica.log_tail()
        try:
            async with http.get(replica.url + "/healthz") as r:
                if r.status == 200 and (await r.json())["messaging"] == ["slack"]:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{replica.name} never became ready:\n{replica.log_tail()}")


async def post(http: aiohttp.ClientSession, replica: Replica, body: str) -> tuple[int, str]:
    headers = signed_headers(SECRET, body, FORM)
    async with http.post(replica.url + "/slack/events", data=body.encode(), headers=headers) as r:
        return r.status, await r.text()


async def file_concern(http: aiohttp.ClientSession, replica: Replica) -> None:
    """/concern, then the form submitted once the replica has opened it."""
    trigger = trigger_id()
    fields = payload("command_book_call.json")
    fields.update(
        user_id="U0TEACHER",
        command="/concern",
        text="",
        trigger_id=trigger,
        response_url=replica.api.response_url(f"cmd-{trigger}"),
    )
    status, text = await post(http, replica, command_body(fields))
    assert status == 200, (status, text)

    def opened() -> list[dict[str, Any]]:
        return [c["view"] for c in replica.api.called("views.open") if c["trigger_id"] == trigger]

    await until(opened, 10, f"the concern form on {replica.name}")
    [view] = opened()
    # It happened an hour ago, school time, whatever the real clock says.
    then = datetime.now(default_policy().zone) - timedelta(hours=1)
    values = values_for(view, when_date=then.date().isoformat(), when_time=then.strftime("%H:%M"))
    p = submission("U0TEACHER", view, values, trigger_id())
    status, text = await post(http, replica, interactive_body(p))
    assert status == 200 and not text, (status, text)  # stored before Slack was answered
    replica.acked.append(trigger)


def dsl_posts(*apis: FakeSlackAPI) -> list[Call]:
    """Every DSL channel message Slack accepted, from any replica."""
    return [
        c
        for api in apis
        for c in api.calls
        if c.method == "chat.postMessage"
        and c.body.get("channel") == "C0DSL"
        and c.result.get("ok")
    ]


@pytest.fixture
async def replicas(db_url: str, tmp_path: Path) -> AsyncIterator[list[Replica]]:
    await school_database(db_url)
    apis = [FakeSlackAPI(users=dict(USERS), bots=set(BOTS), team_id=TEAM) for _ in range(2)]
    out = [
        Replica(name, api, free_port(), tmp_path / f"{name}.log")
        for name, api in zip(("replica-a", "replica-b"), apis, strict=True)
    ]
    for r in out:
        await r.api.start()
        r.api.slow = {"chat.postMessage": ANSWER_DELAY}
        start(r, db_url)
    try:
        yield out
    finally:
        for r in out:
            if r.proc is not None and r.proc.poll() is None:
                r.proc.terminate()
                try:
                    r.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    r.proc.kill()
                    r.proc.wait()
            await r.api.stop()


async def test_replica_killed_while_delivering(
    replicas: list[Replica], db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = replicas
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(ready(http, a), ready(http, b))

        async def file_through(replica: Replica, n: int) -> None:
            for _ in range(n):
                await file_concern(http, replica)

        # Concerns arrive through both replicas; both deliver alerts as they come in.
        await asyncio.gather(file_through(a, 6), file_through(b, 6))
        await until(
            lambda: any(c.body.get("channel") == "C0DSL" for c in a.api.in_flight),
            15,
            "replica-a to be posting a DSL alert",
        )
        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        in_flight = {c.outbox_id for c in a.api.in_flight if c.body.get("channel") == "C0DSL"}
        a.proc.wait()
        await file_through(b, 4)  # and people keep reporting through the one still running

    # Wait until the database says every DSL alert was delivered (the surviving replica has
    # taken over what the dead one had claimed), then look at what Slack received.
    db = open_database(db_url)
    try:
        while True:
            async with db.reading() as s:
                stored = list((await s.execute(select(Concern.id))).scalars())
                dsl_rows = list(
                    (
                        await s.execute(select(OutboxMessage).where(OutboxMessage.role == "dsl"))
                    ).scalars()
                )
            if all(r.delivered_at is not None for r in dsl_rows):
                break
            assert time.monotonic() < killed_at + WITHIN + 10, "DSL alerts still undelivered"
            await asyncio.sleep(0.2)
    finally:
        await db.dispose()
    assert len(stored) == len(a.acked) + len(b.acked) == 16  # every acknowledged concern
    alerts = {int(str(r.thread_key).split(":")[1]): r.id for r in dsl_rows}
    assert sorted(alerts) == sorted(stored)  # each with its DSL alert

    posts = dsl_posts(a.api, b.api)
    first_post: dict[int | None, float] = {}
    for call in sorted(posts, key=lambda c: c.at):
        first_post.setdefault(call.outbox_id, call.at)
    assert set(first_post) == set(alerts.values())  # each posted, each with its outbox id
    last = max(first_post.values()) - killed_at
    repeats = {i: n for i, n in Counter(c.outbox_id for c in posts).items() if n > 1}
    with capsys.disabled():
        print(
            f"\n[replica crash] {len(alerts)} DSL alerts; the last one out {last:.1f}s after "
            f"the kill; posted twice: {sorted(repeats)} (in flight at the kill: "
            f"{sorted(in_flight)})"
        )
    assert last <= WITHIN, f"the last DSL alert went out {last:.1f}s after the kill"
    assert set(repeats) <= in_flight and all(n == 2 for n in repeats.values()), repeats
    assert b.proc is not None and b.proc.poll() is None, b.log_tail()
