"""The router's promises: one transaction per interaction, and a delivery that died before its
commit is processed on the platform's retry, exactly once."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from chatbot.effects import CloseForm, FormErrors, OpenForm
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, Booking, OutboxMessage, ProcessedDelivery
from chatbot.uow import Units
from tests.conftest import GOOD, HOST, command, pg_schema, submit

ROOT = Path(__file__).parents[2]

# A process that handles one booking submission and is killed (SIGKILL: no clean-up runs)
# the moment the booking's transaction is about to commit.
DIES_BEFORE_COMMIT = """
import asyncio, os, signal, sys
from dataclasses import replace
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from chatbot.bootstrap import build_bot
from chatbot.policy import default_policy
from chatbot.ports import FixedClock
from chatbot.storage.db import Database
from chatbot.uow import Units
from tests.conftest import GOOD, HOST, MONDAY_8AM, submit

written = []

def booking_written(conn, cursor, statement, parameters, context, executemany):
    if statement.startswith("INSERT INTO booking "):
        written.append(statement)

def die(session):
    if written:  # the booking's transaction is about to commit
        os.kill(os.getpid(), signal.SIGKILL)

async def main(url, schema):
    kw = {}
    if url.startswith("postgresql"):
        kw = {"connect_args": {"server_settings": {"search_path": schema}}}
    units = Units(Database(url, **kw), default_policy(), FixedClock(MONDAY_8AM))
    event.listen(Engine, "before_cursor_execute", booking_written)
    event.listen(Session, "before_commit", die)
    delivery = replace(submit(HOST, "book_call", GOOD), delivery_id=sys.argv[3])
    print(await build_bot(units).handle(delivery))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


class Crash(Exception):
    """Stands for the process dying after the work, before the commit."""


@contextmanager
def crash_before_next_commit() -> Iterator[list[int]]:
    """Every session that commits while this is active raises instead, once."""
    crashed: list[int] = []

    def before_commit(session: Session) -> None:
        if not crashed:
            crashed.append(1)
            raise Crash()

    event.listen(Session, "before_commit", before_commit)
    try:
        yield crashed
    finally:
        event.remove(Session, "before_commit", before_commit)


@contextmanager
def transactions(units: Units) -> Iterator[list[str]]:
    """The transactions begun on the database while this is active ("write" or "read")."""
    begun: list[str] = []
    # SQLite has a read-only engine of its own; PostgreSQL uses one engine for both.
    engines = {units.db.read_engine.sync_engine: "read", units.db.engine.sync_engine: "write"}

    def on_begin(conn: Any) -> None:
        begun.append(engines.get(conn.engine, "?"))

    for engine in engines:
        event.listen(engine, "begin", on_begin)
    try:
        yield begun
    finally:
        for engine in engines:
            event.remove(engine, "begin", on_begin)


def units_split(units: Units) -> bool:
    return units.db.read_engine is not units.db.engine


async def count(units: Units, model: Any, *where: Any) -> int:
    async with units.read() as u:
        return int((await u.session.execute(select(func.count(model.id)).where(*where))).scalar())


async def test_retry_after_a_crash_before_commit_is_processed_once(school: Units, bot: Bot) -> None:
    delivery = replace(submit(HOST, "book_call", GOOD), delivery_id="trigger:T123")
    with crash_before_next_commit() as crashed, pytest.raises(Crash):
        await bot.handle(delivery)
    assert crashed
    # Nothing of the attempt survived: no booking, no audit or outbox row, no dedupe row.
    assert await count(school, Booking) == 0
    assert await count(school, AuditEvent, AuditEvent.action == "booking.create") == 0
    assert await count(school, OutboxMessage) == 0
    assert await count(school, ProcessedDelivery) == 0

    # The platform sends the same delivery again: it is processed...
    effects = await bot.handle(delivery)
    assert isinstance(effects[0], CloseForm), effects
    assert await count(school, Booking) == 1
    assert await count(school, OutboxMessage) == 1  # the co-host request
    # ...and only once, in this process or in another that never saw it.
    assert await bot.handle(delivery) == []
    fresh = Bot(bot.units, bot.registry)
    assert await fresh.handle(delivery) == []
    assert await count(school, Booking) == 1
    assert await count(school, AuditEvent, AuditEvent.action == "booking.create") == 1


async def test_retry_after_the_process_was_killed_before_commit_is_processed_once(
    school: Units, bot: Bot
) -> None:
    """The platform's retry of a delivery whose process was killed mid-way is processed."""
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", DIES_BEFORE_COMMIT, school.db.url, pg_schema(), "trigger:K1"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == -signal.SIGKILL, output.decode()[-2000:]
    assert await count(school, Booking) == 0
    assert await count(school, ProcessedDelivery) == 0  # the claim died with the work

    retry = replace(submit(HOST, "book_call", GOOD), delivery_id="trigger:K1")
    effects = await bot.handle(retry)
    assert isinstance(effects[0], CloseForm), effects
    assert await bot.handle(retry) == []
    assert await count(school, Booking) == 1


async def test_a_booking_is_one_transaction(school: Units, bot: Bot) -> None:
    await bot.handle(command(HOST, "book-call"))  # the roster match is now known
    with transactions(school) as begun:
        effects = await bot.handle(
            replace(submit(HOST, "book_call", GOOD), delivery_id="trigger:T1")
        )
    assert isinstance(effects[0], CloseForm), effects
    assert begun == ["write"]  # the dedupe claim, the booking, its audit and outbox rows

    with transactions(school) as begun:
        effects = await bot.handle(command(HOST, "book-call"))
    assert isinstance(effects[0], OpenForm)
    if units_split(school):
        assert "write" not in begun  # opening a form never waits for SQLite's write lock
    assert len(begun) <= 1


async def test_a_refused_booking_writes_only_its_delivery(school: Units, bot: Bot) -> None:
    bad = replace(submit(HOST, "book_call", dict(GOOD, duration="90")), delivery_id="trigger:T2")
    [err] = await bot.handle(bad)
    assert isinstance(err, FormErrors) and "duration" in err.errors
    assert await count(school, Booking) == 0
    assert await count(school, ProcessedDelivery) == 1
    assert await bot.handle(bad) == []  # a retry of the same submission is a repeat
