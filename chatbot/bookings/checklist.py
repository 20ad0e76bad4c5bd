"""The security and safeguarding checklist: each tick stored with who and when.

An item can be ticked only while it can truly have been done: "before" and "environment"
checks from when the checklist is sent, "start" checks from the start of the call, and none
once the call is over (see Policy.checklist_opens_at)."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.bookings import notices
from chatbot.bookings.service import load
from chatbot.meetings.service import facts
from chatbot.policy import ChecklistItem
from chatbot.storage.db import insert_ignoring_duplicates
from chatbot.storage.models import Booking, ChecklistTick, Staff
from chatbot.ui import Message
from chatbot.uow import Unit

_TICKED = select(ChecklistTick.item_key).where(ChecklistTick.booking_id == bindparam("booking_id"))


async def ticked_keys(s: AsyncSession, booking_id: int) -> set[str]:
    return {k for (k,) in await s.execute(_TICKED, {"booking_id": booking_id})}


async def message(u: Unit, b: Booking) -> Message:
    """The checklist as it stands, with the Zoom meeting's join details and checks."""
    ticked = await ticked_keys(u.session, b.id)
    meeting = await facts(u.session, b.id)
    return notices.checklist(b, u.policy, ticked, now=u.now, meeting=meeting)


def _may_use(b: Booking, actor: Staff) -> bool:
    return actor.id in (b.host_id, b.cohost_id)


async def view(u: Unit, actor: Staff, booking_id: int | None) -> tuple[str | None, Message | None]:
    b = await load(u.session, booking_id)
    if b is None or not _may_use(b, actor):
        return "That checklist is not one of your calls.", None
    return None, await message(u, b)


def _not_yet(u: Unit, b: Booking, item: ChecklistItem) -> str | None:
    """Why ``item`` can't be ticked now (too early, or the call is over), else None."""
    if b.ends_at <= u.now:
        return f"{notices.ref(b)} has ended, so its checklist can no longer be ticked."
    opens = u.policy.checklist_opens_at(item, b.starts_at)
    if u.now >= opens:
        return None
    when = notices.short_when(opens, u.zone)
    why = (
        "when the call starts"
        if opens == b.starts_at
        else f"{u.policy.checklist_lead_minutes} minutes before the call"
    )
    return f"Too early to tick “{item.label}”: you can tick it from {when}, {why}."


async def tick(
    u: Unit, actor: Staff, booking_id: int | None, item_key: str
) -> tuple[str | None, Message | None]:
    """Tick one item (idempotent: a second click changes nothing). Returns (error, message)."""
    item = next((i for i in u.policy.checklist if i.key == item_key), None)
    if item is None:
        return "That checklist item is not in the school's checklist.", None
    b = await load(u.session, booking_id)
    if b is None or not _may_use(b, actor):
        return "That checklist is not one of your calls.", None
    if b.status not in ("confirmed", "awaiting_cohost"):
        return f"This call is {b.status.replace('_', ' ')}; nothing to tick.", None
    if why := _not_yet(u, b, item):
        return why, None
    row = {"booking_id": b.id, "item_key": item_key, "ticked_by_id": actor.id, "ticked_at": u.now}
    # A concurrent click may have ticked it first: then this one changes nothing.
    if await insert_ignoring_duplicates(u.session, ChecklistTick, row):
        u.audit(actor, "checklist.tick", "booking", b.id, {"item": item_key})
    return None, await message(u, b)
