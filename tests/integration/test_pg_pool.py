"""Pooled PostgreSQL connections are pinged only after sitting idle, and a connection cut while
idle (a database restart, a firewall) is replaced before a request can fail on it. Uses the
machine's PostgreSQL directly, whichever database the rest of the suite runs on."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from chatbot.storage import db as db_module
from chatbot.storage.db import Database

PG_URL = os.environ.get("PG_TEST_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@pytest.fixture
async def pg() -> AsyncIterator[Database]:
    database = Database(PG_URL, pool_size=2, max_overflow=0)
    yield database
    await database.dispose()


async def backend_pid(database: Database) -> int:
    async with database.transaction() as s:
        return int((await s.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_only_idle_connections_are_pinged(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

    pings = 0
    real_ping = AsyncAdapt_asyncpg_connection.ping

    def counting_ping(self: AsyncAdapt_asyncpg_connection) -> None:
        nonlocal pings
        pings += 1
        real_ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counting_ping)
    first = await backend_pid(pg)
    for _ in range(5):
        assert await backend_pid(pg) == first  # the same pooled connection, reused
    assert pings == 0  # returned moments ago: no round trip spent checking it
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)
    assert await backend_pid(pg) == first
    assert pings == 1


async def test_connection_cut_while_idle_is_replaced(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await backend_pid(pg)
    # Another session ends ours, as a database restart would.
    killer = Database(PG_URL)
    try:
        async with killer.transaction() as s:
            await s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        await killer.dispose()
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)  # "idle for long enough"
    second = await backend_pid(pg)  # no error: the dead connection was swapped out
    assert second != first


async def test_bursts_reuse_the_pool_that_chatbot_serve_builds() -> None:
    """The server's pool opens connections up to DATABASE_POOL_SIZE for a burst of requests and
    keeps them: a second burst opens none. (SQLAlchemy's default pool closed up to ten of them
    whenever the load dipped and opened them again with the next burst, each one starting
    without asyncpg's prepared statements.)"""
    from sqlalchemy import event

    from adapters.server import build_runtime
    from chatbot.config import Settings

    settings = Settings.from_env({"DATABASE_URL": PG_URL, "DATABASE_POOL_SIZE": "6"})
    runtime = await build_runtime(settings, migrate=False)
    database = runtime.units.db
    opened = 0

    def connected(*_: object) -> None:
        nonlocal opened
        opened += 1

    event.listen(database.engine.sync_engine, "connect", connected)

    async def request() -> None:
        async with database.transaction() as s:
            await s.execute(text("SELECT 1"))
            await asyncio.sleep(0.01)  # the request's other work, holding the connection

    try:
        await asyncio.gather(*(request() for _ in range(30)))
        assert opened == 6  # as many as the setting allows, all in use at once
        assert database.engine.pool.checkedin() == 6  # and all kept
        await asyncio.gather(*(request() for _ in range(3)))  # a lull: three at a time
        await asyncio.gather(*(request() for _ in range(30)))
        assert opened == 6  # the same six connections throughout
    finally:
        await database.dispose()


async def test_connections_go_to_transactions_in_the_order_they_asked() -> None:
    """Ten clients share two pooled connections, each asking again as soon as it is done, as
    a busy server's requests do. Each gets a connection before those who asked after it (the
    pool alone gave a returned connection to whoever asked next, so the client that had just
    let it go took it back while others waited on, and a request could wait many turns)."""
    database = Database(PG_URL, pool_size=2)
    tickets = itertools.count()
    served: list[int] = []

    async def client() -> None:
        for _ in range(10):
            ticket = next(tickets)  # the order of asking
            async with database.transaction() as s:
                await s.connection()  # a connection of its own now
                served.append(ticket)
                await s.execute(text("SELECT 1"))

    try:
        await asyncio.gather(*(client() for _ in range(10)))
    finally:
        await database.dispose()
    assert sorted(served) == list(range(100))
    # Each one may be passed by the one let in beside it, never by more.
    passed_by = [sum(1 for u in served[:i] if u > t) for i, t in enumerate(served)]
    assert max(passed_by) <= 1, served


async def test_waiting_too_long_for_a_connection_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "POOL_WAIT_SECONDS", 0.2)
    database = Database(PG_URL, pool_size=1)
    try:
        async with database.transaction() as holder:
            await holder.execute(text("SELECT 1"))
            with pytest.raises(TimeoutError, match=r"no database connection came free in 0.2 s"):
                async with database.reading():
                    pass
        async with database.reading() as s:  # and once it is free, the next one gets it
            assert (await s.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await database.dispose()
