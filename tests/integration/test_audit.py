"""The audit trail is append-only in the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError

from chatbot.storage.models import AuditEvent
from chatbot.uow import Units


async def test_audit_rows_cannot_be_changed_or_deleted(school: Units) -> None:
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


async def test_database_errors_do_not_quote_values(school: Units) -> None:
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


async def test_foreign_keys_enforced_and_sqlite_pragmas(core: Units) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from chatbot.storage.models import ChecklistTick

    with pytest.raises(IntegrityError):
        async with core.db.transaction() as s:
            s.add(
                ChecklistTick(
                    booking_id=999, item_key="x", ticked_by_id=999, ticked_at=datetime.now(UTC)
                )
            )
    if core.db.dialect == "sqlite":
        async with core.db.reading() as s:
            assert (await s.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await s.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
