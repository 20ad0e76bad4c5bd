"""Called by the booking services inside their unit of work: the meeting row written here is
the worker's to-do, committed together with the booking change that calls for it (never a
Zoom call inside an interaction)."""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.meetings import rules
from chatbot.meetings.facts import MeetingFacts
from chatbot.storage.db import insert_ignoring_duplicates
from chatbot.storage.models import Booking, Meeting, Staff
from chatbot.uow import Unit

PLATFORM = "zoom"


def on_zoom(b: Booking) -> bool:
    return b.platform.casefold() == PLATFORM


async def people(s: AsyncSession, b: Booking) -> tuple[Staff, Staff | None]:
    """The call's host and co-host (None when it has none)."""
    host = await s.get(Staff, b.host_id)
    assert host is not None
    return host, await s.get(Staff, b.cohost_id) if b.cohost_id else None


async def want_meeting(u: Unit, b: Booking) -> None:
    """``b`` is confirmed: queue its meeting, when the bot is connected to Zoom."""
    if not u.meetings or not on_zoom(b):
        return
    row = {
        "booking_id": b.id,
        "marker": uuid.uuid4().hex,
        "state": "pending",
        "passcode": rules.new_passcode(),
        "alt_host_refused": False,
        "version": 0,
        "due_at": u.now,
        "attempts": 0,
        "created_at": u.now,
    }
    if not await insert_ignoring_duplicates(u.session, Meeting, row):
        await booking_changed(u, b)


async def booking_changed(u: Unit, b: Booking) -> None:
    """``b`` changed (cancelled, lapsed, a new time or co-host): its meeting, if it has one,
    is brought into line by the worker."""
    await u.session.execute(
        update(Meeting)
        .where(Meeting.booking_id == b.id)
        .values(version=Meeting.version + 1, due_at=u.now)
        .execution_options(synchronize_session=False)
    )


def confirmation_note(u: Unit, b: Booking) -> str:
    """A line for the host's confirmation: what happens about the Zoom meeting."""
    if not on_zoom(b):
        return ""
    if u.meetings:
        return "The bot is creating the Zoom meeting; its link and passcode follow shortly."
    return (
        "Zoom is not connected to the bot, so set up the meeting yourself with a passcode, the "
        "waiting room and video on (the checklist lists each setting). With Zoom connected, "
        "the bot would create it with those settings, check them and send you the link."
    )


def facts_of(m: Meeting) -> MeetingFacts:
    found = m.mismatches or {}
    problems = [rules.SETTING_NAMES.get(k, k) for k in found.get("meeting", [])]
    problems += [rules.BREACHES[k].what for k in found.get("account", []) if k in rules.BREACHES]
    return MeetingFacts(m.state, m.join_url, m.passcode, tuple(problems))


_MEETING_OF = select(Meeting).where(Meeting.booking_id == bindparam("booking_id"))


async def facts(s: AsyncSession, booking_id: int) -> MeetingFacts | None:
    m = (await s.execute(_MEETING_OF, {"booking_id": booking_id})).scalar_one_or_none()
    return facts_of(m) if m is not None else None


async def flagged(s: AsyncSession, booking_ids: list[int]) -> set[int]:
    """Which of these calls have a meeting whose settings break the policy."""
    if not booking_ids:
        return set()
    rows = await s.execute(select(Meeting).where(Meeting.booking_id.in_(booking_ids)))
    return {m.booking_id for m in rows.scalars() if facts_of(m).flagged}
