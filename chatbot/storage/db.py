"""Engine and unit of work.

SQLite (the default, ``./chatbot.db``) runs with WAL and foreign keys on, its calls made on the
event loop's thread (see ``sqlite_inline``), and opens write transactions with ``BEGIN
IMMEDIATE`` so concurrent writers queue instead of failing half-way. The database file holds
safeguarding records, so it (and its -wal/-shm companions) is readable by the server's
account only. PostgreSQL is selected with ``DATABASE_URL=postgresql+asyncpg://...``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import bindparam, event, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

T = TypeVar("T")
log = logging.getLogger("chatbot.storage")
DEFAULT_URL = "sqlite+aiosqlite:///./chatbot.db"
# How long a writer waits for another process (a CLI import, say) to release SQLite's write
# lock. The wait is asynchronous: see Database.transaction.
WRITE_LOCK_WAIT_SECONDS = 30.0
# Readers are never blocked by writers under WAL; this only covers rare moments such as
# another process recovering the WAL, and it does block the loop while it lasts.
READ_BUSY_MS = 2000
# A pooled PostgreSQL connection idle for longer than this is pinged before it is used.
IDLE_PING_SECONDS = 10.0
# PostgreSQL connections a process keeps, and never more (DATABASE_POOL_SIZE). SQLAlchemy's
# default keeps 5 and opens up to 10 more under load, closing them again whenever the load
# dips; each new one starts without asyncpg's prepared statements. Under 50 requests at once
# that churn cost a tenth more CPU and doubled p99 (bench/slack_ack.py, checklist clicks).
POOL_SIZE = 15
# How long a PostgreSQL transaction waits for a free connection before giving up (SQLAlchemy's
# own pool timeout).
POOL_WAIT_SECONDS = 30.0


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``) and pick async drivers."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


# UPDATE/INSERT ... RETURNING (bookings, concern numbers, the outbox) arrived in SQLite 3.35.
SQLITE_NEEDED = (3, 35, 0)


class DatabaseUnusable(ValueError):
    """The database can't be used as configured; the message says what to do."""


def check_sqlite(version: tuple[int, ...]) -> None:
    """Refuse to start on an SQLite too old for the statements the bot runs, saying what to do
    (rather than failing later, on the first booking, with a syntax error)."""
    if tuple(version) < SQLITE_NEEDED:
        have = ".".join(map(str, version))
        raise DatabaseUnusable(
            f"This Python's SQLite is version {have}; the bot needs 3.35 or newer. Use a newer "
            "Python (3.11 from python.org or your distribution's current release has it) or "
            "PostgreSQL (DATABASE_URL=postgresql+asyncpg://...)."
        )


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def keep_private(path: str) -> None:
    """Create the SQLite file readable and writable by this account only (0600), before SQLite
    opens it; tighten an existing file (and its companions) that others can read.

    SQLite gives its -wal, -shm and -journal files the database file's mode, so a private
    database keeps its companions private too."""
    if path in ("", ":memory:"):
        return
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
    except OSError:
        return  # SQLite itself will report why it cannot open the file
    tightened = []
    for name in (path, *(path + suffix for suffix in SQLITE_COMPANIONS)):
        try:
            if stat.S_IMODE(os.stat(name).st_mode) & 0o077:
                os.chmod(name, 0o600)
                tightened.append(name)
        except FileNotFoundError:
            continue
        except OSError as exc:  # owned by another account: say so, and let SQLite carry on
            log.warning("cannot make database file %s private: %s", name, exc.strerror)
    if tightened:
        log.warning("database files other accounts could read are now 0600: %s", tightened)


def make_engine(url: str = DEFAULT_URL, immediate: bool = True, **kwargs: Any) -> AsyncEngine:
    url = normalise_url(url)
    # Database errors otherwise quote the statement's values (concern text, names) in their
    # message, and so in any traceback that is logged.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        from chatbot.storage import sqlite_inline

        path = make_url(url).database or ":memory:"
        # A writer must never sleep in SQLite's busy handler: that would stall the event loop.
        busy_ms = 0 if immediate else READ_BUSY_MS
        connect = sqlite_inline.creator(path, busy_ms)

        def private_connect() -> Any:
            keep_private(path)
            return connect()

        engine = create_async_engine(url, async_creator=private_connect, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin").
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers take the lock up front (no "database is locked" half-way through a
            # change); readers use a plain BEGIN and, thanks to WAL, never wait for writers.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    url, server_settings = libpq_options(url)
    if server_settings:
        connect_args = dict(kwargs.get("connect_args") or {})
        connect_args["server_settings"] = {
            **server_settings,
            **(connect_args.get("server_settings") or {}),
        }
        kwargs["connect_args"] = connect_args
    kwargs.setdefault("pool_size", POOL_SIZE)
    kwargs.setdefault("max_overflow", 0)
    engine = create_async_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


def libpq_options(url: str) -> tuple[str, dict[str, str]]:
    """libpq's ``?options=-c name=value`` in a PostgreSQL URL (``-c search_path=school`` to
    keep the bot's tables in their own schema), as asyncpg server settings: asyncpg would
    otherwise refuse the parameter."""
    parsed = make_url(url)
    raw = parsed.query.get("options")
    if raw is None:
        return url, {}
    settings: dict[str, str] = {}
    words = iter((raw if isinstance(raw, str) else " ".join(raw)).split())
    for word in words:
        if word == "-c":
            word = "-c" + next(words, "")
        if not word.startswith(("-c", "--")) or "=" not in word:
            raise ValueError(
                f"DATABASE_URL options: {word!r} is not -c name=value (e.g. -c search_path=bot)"
            )
        name, _, value = word[2:].partition("=")
        settings[name.replace("-", "_")] = value
    return parsed.difference_update_query(["options"]).render_as_string(False), settings


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only if it sat idle for a while.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip that cost a quarter of
    a booking's CPU. A connection returned moments ago is alive; one idle for longer may have
    been cut by a database restart or a firewall, so that one is pinged, and a dead one is
    replaced before anyone's request can fail on it."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < IDLE_PING_SECONDS:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:
            raise DisconnectionError("connection was closed while idle") from exc


class Database:
    """Owns the engine; ``async with db.transaction() as s`` is the unit of work."""

    def __init__(self, url: str = DEFAULT_URL, pool_size: int | None = None, **engine_kwargs: Any):
        """``pool_size``: PostgreSQL connections to keep (POOL_SIZE when None); SQLite's own
        pools are left as they are."""
        self.url = normalise_url(url)
        if is_sqlite(self.url):
            check_sqlite(sqlite3.sqlite_version_info)
        elif pool_size is not None:
            engine_kwargs.setdefault("pool_size", pool_size)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine = (
            make_engine(self.url, immediate=False, **engine_kwargs)
            if is_sqlite(self.url)
            else self.engine
        )
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if is_sqlite(self.url) else None
        # PostgreSQL: one turn per pooled connection, handed out in order of asking. The async
        # pool gives a returned connection to whichever task asks next, so under load a task
        # could lose its turn again and again: with 50 requests at once on 15 connections, a
        # click's p99 was twice what it is with turns (bench/slack_ack.py).
        size = getattr(self.engine.pool, "size", None)
        self._pool_size = size() if callable(size) and self._write_lock is None else 0
        self._turns = asyncio.Semaphore(self._pool_size) if self._pool_size else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def serial_writers(self) -> bool:
        """True when write transactions already run one at a time (SQLite), so there is no
        need for row locks to order them."""
        return self._write_lock is not None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        if self._write_lock is None:
            async with self._turn(), self.sessions() as session, session.begin():
                yield session
            return
        # SQLite has one writer at a time. This process's writers queue on an asyncio lock
        # (handed over at once, in order); a lock held by another process is waited for here,
        # asynchronously, because SQLite's own busy handler would block the whole loop.
        async with self._write_lock:
            session = await _when_unlocked(self._begun_session)
            async with session:  # closing the session rolls back anything not committed
                yield session
                await session.commit()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a write transaction (migrations), queued as
        :meth:`transaction` is."""
        if self._write_lock is None:
            async with self._turn(), self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            conn = await _when_unlocked(self._begun_connection)
            try:
                yield conn
                await conn.commit()
            finally:
                await conn.close()  # rolls back anything not committed

    async def _begun_session(self) -> AsyncSession:
        session = self.sessions()
        try:
            await session.connection()  # runs BEGIN IMMEDIATE: the write lock, or "locked"
        except BaseException:
            await session.close()
            raise
        return session

    async def _begun_connection(self) -> AsyncConnection:
        conn = await self.engine.connect()
        try:
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        return conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction: on SQLite it does not take the write lock."""
        async with self._turn(), self.read_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """PostgreSQL: wait for this task's turn at a pooled connection (see __init__)."""
        if self._turns is None:
            yield
            return
        try:
            async with asyncio.timeout(POOL_WAIT_SECONDS):
                await self._turns.acquire()
        except TimeoutError:
            raise TimeoutError(
                f"no database connection came free in {POOL_WAIT_SECONDS:g} s "
                f"(DATABASE_POOL_SIZE is {self._pool_size})"
            ) from None
        try:
            yield
        finally:
            self._turns.release()

    async def create_all(self) -> None:
        """Create tables straight from the models (tests). Production uses migrations."""
        from chatbot.storage.models import Base

        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


async def _when_unlocked(attempt: Callable[[], Awaitable[T]]) -> T:
    """Retry ``attempt`` while another process holds SQLite's write lock, sleeping between
    tries so the loop carries on; give up after WRITE_LOCK_WAIT_SECONDS."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WRITE_LOCK_WAIT_SECONDS
    delay = 0.002
    while True:
        try:
            return await attempt()
        except OperationalError as e:
            if "locked" not in str(e.orig) or loop.time() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def rows_changed(session: AsyncSession, statement: Any) -> int:
    """Run an UPDATE/DELETE and return how many rows it changed (the basis of every
    "exactly once" claim in the services: the caller that changed the row won)."""
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0))


_IGNORING: dict[tuple[str, str], Any] = {}


async def insert_ignoring_duplicates(
    session: AsyncSession, model: Any, row: dict[str, Any]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was new. Unlike catching an
    IntegrityError, a duplicate leaves the surrounding transaction usable. The statement is
    built once per table and database (building it cost more than running it)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    key = (dialect, model.__tablename__)
    stmt = _IGNORING.get(key)
    if stmt is None:
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = _IGNORING[key] = insert(model.__table__).on_conflict_do_nothing()
    result = await session.execute(stmt, row)
    return int(getattr(result, "rowcount", 0)) == 1


_NEXT: dict[str, Any] = {}  # dialect -> the counter's upsert, built once


async def next_number(session: AsyncSession, name: str) -> int:
    """The next number of the counter ``name`` (1 for a new one), taken in the caller's
    transaction. The upsert locks the counter's row until the transaction ends, so concurrent
    callers are served one after the other and never get the same number."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    stmt = _NEXT.get(dialect)
    if stmt is None:
        from sqlalchemy.dialects import postgresql, sqlite

        from chatbot.storage.models import Counter

        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Counter)
        stmt = _NEXT[dialect] = (
            insert.values(name=bindparam("counter"), value=1)
            .on_conflict_do_update(index_elements=["name"], set_={"value": Counter.value + 1})
            .returning(Counter.value)
        )
    return int((await session.execute(stmt, {"counter": name})).scalar_one())
