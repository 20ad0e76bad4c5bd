"""The append-only audit trail. Only ``record`` writes it; nothing updates or deletes rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.storage.models import AuditEvent, Staff


def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: Staff | str | None,
    action: str,
    subject_type: str,
    subject_id: object,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit row to the current transaction. ``detail`` holds ids and codes, not
    narratives: concern text and parent emails stay in their own tables."""
    if isinstance(actor, Staff):
        actor_id: int | None = actor.id
        label = actor.email
    else:
        actor_id = None
        label = (actor or "system")[:200]  # the column's width; a platform's name can be longer
    event = AuditEvent(
        at=at,
        actor_id=actor_id,
        actor_label=label,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        detail=detail or {},
    )
    session.add(event)
    return event
