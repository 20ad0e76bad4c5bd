"""The security and safeguarding checklist: each tick stored with who and when."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.bookings import notices
from chatbot.bookings.service import load
from chatbot.meetings.service import facts
from chatbot.storage.db import insert_ignoring_duplicates
from chatbot.storage.models import Booking, ChecklistTick, Staff
from chatbot.ui import Message
from chatbot.uow import Unit


async def ticked_keys(s: AsyncSession, booking_id: int) -> set[str]:
    rows = await s.execute(
        select(ChecklistTick.item_key).where(ChecklistTick.booking_id == booking_id)
    )
    return {k for (k,) in rows}


async def message(u: Unit, b: Booking) -> Message:
    """The checklist as it stands, with the Zoom meeting's join details and checks."""
    ticked = await ticked_keys(u.session, b.id)
    return notices.checklist(b, u.policy, ticked, meeting=await facts(u.session, b.id))


def _may_use(b: Booking, actor: Staff) -> bool:
    return actor.id in (b.host_id, b.cohost_id)


async def view(u: Unit, actor: Staff, booking_id: int | None) -> tuple[str | None, Message | None]:
    b = await load(u.session, booking_id)
    if b is None or not _may_use(b, actor):
        return "That checklist is not one of your calls.", None
    return None, await message(u, b)


async def tick(
    u: Unit, actor: Staff, booking_id: int | None, item_key: str
) -> tuple[str | None, Message | None]:
    """Tick one item (idempotent: a second click changes nothing). Returns (error, message)."""
    if item_key not in {i.key for i in u.policy.checklist}:
        return "That checklist item is not in the school's checklist.", None
    b = await load(u.session, booking_id)
    if b is None or not _may_use(b, actor):
        return "That checklist is not one of your calls.", None
    if b.status not in ("confirmed", "awaiting_cohost"):
        return f"This call is {b.status.replace('_', ' ')}; nothing to tick.", None
    row = {"booking_id": b.id, "item_key": item_key, "ticked_by_id": actor.id, "ticked_at": u.now}
    # A concurrent click may have ticked it first: then this one changes nothing.
    if await insert_ignoring_duplicates(u.session, ChecklistTick, row):
        u.audit(actor, "checklist.tick", "booking", b.id, {"item": item_key})
    return None, await message(u, b)
