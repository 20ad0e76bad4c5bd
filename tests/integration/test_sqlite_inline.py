"""SQLite runs on the event loop's thread (chatbot.storage.sqlite_inline), so a writer must
never sit in SQLite's busy handler: a write lock held by another process is waited for
asynchronously. These tests use their own SQLite file whichever database the suite runs on."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from chatbot.storage import db as db_module
from chatbot.storage.db import Database
from chatbot.storage.models import ProcessedDelivery


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    path = tmp_path / "inline.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    await database.create_all()
    yield database, path
    await database.dispose()


def add_row(n: int) -> ProcessedDelivery:
    from datetime import UTC, datetime

    return ProcessedDelivery(platform="console", delivery_id=f"d{n}", at=datetime.now(UTC))


async def count(database: Database) -> int:
    async with database.reading() as s:
        rows = await s.execute(select(func.count()).select_from(ProcessedDelivery))
        return int(rows.scalar_one())


async def test_no_worker_threads_and_pragmas(lite: tuple[Database, Path]) -> None:
    database, _ = lite
    before = threading.active_count()
    async with database.transaction() as s:
        s.add(add_row(1))
        assert (await s.execute(text("PRAGMA busy_timeout"))).scalar_one() == 0
    async with database.reading() as s:
        assert (await s.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await s.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
        busy = (await s.execute(text("PRAGMA busy_timeout"))).scalar_one()
        assert busy == db_module.READ_BUSY_MS
    assert threading.active_count() == before  # aiosqlite would have started one per connection
    assert await count(database) == 1


async def test_writer_waits_for_another_process_without_blocking_the_loop(
    lite: tuple[Database, Path],
) -> None:
    database, path = lite
    other = sqlite3.connect(path, isolation_level=None)  # as a CLI import in another process
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> None:
        async with database.transaction() as s:
            s.add(add_row(2))

    tick_task = asyncio.create_task(ticker())
    writer = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writer.done()  # still waiting for the lock...
    assert ticks >= 5  # ...while the loop kept running other work (a blocked loop: 0 or 1)
    assert await count(database) == 0  # and readers are not held up by the writer
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writer, 5)
    tick_task.cancel()
    assert await count(database) == 1


async def test_writer_gives_up_with_a_clear_error_and_writes_nothing(
    lite: tuple[Database, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    database, path = lite
    monkeypatch.setattr(db_module, "WRITE_LOCK_WAIT_SECONDS", 0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            async with database.transaction() as s:
                s.add(add_row(3))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await count(database) == 0
    async with database.transaction() as s:  # the lock was not left held by the failed attempt
        s.add(add_row(4))
    assert await count(database) == 1


async def test_statement_errors_reach_the_caller_and_roll_back(lite: tuple[Database, Path]) -> None:
    database, _ = lite
    with pytest.raises(OperationalError, match="no such table"):
        async with database.transaction() as s:
            s.add(add_row(5))
            await s.flush()
            await s.execute(text("SELECT * FROM no_such_table"))
    assert await count(database) == 0


async def test_migrations_wait_for_the_lock_too(tmp_path: Path) -> None:
    from chatbot.storage import migrate

    path = tmp_path / "migrate.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    upgrade = asyncio.create_task(migrate.upgrade(database))
    await asyncio.sleep(0.2)
    assert not upgrade.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(upgrade, 30)
    assert await migrate.current(database) is not None
    await database.dispose()
