"""A pupil's calls when they may no longer join one: called off, or kept on hold.

When a parent withdraws consent, the policy's ``[consent] on_withdrawal`` decides what happens
to the pupil's calls that have not yet ended:

- ``cancel``: each is called off at once (:func:`chatbot.bookings.service.call_off`), and the
  host, the co-host and SLT are told why.
- ``hold``: each stays in the diary, marked held with the reason. While held, the co-host can't
  accept it, its checklist and co-host request say it must not go ahead, and the host, co-host
  and SLT are told. Recording consent again lifts the hold (:func:`lift_holds`) when every
  pupil on the call has consent; a call still held at the co-host's answer deadline
  (``cohost_answer_by_minutes`` before the start) is called off by the sweep
  :func:`call_off_held_calls`, so a held call never simply goes ahead.

A pupil marked "video calls not suitable" has their calls called off, whatever the setting.
All of it happens in the unit of work of the change that caused it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from chatbot.bookings import notices
from chatbot.bookings.service import ACTIVE, call_off, load
from chatbot.roster.pupils import with_consent
from chatbot.storage.models import Booking, BookingPupil, Pupil, Staff
from chatbot.uow import Unit, Units


async def calls_with(u: Unit, pupil_id: int, *, held: bool | None = None) -> list[Booking]:
    """The pupil's calls that are still to happen (or under way), locked for this unit;
    ``held`` True/False keeps only calls on hold / not on hold."""
    q = (
        select(Booking)
        .join(BookingPupil, BookingPupil.booking_id == Booking.id)
        .where(
            BookingPupil.pupil_id == pupil_id,
            BookingPupil.active.is_(True),
            Booking.status.in_(ACTIVE),
            Booking.ends_at > u.now,
        )
        .order_by(Booking.starts_at, Booking.id)
    )
    if held is not None:
        q = q.where(Booking.held_at.is_not(None) if held else Booking.held_at.is_(None))
    if not u.serial:
        q = q.with_for_update(of=Booking)
    return list((await u.session.execute(q)).scalars().unique())


def who(actor: Staff | str | None) -> str:
    """How the person who acted is named to colleagues (the CLI may act for nobody in
    particular)."""
    return actor.name if isinstance(actor, Staff) else "the school office"


async def stop_calls(
    u: Unit, pupil: Pupil, actor: Staff | str | None, why: notices.Reason, mode: str
) -> list[Booking]:
    """Call off (``mode="cancel"``) or hold (``"hold"``) every call the pupil has still to
    come, telling the host, co-host and SLT why. Returns the calls affected."""
    calls = await calls_with(u, pupil.id, held=False if mode == "hold" else None)
    for b in calls:
        if mode == "hold":
            await hold(u, b, actor, why)
        else:
            await call_off(u, b, actor, who(actor), why)
    return calls


def hold_deadline(u: Unit, b: Booking) -> datetime:
    """When a call still on hold is called off: the co-host's answer deadline."""
    return b.starts_at - timedelta(minutes=u.policy.cohost_answer_by_minutes)


async def hold(u: Unit, b: Booking, actor: Staff | str | None, why: notices.Reason) -> None:
    b.held_at = u.now
    b.held_reason = notices.REASONS[why.code]
    host, cohost = await _people(u, b)
    actor_id = actor.id if isinstance(actor, Staff) else None
    u.audit(actor, "booking.hold", "booking", b.id, {"reason": why.code})
    deadline = hold_deadline(u, b)
    for person in (host, cohost):
        if person is not None and person.id != actor_id:
            u.to_staff(person.id, notices.on_hold(b, host, cohost, u.zone, False, why, deadline))
    u.to_role(
        "slt",
        notices.on_hold(b, host, cohost, u.zone, True, why, deadline),
        thread_key=f"slt:{b.id}",
    )
    if cohost is not None and b.status == "awaiting_cohost":
        # The request they have loses its Accept button until the hold is lifted.
        await u.update_thread(f"cohost:{b.id}", notices.cohost_request(b, host, cohost, u.zone))


async def lift_holds(u: Unit, pupil: Pupil, actor: Staff | str | None) -> list[Booking]:
    """Consent for ``pupil`` is on file again: lift the hold on each of their held calls
    whose pupils all have consent now. Returns the calls released."""
    released = []
    for b in await calls_with(u, pupil.id, held=True):
        ids = [bp.pupil_id for bp in b.pupils if bp.active]
        if set(ids) - await with_consent(u.session, ids):
            continue  # another pupil on the call still has no consent: it stays held
        b.held_at, b.held_reason = None, None
        host, cohost = await _people(u, b)
        u.audit(actor, "booking.hold_lifted", "booking", b.id)
        actor_id = actor.id if isinstance(actor, Staff) else None
        for person in (host, cohost):
            if person is not None and person.id != actor_id:
                u.to_staff(person.id, notices.hold_lifted(b, host, cohost, u.zone, False))
        u.to_role(
            "slt", notices.hold_lifted(b, host, cohost, u.zone, True), thread_key=f"slt:{b.id}"
        )
        if cohost is not None and b.status == "awaiting_cohost":
            await u.update_thread(f"cohost:{b.id}", notices.cohost_request(b, host, cohost, u.zone))
        released.append(b)
    return released


async def call_off_held_calls(units: Units) -> int:
    """Sweep: call off each call still on hold at its co-host's answer deadline."""
    soon = units.now() + timedelta(minutes=units.policy.cohost_answer_by_minutes)
    async with units.read() as u:
        due = list(
            (
                await u.session.execute(
                    select(Booking.id).where(
                        Booking.held_at.is_not(None),
                        Booking.status.in_(ACTIVE),
                        Booking.starts_at <= soon,
                        Booking.ends_at > units.now(),
                    )
                )
            ).scalars()
        )
    done = 0
    for booking_id in due:
        async with units.write() as u:
            b = await load(u.session, booking_id, lock=True)
            # Another replica, or a lifted hold, may have got there first.
            if b is None or b.held_at is None or b.status not in ACTIVE:
                continue
            await call_off(u, b, None, "the bot", notices.hold_deadline())
            done += 1
    return done


async def _people(u: Unit, b: Booking) -> tuple[Staff, Staff | None]:
    host = await u.session.get(Staff, b.host_id)
    assert host is not None
    cohost = await u.session.get(Staff, b.cohost_id) if b.cohost_id else None
    return host, cohost
