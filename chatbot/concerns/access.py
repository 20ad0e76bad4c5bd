"""Who may see and act on a concern: need-to-know, decided on the roster as it is now.

The people a concern is routed to for action see its details, may acknowledge it and add
notes: the DSL and deputy DSLs and, for a concern about a member of staff, the head teacher
(the policy's ``head_teacher_email``, or anyone with the admin role). Never the member of staff
it is about. SLT get escalations so that someone chases the DSL, not the details. Every view
is audited, and every refusal too (a refused view is also a chronology event), so the DSL can
see who tried.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.concerns.filing import chronology_entry
from chatbot.fields import record_id
from chatbot.storage.models import Concern, Staff
from chatbot.uow import Unit

log = logging.getLogger("chatbot.concerns")

DSL_ROLES = ("dsl", "deputy_dsl")


def is_dsl(staff: Staff | None) -> bool:
    """An active DSL or deputy DSL on the roster."""
    return staff is not None and staff.active and staff.has_role(*DSL_ROLES)


def is_head(staff: Staff, head_email: str | None) -> bool:
    """The head teacher: named in the policy, or anyone with the admin role."""
    return staff.has_role("admin") or (head_email or "").strip().lower() == staff.email


def may_see(staff: Staff | None, c: Concern, head_email: str | None) -> bool:
    """Someone the concern was routed to (see the module's note), and not its subject."""
    if staff is None or not staff.active or staff.id == c.subject_staff_id:
        return False
    if staff.has_role(*DSL_ROLES):
        return True
    return c.subject_staff_id is not None and is_head(staff, head_email)


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
        u.session.add(chronology_entry(c, u.now, "view_refused", who, label))
    log.warning("concern %s: %s refused for someone it was not sent to", c.reference, action)
