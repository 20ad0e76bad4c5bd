"""Engine and unit of work.

SQLite (the default, ``./chatbot.db``) runs with WAL, a busy timeout and foreign keys on, and
opens write transactions with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing
half-way. PostgreSQL is selected with ``DATABASE_URL=postgresql+asyncpg://...``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

DEFAULT_URL = "sqlite+aiosqlite:///./chatbot.db"


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``) and pick async drivers."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str = DEFAULT_URL, immediate: bool = True, **kwargs: Any) -> AsyncEngine:
    url = normalise_url(url)
    # Database errors otherwise quote the statement's values (concern text, names) in their
    # message, and so in any traceback that is logged.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin").
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers take the lock up front (no "database is locked" half-way through a
            # change); readers use a plain BEGIN and, thanks to WAL, never wait for writers.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


class Database:
    """Owns the engine; ``async with db.transaction() as s`` is the unit of work."""

    def __init__(self, url: str = DEFAULT_URL, **engine_kwargs: Any):
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine = (
            make_engine(self.url, immediate=False, **engine_kwargs)
            if is_sqlite(self.url)
            else self.engine
        )
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if is_sqlite(self.url) else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        if self._write_lock is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        # SQLite has one writer at a time, and its busy handler waits by sleeping and
        # polling, which under load costs seconds. Queue this process's writers here instead
        # (handed over at once, in order); other processes still meet the busy timeout.
        async with self._write_lock, self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction: on SQLite it does not take the write lock."""
        async with self.read_sessions() as session, session.begin():
            yield session

    async def create_all(self) -> None:
        """Create tables straight from the models (tests). Production uses migrations."""
        from chatbot.storage.models import Base

        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


async def rows_changed(session: AsyncSession, statement: Any) -> int:
    """Run an UPDATE/DELETE and return how many rows it changed (the basis of every
    "exactly once" claim in the services: the caller that changed the row won)."""
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0))
