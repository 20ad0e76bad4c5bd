"""The floor under a stored submission: one INSERT committed, nothing else (or, with
``reads``, that many primary-key reads before it, in the same transaction: the statements
floor, for a submission's statement count without any of its logic).

Written with SQLAlchemy Core (no ORM session) through the product's own
``chatbot.storage.db.Database``: the same SQLite pragmas (WAL, ``synchronous=NORMAL``, foreign
keys), the same SQLite-on-the-loop driver and ``BEGIN IMMEDIATE`` write queue, and on
PostgreSQL the same asyncpg pool. That is the fair floor: the least this stack can spend to
store a row, so what the product spends beyond it is its own handling. A stock aiosqlite
engine hands every call to a worker thread and costs more per commit (one run of the Slack
floor on this machine, busy with other work: about 3.0 ms of server CPU per stored submission,
against 2.3 ms through Database), so measured against it the product would look better than
it is. ``plain=True`` builds that stock engine (same pragmas) for comparison with
the figures first quoted in issue #10.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from chatbot.storage.db import Database, is_sqlite

metadata = MetaData()
submissions = Table(
    "bench_floor_submissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", String(200), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("form", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
people = Table(  # what the statements floor reads: a staff-sized table
    "bench_floor_people",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(200), nullable=False),
    Column("name", String(200), nullable=False),
)
PEOPLE = 100
_PERSON = select(people).where(people.c.id == bindparam("id"))


class Floor:
    """Stores one row per submission, each in its own committed transaction."""

    def __init__(self, url: str, plain: bool = False):
        self.plain = plain and is_sqlite(url)
        if self.plain:
            self.engine = create_async_engine(url)

            @event.listens_for(self.engine.sync_engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                for pragma in ("busy_timeout=5000", "journal_mode=WAL", "synchronous=NORMAL"):
                    cur.execute(f"PRAGMA {pragma}")
                cur.close()

            self.db: Database | None = None
        else:
            self.db = Database(url)
            self.engine = self.db.engine

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        if self.db is not None:
            async with self.db.connection() as conn:
                yield conn
        else:
            async with self.engine.begin() as conn:
                yield conn

    async def create(self) -> None:
        """An empty table (dropped first if a previous run left one)."""
        async with self._writing() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
            rows = [
                {"id": n, "email": f"p{n}@school.test", "name": f"Person {n}"}
                for n in range(PEOPLE)
            ]
            await conn.execute(insert(people), rows)

    async def store(self, delivery_id: str, user_id: str, form: str, reads: int = 0) -> None:
        """One submission: ``reads`` reads of a person by primary key, then its INSERT."""
        async with self._writing() as conn:
            for k in range(reads):
                (await conn.execute(_PERSON, {"id": (len(delivery_id) + k) % PEOPLE})).one()
            await conn.execute(
                insert(submissions).values(
                    delivery_id=delivery_id[:200],
                    user_id=user_id[:40],
                    form=form[:100],
                    received_at=datetime.now(UTC),
                )
            )

    async def statements(self) -> int:
        """How many statements one :meth:`store` runs (BEGIN counted where the driver sends
        one): what another transaction's count is set against to find its ``reads``."""
        executed = [0]

        def counted(*_: object) -> None:
            executed[0] += 1

        event.listen(self.engine.sync_engine, "before_cursor_execute", counted)
        try:
            counts = []
            for i in range(3):  # the fewest: a first use may also prepare the connection
                executed[0] = 0
                await self.store(f"count-{i}", "U0", "form")
                counts.append(executed[0])
        finally:
            event.remove(self.engine.sync_engine, "before_cursor_execute", counted)
        return min(counts)

    async def dispose(self) -> None:
        if self.db is not None:
            await self.db.dispose()
        else:
            await self.engine.dispose()
