"""Who may see and act on a concern: need-to-know, decided on the roster as it is now.

Only staff with the ``dsl`` or ``deputy_dsl`` role see the narrative, and never the member of
staff a concern is about. Every refusal is audited (and a refused view is also a chronology
event), so the DSL can see who tried.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.concerns.filing import add_event
from chatbot.fields import record_id
from chatbot.storage.models import Concern, Staff
from chatbot.uow import Unit

log = logging.getLogger("chatbot.concerns")

DSL_ROLES = ("dsl", "deputy_dsl")


def is_dsl(staff: Staff | None) -> bool:
    """An active DSL or deputy DSL on the roster."""
    return staff is not None and staff.active and staff.has_role(*DSL_ROLES)


def may_see(staff: Staff | None, c: Concern) -> bool:
    """DSL or deputy DSL, and not the member of staff the concern is about."""
    return is_dsl(staff) and staff is not None and staff.id != c.subject_staff_id


def may_acknowledge(staff: Staff | None, c: Concern, head_email: str | None) -> bool:
    """A DSL; or, for a concern about a member of staff, the head teacher too."""
    if may_see(staff, c):
        return True
    if staff is None or c.subject_staff_id is None or staff.id == c.subject_staff_id:
        return False
    return staff.has_role("admin") or (head_email or "").strip().lower() == staff.email


async def by_id(s: AsyncSession, value: str) -> Concern | None:
    concern_id = record_id(value)
    return await s.get(Concern, concern_id) if concern_id is not None else None


async def by_reference(s: AsyncSession, reference: str) -> Concern | None:
    return (
        await s.execute(select(Concern).where(Concern.reference == reference.strip().upper()))
    ).scalar_one_or_none()


def refuse(u: Unit, c: Concern, who: Staff | None, label: str, action: str) -> None:
    u.audit(who or label, f"concern.{action}_refused", "concern", c.reference)
    if action == "view":
        add_event(u.session, c, u.now, "view_refused", who, label)
    log.warning("concern %s: %s refused for a user without the DSL role", c.reference, action)
