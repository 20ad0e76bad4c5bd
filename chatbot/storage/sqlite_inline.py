"""SQLite calls made on the event loop's own thread.

aiosqlite hands every call to a worker thread and waits for the answer, and SQLAlchemy makes
several such calls per statement (cursor, execute, fetch, close). Each hand-over costs about
0.1 ms of thread wake-ups, several times what the statement itself costs on a school-sized
database, so a booking spent most of its time passing messages between threads.

Here aiosqlite's own connection and cursor classes are kept (SQLAlchemy's dialect is written
for them) but their queue to the worker thread is replaced by one that runs each call at once.
Statements block the loop while they run: microseconds for the indexed look-ups the server
makes, a few milliseconds now and then when a commit triggers a WAL checkpoint. Long reports
belong in the CLI, not the server. The one call that could block for long, waiting for another
process's write lock, is not allowed to wait: writers use a zero busy timeout and
:meth:`chatbot.storage.db.Database.transaction` retries them asynchronously.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import aiosqlite


class _RunNow:
    """Stands in for aiosqlite's queue to its worker thread: each call runs as it is queued,
    and its future is settled before the caller awaits it (so awaiting never yields)."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as e:  # handed to the awaiting caller, as aiosqlite's thread does
            if future is None:
                raise
            future.set_exception(e)
        else:
            if future is not None:
                future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no worker thread to start


def creator(path: str, busy_ms: int) -> Callable[[], InlineConnection]:
    """An ``async_creator`` for SQLAlchemy: connections to ``path`` that run inline."""

    def connect() -> InlineConnection:
        return InlineConnection(
            partial(sqlite3.connect, path, timeout=busy_ms / 1000, check_same_thread=False)
        )

    return connect
