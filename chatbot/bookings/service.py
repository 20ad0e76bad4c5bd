"""Booking a call: the policy check, storing the booking with its notices, cancelling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TypeVar, cast

from sqlalchemy import Table, and_, bindparam, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from chatbot.bookings import notices
from chatbot.bookings.forms import PLAN_MAX
from chatbot.bookings.rules import (
    BookingFacts,
    CheckGaps,
    ProposedBooking,
    Unsuitable,
    Violation,
    check_booking,
    check_gaps,
    outside_window,
)
from chatbot.fields import (
    FieldError,
    many,
    one,
    parse_date,
    parse_int,
    parse_time,
    picked_email,
    text,
)
from chatbot.interaction import SubmittedValue
from chatbot.mail import invites
from chatbot.meetings import service as meetings
from chatbot.policy import Policy
from chatbot.roster.identity import normalise_email, staff_by_email
from chatbot.roster.pupils import pupils_with_consent
from chatbot.storage.models import AuditEvent, Booking, BookingPupil, Pupil, Staff
from chatbot.terms.calendar import closed_reason
from chatbot.uow import Unit

T = TypeVar("T")
ACTIVE = ("awaiting_cohost", "confirmed")


@dataclass
class BookingResult:
    errors: dict[str, str] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    booking: Booking | None = None
    host: Staff | None = None
    cohost: Staff | None = None


def week_of(d: date) -> int:
    iso = d.isocalendar()
    return iso.year * 100 + iso.week


def _add(errors: dict[str, str], field_id: str, message: str) -> None:
    # Several rules can concern one field: show them all, one per sentence.
    errors[field_id] = f"{errors[field_id]} {message}" if field_id in errors else message


# The checks every booking runs, built once: building a statement costs more than SQLite
# takes to run it. Staff are the host and the co-host (the host twice when there is none), so
# the statement has fixed parameters. The status is compared as ``status || ''`` so that no
# database picks the status index, which would read every active booking of the school: the
# host and co-host indexes find the few calls of these two people.
_STATUS = Booking.status + literal("")
_OVERLAPPING = select(Booking.host_id, Booking.cohost_id).where(
    or_(*(_STATUS == literal(status) for status in ACTIVE)),
    Booking.starts_at < bindparam("end"),
    Booking.ends_at > bindparam("start"),
    or_(
        Booking.host_id == bindparam("a"),
        Booking.host_id == bindparam("b"),
        Booking.cohost_id == bindparam("a"),
        Booking.cohost_id == bindparam("b"),
    ),
)
_INSERT_BOOKING = insert(cast(Table, Booking.__table__)).returning(Booking.id)
_INSERT_PUPILS = insert(cast(Table, BookingPupil.__table__)).values(active=True)
_WEEK_SLOTS = select(BookingPupil.pupil_id, BookingPupil.slot).where(
    BookingPupil.pupil_id.in_(bindparam("pupils", expanding=True)),
    BookingPupil.week == bindparam("week"),
    BookingPupil.active.is_(True),
)


_LOCK_PEOPLE = (
    select(Staff)
    .where(or_(Staff.id == bindparam("host"), Staff.email == bindparam("cohost")))
    .with_for_update()
)


async def _lock_people(s: AsyncSession, host: Staff, cohost_email: str) -> Staff | None:
    """Lock the host's row and the co-host's (found by email); returns the co-host."""
    email = normalise_email(cohost_email) if cohost_email else ""
    rows = (await s.execute(_LOCK_PEOPLE, {"host": host.id, "cohost": email})).scalars()
    return next((x for x in rows if email and x.email == email), None)


async def overlapping(
    s: AsyncSession, staff_ids: list[int], start: datetime, end: datetime
) -> set[int]:
    """Which of ``staff_ids`` (the host, and the co-host if any) already host or co-host an
    active call overlapping start..end."""
    a, b = staff_ids[0], staff_ids[-1]
    rows = await s.execute(_OVERLAPPING, {"start": start, "end": end, "a": a, "b": b})
    busy: set[int] = set()
    for host_id, cohost_id in rows:
        busy.update(x for x in (host_id, cohost_id) if x in staff_ids)
    return busy


async def week_slots(s: AsyncSession, pupil_ids: list[int], week: int) -> dict[int, set[int]]:
    """For each pupil, the weekly slots their active calls already take in ``week``."""
    taken: dict[int, set[int]] = {pid: set() for pid in pupil_ids}
    if pupil_ids:
        rows = await s.execute(_WEEK_SLOTS, {"pupils": pupil_ids, "week": week})
        for pupil_id, slot in rows:
            taken[pupil_id].add(slot)
    return taken


async def create_booking(u: Unit, host: Staff, values: dict[str, SubmittedValue]) -> BookingResult:
    """Check every rule at once; store the booking only if nothing is wrong.

    Runs in a write unit, so the facts checked cannot change before the booking is stored:
    SQLite runs one writer at a time, and on PostgreSQL the host's and co-host's rows are
    locked first. Two bookings racing for a pupil's weekly slot are stopped by a unique
    index; the router then runs the loser again, and it is refused by the weekly-limit rule."""
    result = BookingResult(host=host)
    errors = result.errors
    p = u.policy
    s = u.session

    def attempt(fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except FieldError as e:
            _add(errors, e.field, e.message)
            return None

    day = attempt(lambda: parse_date(values, "date", "Date"))
    if day is not None and (far := outside_window(day, u.now, p)) is not None:
        result.violations.append(far)
        _add(errors, far.field, far.message)
        day = None  # nothing else is checked against a date outside the booking window
    start_t = attempt(lambda: parse_time(values, "start", "Start time"))
    minutes = attempt(lambda: parse_int(values, "duration", "Length", 1, 24 * 60))
    plan = attempt(lambda: text(values, "plan", "The plan", PLAN_MAX, False))
    cohost_email = attempt(lambda: picked_email(values, "cohost", "co-host")) or ""
    kind = one(values, "kind") or "one_to_one"
    if kind not in ("one_to_one", "group"):
        _add(errors, "kind", "Choose one-to-one or group.")
    platform = one(values, "platform")[:100]
    upns = [x.upper() for x in many(values, "pupils")][:100]

    starts_at: datetime | None = None
    if day and start_t:
        starts_at = datetime.combine(day, start_t, tzinfo=p.zone)
    pupils, unknown, consented = await pupils_with_consent(s, upns)
    cohost: Staff | None = None
    if not u.serial:
        # Lock the host's and co-host's rows so two bookings for the same people are checked
        # one after the other; the same statement finds the co-host.
        cohost = await _lock_people(s, host, cohost_email)
    elif cohost_email:
        cohost = await staff_by_email(s, cohost_email)
    if cohost_email:
        if cohost is None or not cohost.active:
            _add(
                errors,
                "cohost",
                f"{cohost_email[:80]} is not on the staff roster, so they can't co-host.",
            )
            cohost = None
    result.cohost = cohost
    facts = BookingFacts(now=u.now, unknown_pupils=tuple(unknown))
    taken: dict[int, set[int]] = {}
    if starts_at is not None and minutes is not None:
        facts, taken = await _time_facts(u, facts, host, cohost, pupils, starts_at, minutes)
    if p.consent_required:
        facts = replace(
            facts, without_consent=tuple(x.short_name for x in pupils if x.id not in consented)
        )
    facts = replace(facts, unsuitable=unsuitable_pupils(pupils))
    if day is not None:
        facts = replace(
            facts,
            closed=await closed_reason(u, day),
            check_gaps=staff_check_gaps(host, cohost, day, p),
        )
    proposal = ProposedBooking(
        host_id=host.id,
        cohost_id=cohost.id if cohost else (-1 if cohost_email else None),
        kind=kind,
        starts_at=starts_at or (u.now + timedelta(days=365)),
        minutes=minutes or p.min_call_minutes,
        platform=platform,
        plan=plan if plan is not None else "x",
        pupil_count=len(pupils) + len(unknown),
    )
    timed = ("school_day", "school_hours", "notice", "horizon")
    for v in check_booking(proposal, facts, p):
        if v.rule in timed and (starts_at is None or v.field in errors):
            continue  # the date or time itself was unreadable: that error says enough
        if (minutes is None and v.rule == "length") or (v.field == "cohost" and "cohost" in errors):
            continue
        result.violations.append(v)
        _add(errors, v.field, v.message)
    if errors:
        return result
    assert starts_at is not None and minutes is not None and plan is not None
    result.booking = await _store(
        u, host, cohost, kind, starts_at, minutes, platform, plan, pupils, taken
    )
    if facts.check_gaps:  # the policy only warns: the booking stands, and SLT are told
        _tell_slt_of_check_gaps(u, result.booking, host, cohost, facts.check_gaps)
    return result


def unsuitable_pupils(pupils: list[Pupil]) -> tuple[Unsuitable, ...]:
    """The pupils for whom live video has been marked not suitable."""
    return tuple(
        Unsuitable(x.short_name, x.video_unsuitable_reason, x.keep_in_touch_by or "")
        for x in pupils
        if x.video_unsuitable_reason is not None
    )


def staff_check_gaps(
    host: Staff, cohost: Staff | None, day: date, p: Policy
) -> tuple[CheckGaps, ...]:
    """What the roster lacks about the host's and co-host's DBS checks and training."""
    out = []
    for person, field_id, who in ((host, "pupils", "You"), (cohost, "cohost", None)):
        if person is None:
            continue
        gaps = check_gaps(person.dbs_checked, person.safeguarding_training, day, p)
        if gaps:
            out.append(CheckGaps(field_id, who or person.name, gaps))
    return tuple(out)


def _tell_slt_of_check_gaps(
    u: Unit, b: Booking, host: Staff, cohost: Staff | None, gaps: tuple[CheckGaps, ...]
) -> None:
    named = tuple(replace(g, who=host.name if g.who == "You" else g.who) for g in gaps)
    u.audit(host, "booking.staff_checks_missing", "booking", b.id, {"people": len(named)})
    u.to_role("slt", notices.check_gaps_for_slt(b, host, cohost, u.zone, named))


async def _time_facts(
    u: Unit,
    facts: BookingFacts,
    host: Staff,
    cohost: Staff | None,
    pupils: list[Pupil],
    starts_at: datetime,
    minutes: int,
) -> tuple[BookingFacts, dict[int, set[int]]]:
    """The facts that depend on other bookings (who is busy, who is at the weekly limit),
    and each pupil's weekly slots already taken."""
    end = starts_at + timedelta(minutes=minutes)
    ids = [host.id] + ([cohost.id] if cohost else [])
    busy = await overlapping(u.session, ids, starts_at, end)
    slots = await week_slots(u.session, [x.id for x in pupils], week_of(starts_at.date()))
    per_week = u.policy.calls_per_pupil_per_week
    return replace(
        facts,
        host_busy=host.id in busy,
        cohost_busy=cohost is not None and cohost.id in busy,
        at_weekly_limit=tuple(x.short_name for x in pupils if len(slots[x.id]) >= per_week),
    ), slots


async def _store(
    u: Unit,
    host: Staff,
    cohost: Staff | None,
    kind: str,
    starts_at: datetime,
    minutes: int,
    platform: str,
    plan: str,
    pupils: list[Pupil],
    taken: dict[int, set[int]],
) -> Booking:
    p = u.policy
    canonical_platform = next(x for x in p.platforms if x.casefold() == platform.casefold())
    row = {
        "host_id": host.id,
        "cohost_id": cohost.id if cohost else None,
        "kind": kind,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(minutes=minutes),
        "platform": canonical_platform,
        "plan": plan,
        "status": "awaiting_cohost" if cohost else "confirmed",
        "created_at": u.now,
    }
    week = week_of(starts_at.date())
    # Free slot per pupil; the partial unique index rejects a slot taken concurrently.
    slots = {
        x.id: next(i for i in range(p.calls_per_pupil_per_week + 1) if i not in taken[x.id])
        for x in pupils
    }
    # Core inserts: the ORM's unit-of-work flush cost more than the rest of the booking.
    booking_id = int((await u.session.execute(_INSERT_BOOKING, row)).scalar_one())
    await u.session.execute(
        _INSERT_PUPILS,
        [
            {"booking_id": booking_id, "pupil_id": x.id, "week": week, "slot": slots[x.id]}
            for x in pupils
        ],
    )
    # The same booking as an object the notices can read; it is not added to the session.
    booking = Booking(id=booking_id, **row)
    booking.pupils = [
        BookingPupil(pupil=x, week=week, slot=slots[x.id], active=True) for x in pupils
    ]
    u.audit(
        host,
        "booking.create",
        "booking",
        booking.id,
        {
            "status": booking.status,
            "cohost_id": booking.cohost_id,
            "pupil_ids": [x.id for x in pupils],
        },
    )
    if cohost is not None:
        u.to_staff(
            cohost.id,
            notices.cohost_request(booking, host, cohost, p.zone),
            thread_key=f"cohost:{booking.id}",
        )
    else:
        u.tell_slt(notices.slt_notice(booking, host, None, p.zone), thread_key=f"slt:{booking.id}")
        await invites.call_confirmed(u, booking)
        await meetings.want_meeting(u, booking)  # confirmed at once: no co-host to wait for
    return booking


# A booking and its pupils in one statement (the relationship's own "selectin" loading costs
# a second query), built once.
_LOAD = (
    select(Booking).where(Booking.id == bindparam("booking_id")).options(joinedload(Booking.pupils))
)


async def load(s: AsyncSession, booking_id: int | None, lock: bool = False) -> Booking | None:
    """The booking with this id (None for an id that can't be one: see fields.record_id)."""
    if booking_id is None:
        return None
    if lock:  # FOR UPDATE can't lock the outer side of a join on PostgreSQL: two statements
        q = select(Booking).where(Booking.id == booking_id).with_for_update()
        return (await s.execute(q)).scalar_one_or_none()
    found = await s.execute(_LOAD, {"booking_id": booking_id})
    return found.unique().scalar_one_or_none()


async def release_pupils(s: AsyncSession, booking: Booking) -> None:
    """Free the pupils' weekly slots when a call will not happen."""
    for bp in booking.pupils:
        bp.active = False


def why_not_cancel(b: Booking | None, actor: Staff, now: datetime) -> str | None:
    """Why ``actor`` cannot cancel ``b`` now, or None when they can."""
    if b is None:
        return "There is no such call."
    if b.host_id != actor.id and not actor.has_role("slt"):
        return "Only the host or a member of SLT can cancel this call."
    if b.status not in ACTIVE:
        return f"{notices.ref(b)} is already {b.status.replace('_', ' ')}."
    if b.ends_at <= now:
        return "That call has already taken place."
    return None


async def cancel(u: Unit, actor: Staff, booking_id: int | None) -> tuple[str, Booking | None]:
    """Cancel a call. Only its host or a member of SLT may. The co-host, SLT (once the call
    was announced to them) and, when someone else cancels, the host are told who did."""
    b = await load(u.session, booking_id, lock=True)
    if (reason := why_not_cancel(b, actor, u.now)) is not None:
        return reason, None
    assert b is not None
    await call_off(u, b, actor, notices.cancelled_by(b, actor))
    return f"Cancelled {notices.ref(b)} on {notices.when(b, u.zone)}.", b


async def call_off(
    u: Unit,
    b: Booking,
    actor: Staff | str | None,
    by: str,
    why: notices.Reason | None = None,
) -> None:
    """Cancel the active call ``b`` (already checked and locked by the caller), free its
    pupils' weekly slots and tell people: the co-host, the host unless they did it, SLT
    once the call was announced to them or whenever there is a reason (``why``) they should
    know, such as a parent withdrawing consent, and the families who were invited."""
    zone = u.zone
    was = b.status
    b.status = "cancelled"
    b.cancelled_at = u.now
    await release_pupils(u.session, b)
    await meetings.booking_changed(u, b)  # its Zoom meeting is deleted
    host = await u.session.get(Staff, b.host_id)
    cohost = await u.session.get(Staff, b.cohost_id) if b.cohost_id else None
    assert host is not None
    actor_id = actor.id if isinstance(actor, Staff) else None
    detail: dict[str, object] = {"was": was}
    if why is not None:
        detail["reason"] = why.code
    u.audit(actor, "booking.cancel", "booking", b.id, detail)
    if cohost is not None:
        if was == "awaiting_cohost":
            because = f" because {why.staff}" if why else ""
            await u.update_thread(
                f"cohost:{b.id}",
                notices.cohost_request_closed(
                    b, host, cohost, zone, f"cancelled by {by}{because}; nothing to do."
                ),
            )
        elif cohost.id != actor_id:
            u.to_staff(cohost.id, notices.cancelled(b, host, cohost, zone, False, by, why))
    if host.id != actor_id:
        u.to_staff(host.id, notices.cancelled(b, host, cohost, zone, False, by, why))
    if was == "confirmed" or why is not None:
        u.tell_slt(
            notices.cancelled(b, host, cohost, zone, True, by, why), thread_key=f"slt:{b.id}"
        )
    await invites.call_off(u, b)


async def who_cancelled(s: AsyncSession, b: Booking) -> str:
    """Who cancelled ``b`` and why, as :func:`call_off` told people (from the audit trail)."""
    row = (
        await s.execute(
            select(AuditEvent.actor_id, AuditEvent.detail)
            .where(
                AuditEvent.action == "booking.cancel",
                AuditEvent.subject_type == "booking",
                AuditEvent.subject_id == str(b.id),
            )
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
    ).first()
    actor_id, detail = row if row is not None else (None, {})
    reason = notices.REASONS.get(str((detail or {}).get("reason")))
    canceller = await s.get(Staff, actor_id) if actor_id is not None else None
    if reason is not None:
        return f"{canceller.name if canceller else 'the school'} because {reason}"
    return notices.cancelled_by(b, canceller) if canceller is not None else "the host or SLT"


async def my_calls(u: Unit, staff: Staff) -> list[Booking]:
    now = u.now
    rows = await u.session.execute(
        select(Booking)
        .where(
            or_(Booking.host_id == staff.id, Booking.cohost_id == staff.id),
            or_(
                and_(Booking.status.in_(ACTIVE), Booking.ends_at > now),
                and_(
                    Booking.status == "confirmed",
                    Booking.ends_at <= now,
                    Booking.host_id == staff.id,
                    Booking.ends_at > now - timedelta(days=14),
                ),
            ),
        )
        .order_by(Booking.starts_at)
        .limit(20)
    )
    return list(rows.scalars())


async def count_active(s: AsyncSession) -> int:
    return int(
        (
            await s.execute(select(func.count(Booking.id)).where(Booking.status.in_(ACTIVE)))
        ).scalar_one()
    )
