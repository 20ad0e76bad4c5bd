"""What really happened in a call, from the platform's events, and the alerts drawn from them.

The webhook adapter checks each event's signature and turns it into a :class:`CallEvent`;
:func:`record` stores it against the booking whose meeting it names, once (the platform
repeats deliveries), and :func:`run_sweeps` raises the alerts that depend on time passing:
the co-host not there a few minutes after the host, a call running past the school's limit.
Events about meetings the bot did not make are not stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from chatbot.bookings.notices import when
from chatbot.meetings import notices
from chatbot.meetings.service import people
from chatbot.policy import Policy
from chatbot.roster.identity import staff_by_email
from chatbot.storage.db import insert_ignoring_duplicates, rows_changed
from chatbot.storage.models import Booking, Meeting, MeetingEvent, Staff
from chatbot.uow import Unit, Units

log = logging.getLogger("chatbot.meetings.events")

EventKind = Literal[
    "started", "ended", "joined", "left", "waiting", "admitted", "left_waiting", "sent_to_waiting"
]


@dataclass(frozen=True)
class Participant:
    key: str  # the platform's id for this person in this meeting
    name: str  # as the platform gives it (what they typed, for guests)
    email: str | None  # given for people signed in to the platform
    is_host: bool  # the platform says they are the meeting's host


@dataclass(frozen=True)
class CallEvent:
    kind: EventKind
    meeting_id: str
    key: str  # the same for every delivery of one event
    at: datetime
    participant: Participant | None = None


async def record(units: Units, e: CallEvent) -> str:
    """Store ``e`` and act on it: "recorded", "repeat" (stored before) or "unknown" (not a
    meeting the bot made: nothing is stored)."""
    async with units.write() as u:
        m = (
            await u.session.execute(
                select(Meeting).where(Meeting.zoom_id == e.meeting_id).with_for_update()
            )
        ).scalar_one_or_none()
        if m is None:
            return "unknown"
        b = await u.session.get(Booking, m.booking_id)
        assert b is not None
        staff = await _staff_for(u.session, b, e.participant)
        new = await insert_ignoring_duplicates(
            u.session,
            MeetingEvent,
            {
                "meeting_id": m.id,
                "key": e.key,
                "kind": e.kind,
                "at": e.at,
                "received_at": u.now,
                "participant": e.participant.key[:100] if e.participant else None,
                "name": e.participant.name[:200] if e.participant else None,
                "staff_id": staff.id if staff else None,
            },
        )
        if not new:
            return "repeat"
        if e.kind == "started":
            await _started(u, m, b, e.at)
        elif e.kind == "ended":
            m.ended_at = e.at if m.ended_at is None else max(m.ended_at, e.at)
            u.audit(None, "meeting.ended", "booking", b.id, {"meeting": m.id})
            if m.started_at is not None:
                await _overrun(u, m, b, e.at - m.started_at)
        elif e.kind == "joined" and staff is not None:
            if staff.id == b.host_id and m.host_joined_at is None:
                m.host_joined_at = e.at
            if staff.id == b.cohost_id and m.cohost_joined_at is None:
                m.cohost_joined_at = e.at
    return "recorded"


async def _staff_for(s: AsyncSession, b: Booking, p: Participant | None) -> Staff | None:
    """The member of staff a participant is: matched by the email the platform gives, or the
    booking's host when the platform says they host it."""
    if p is None:
        return None
    if p.email:
        found = await staff_by_email(s, p.email)
        if found is not None and found.active:
            return found
    return await s.get(Staff, b.host_id) if p.is_host else None


async def _started(u: Unit, m: Meeting, b: Booking, at: datetime) -> None:
    if m.ended_at is not None and at > m.ended_at:  # started again after it ended
        m.ended_at = None
        m.started_at = at
    elif m.started_at is None or at < m.started_at:
        m.started_at = at
    u.audit(None, "meeting.started", "booking", b.id, {"meeting": m.id})
    why = odd_start(u.policy, b, at)
    if why:
        host, cohost = await people(u.session, b)
        u.audit(None, "meeting.odd_start", "booking", b.id, {"meeting": m.id})
        u.to_role(
            "slt", notices.odd_start(b, host, cohost, u.zone, at, why), thread_key=f"slt:{b.id}"
        )


def odd_start(policy: Policy, b: Booking, at: datetime) -> str:
    """Why a meeting starting at ``at`` is not the booked call ("" when it is)."""
    local = at.astimezone(policy.zone)
    booked = b.starts_at.astimezone(policy.zone)
    reasons = []
    if b.status != "confirmed":
        reasons.append(f"its call is {b.status.replace('_', ' ')}")
    elif local.date() != booked.date():
        reasons.append(
            f"on a day with no booking for it (the call is booked for {when(b, policy.zone)})"
        )
    closed = policy.closed_reason(local.date())
    if closed or not policy.day_start <= local.time() < policy.day_end:
        reasons.append(f"outside school hours ({policy.hours_text()})")
    return "; ".join(reasons)


async def _claim(
    s: AsyncSession, m: Meeting, column: InstrumentedAttribute[Any], now: datetime
) -> bool:
    stmt = update(Meeting).where(Meeting.id == m.id, column.is_(None)).values({column.key: now})
    return await rows_changed(s, stmt) == 1


async def _overrun(u: Unit, m: Meeting, b: Booking, running: timedelta) -> None:
    """A call longer than the school allows: the host is told, then SLT if it goes on."""
    p = u.policy
    minutes = int(running.total_seconds() // 60)
    if minutes <= p.max_call_minutes:
        return
    host, cohost = await people(u.session, b)
    if await _claim(u.session, m, Meeting.overrun_host_told_at, u.now):
        u.audit(None, "meeting.overrun", "booking", b.id, {"meeting": m.id, "minutes": minutes})
        u.to_staff(
            host.id, notices.overrun(b, host, cohost, u.zone, minutes, p.max_call_minutes, False)
        )
    if minutes > p.max_call_minutes + p.zoom_overrun_slt_minutes and await _claim(
        u.session, m, Meeting.overrun_slt_told_at, u.now
    ):
        u.audit(None, "meeting.overrun_slt", "booking", b.id, {"meeting": m.id})
        u.to_role(
            "slt",
            notices.overrun(b, host, cohost, u.zone, minutes, p.max_call_minutes, True),
            thread_key=f"slt:{b.id}",
        )


async def _cohost_check(u: Unit, m: Meeting, b: Booking) -> None:
    """N minutes after the host joined: was the co-host there by then?"""
    if not await _claim(u.session, m, Meeting.cohost_checked_at, u.now):
        return
    n = u.policy.zoom_cohost_absent_minutes
    assert m.host_joined_at is not None
    deadline = m.host_joined_at + timedelta(minutes=n)
    if not u.policy.cohost_required(b.kind):
        return
    if m.cohost_joined_at is not None and m.cohost_joined_at <= deadline:
        return
    host, cohost = await people(u.session, b)
    u.audit(None, "meeting.cohost_absent", "booking", b.id, {"meeting": m.id})
    u.to_staff(host.id, notices.cohost_absent(b, host, cohost, u.zone, n, False))
    u.to_role(
        "slt", notices.cohost_absent(b, host, cohost, u.zone, n, True), thread_key=f"slt:{b.id}"
    )


async def run_sweeps(units: Units) -> int:
    """The alerts that fall due as time passes. Each is claimed on its row, so it is sent
    once however many replicas sweep."""
    p = units.policy
    now = units.now()
    due_checks = select(Meeting.id).where(
        Meeting.host_joined_at <= now - timedelta(minutes=p.zoom_cohost_absent_minutes),
        Meeting.cohost_checked_at.is_(None),
    )
    running_long = select(Meeting.id).where(
        Meeting.started_at <= now - timedelta(minutes=p.max_call_minutes),
        Meeting.ended_at.is_(None),
        Meeting.overrun_slt_told_at.is_(None),
    )
    async with units.read() as u:
        checks = list((await u.session.execute(due_checks.limit(200))).scalars())
        long = list((await u.session.execute(running_long.limit(200))).scalars())
    done = 0
    for ids, step in ((checks, "cohost"), (long, "overrun")):
        for meeting_id in ids:
            async with units.write() as u:
                m = await u.session.get(Meeting, meeting_id)
                assert m is not None
                b = await u.session.get(Booking, m.booking_id)
                assert b is not None
                if step == "cohost":
                    await _cohost_check(u, m, b)
                elif m.started_at is not None and m.ended_at is None:
                    await _overrun(u, m, b, u.now - m.started_at)
                done += 1
    return done


@dataclass(frozen=True)
class CallActivity:
    """A call as Zoom saw it, for the host to confirm in the Keeping in Touch log."""

    started: datetime | None
    ended: datetime | None
    people: tuple[str, ...]  # who joined: staff by their roster name, others as Zoom gives

    @property
    def minutes(self) -> int | None:
        if self.started is None or self.ended is None:
            return None
        return max(int(round((self.ended - self.started).total_seconds() / 60)), 0)


async def activity(s: AsyncSession, b: Booking) -> CallActivity | None:
    """What Zoom reported about ``b``'s meeting (None when it reported nothing)."""
    m = (await s.execute(select(Meeting).where(Meeting.booking_id == b.id))).scalar_one_or_none()
    if m is None:
        return None
    rows = list(
        (
            await s.execute(
                select(MeetingEvent)
                .where(MeetingEvent.meeting_id == m.id)
                .order_by(MeetingEvent.at, MeetingEvent.id)
            )
        ).scalars()
    )
    if not rows:
        return None
    starts = [r.at for r in rows if r.kind == "started"]
    ends = [r.at for r in rows if r.kind == "ended"]
    people: dict[str, str] = {}
    for r in rows:
        if r.kind != "joined":
            continue
        key = f"staff:{r.staff_id}" if r.staff_id else (r.participant or r.name or "")
        if key in people:
            continue
        staff = await s.get(Staff, r.staff_id) if r.staff_id else None
        if staff is None:
            people[key] = r.name or "someone unnamed"
        elif staff.id == b.host_id:
            people[key] = f"{staff.name} (host)"
        elif staff.id == b.cohost_id:
            people[key] = f"{staff.name} (co-host)"
        else:
            people[key] = f"{staff.name} (staff)"
    return CallActivity(
        min(starts) if starts else None, max(ends) if ends else None, tuple(people.values())
    )
