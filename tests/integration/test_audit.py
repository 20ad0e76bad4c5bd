"""The audit trail is append-only in the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError

from chatbot.core import Core
from chatbot.storage.models import AuditEvent


async def test_audit_rows_cannot_be_changed_or_deleted(school: Core) -> None:
    async with school.db.transaction() as s:
        count = (await s.execute(select(func.count(AuditEvent.id)))).scalar_one()
    assert count >= 3  # two roster imports and the consents in the fixture
    with pytest.raises(DBAPIError, match="append-only"):
        async with school.db.transaction() as s:
            await s.execute(update(AuditEvent).values(actor_label="someone else"))
    with pytest.raises(DBAPIError, match="append-only"):
        async with school.db.transaction() as s:
            await s.execute(delete(AuditEvent))
    async with school.db.transaction() as s:
        assert (await s.execute(select(func.count(AuditEvent.id)))).scalar_one() == count


async def test_database_errors_do_not_quote_values(school: Core) -> None:
    """A failing statement's message (which may end up in a logged traceback) leaves out the
    values it was given, so a concern's text can never reach the logs that way."""
    with pytest.raises(DBAPIError) as caught:
        async with school.db.transaction() as s:
            await s.execute(
                update(AuditEvent)
                .values(actor_label="SECRET-VALUE-123")
                .where(AuditEvent.actor_id.is_(None))
            )
    assert "SECRET-VALUE-123" not in str(caught.value)


async def test_sqlite_runs_with_wal_busy_timeout_and_foreign_keys(core: Core) -> None:
    from sqlalchemy import text

    if core.db.dialect != "sqlite":
        # The same suite runs on PostgreSQL: there the equivalent guarantee is the server's.
        async with core.db.reading() as s:
            assert (await s.execute(text("SELECT 1"))).scalar_one() == 1
        return
    async with core.db.reading() as s:
        assert (await s.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await s.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
        assert (await s.execute(text("PRAGMA busy_timeout"))).scalar_one() == 30000
