"""The security and safeguarding checklist: each tick stored with who and when."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot import notices
from chatbot.core import Core
from chatbot.services import audit
from chatbot.services.booking import load
from chatbot.storage.models import Booking, ChecklistTick, Staff
from chatbot.ui import Message


async def ticked_keys(s: AsyncSession, booking_id: int) -> set[str]:
    rows = await s.execute(
        select(ChecklistTick.item_key).where(ChecklistTick.booking_id == booking_id)
    )
    return {k for (k,) in rows}


def _may_use(b: Booking, actor: Staff) -> bool:
    return actor.id in (b.host_id, b.cohost_id)


async def view(core: Core, actor: Staff, booking_id: int) -> tuple[str | None, Message | None]:
    async with core.db.transaction() as s:
        b = await load(s, booking_id)
        if b is None or not _may_use(b, actor):
            return "That checklist is not one of your calls.", None
        return None, notices.checklist(b, core.policy, await ticked_keys(s, b.id))


async def tick(
    core: Core, actor: Staff, booking_id: int, item_key: str
) -> tuple[str | None, Message | None]:
    """Tick one item (idempotent: a second click changes nothing). Returns (error, message)."""
    if core.policy and item_key not in {i.key for i in core.policy.checklist}:
        return "That checklist item is not in the school's checklist.", None
    now = core.now()
    try:
        async with core.db.transaction() as s:
            b = await load(s, booking_id)
            if b is None or not _may_use(b, actor):
                return "That checklist is not one of your calls.", None
            if b.status not in ("confirmed", "awaiting_cohost"):
                return f"This call is {b.status.replace('_', ' ')}; nothing to tick.", None
            done = await ticked_keys(s, b.id)
            if item_key not in done:
                s.add(
                    ChecklistTick(
                        booking_id=b.id, item_key=item_key, ticked_by_id=actor.id, ticked_at=now
                    )
                )
                audit.record(
                    s,
                    at=now,
                    actor=actor,
                    action="checklist.tick",
                    subject_type="booking",
                    subject_id=b.id,
                    detail={"item": item_key},
                )
                done.add(item_key)
            return None, notices.checklist(b, core.policy, done)
    except IntegrityError:  # a concurrent click ticked it first
        return await view(core, actor, booking_id)
