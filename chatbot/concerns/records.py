"""A concern after it is filed: view details, acknowledge, notes and closing, and the
deliveries of its alerts recorded in its chronology.

Every view, refusal, acknowledgement, note and closure is both a chronology event (kept with the
concern) and an audit row (kept for good).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from chatbot.bookings import notices
from chatbot.concerns import notices as cn
from chatbot.concerns.access import DSL_ROLES, by_id, is_head, may_see, refuse
from chatbot.concerns.filing import alert_facts, chronology_entry, thread_key
from chatbot.storage.db import rows_changed
from chatbot.storage.models import Booking, Concern, ConcernEvent, OutboxMessage, Pupil, Staff
from chatbot.ui import Message
from chatbot.uow import Unit, Units

log = logging.getLogger("chatbot.concerns")

NOTE_MAX = 3000


@dataclass
class Outcome:
    ok: bool
    text: str = ""
    message: Message | None = None  # the popup, or the refreshed alert
    reference: str = ""


async def details_facts(u: Unit, c: Concern) -> cn.DetailFacts:
    s, zone = u.session, u.zone
    cat = u.policy.category(c.category)
    reporter = await s.get(Staff, c.reporter_id) if c.reporter_id else None
    pupil = await s.get(Pupil, c.pupil_id) if c.pupil_id else None
    subject = await s.get(Staff, c.subject_staff_id) if c.subject_staff_id else None
    booking = await s.get(Booking, c.booking_id) if c.booking_id else None
    pupil_text = "not named"
    if pupil is not None:
        pupil_text = f"{pupil.forename} {pupil.surname}"
        if pupil.class_name:
            pupil_text += f" ({pupil.class_name})"
        pupil_text += f", UPN {pupil.upn}"
    notes = (
        await s.execute(
            select(ConcernEvent)
            .where(ConcernEvent.concern_id == c.id, ConcernEvent.kind == "note")
            .order_by(ConcernEvent.at, ConcernEvent.id)
        )
    ).scalars()
    return cn.DetailFacts(
        reference=c.reference,
        category=cat.label if cat else c.category,
        urgent=c.immediate_risk,
        reporter=f"{reporter.name} ({reporter.email})" if reporter else c.reporter_label,
        pupil=pupil_text,
        staff_concerned=f"{subject.name} ({subject.email})" if subject else None,
        related_call=(
            f"{notices.ref(booking)}, {notices.when(booking, zone)}" if booking else None
        ),
        happened_at=c.happened_at,
        filed_at=c.filed_at,
        narrative=c.narrative,
        status="closed" if c.status == "closed" else "open",
        acknowledged=(
            f"{c.acknowledged_by_label} at {cn.at(c.acknowledged_at, zone)}"
            if c.acknowledged_at
            else None
        ),
        notes=tuple((n.at, n.actor_label, n.note or "") for n in notes),
        outcome=c.outcome,
    )


async def view(u: Unit, who: Staff | None, label: str, concern_id: str) -> Outcome:
    c = await by_id(u.session, concern_id)
    if c is None:
        return Outcome(False, "That concern no longer exists.")
    if not may_see(who, c, u.policy.head_teacher_email):
        refuse(u, c, who, label, "view")
        return Outcome(False, cn.refused("see the details of"), reference=c.reference)
    u.session.add(chronology_entry(c, u.now, "viewed", who, label))
    u.audit(who, "concern.view", "concern", c.reference)
    msg = cn.details(await details_facts(u, c), u.zone)
    log.info("concern %s details viewed", c.reference)
    return Outcome(True, message=msg, reference=c.reference)


# ---------------------------------------------------------------- acknowledge, note, close


async def acknowledge(u: Unit, who: Staff | None, label: str, concern_id: str) -> Outcome:
    s, now = u.session, u.now
    c = await by_id(s, concern_id)
    if c is None:
        return Outcome(False, "That concern no longer exists.")
    if who is None or not may_see(who, c, u.policy.head_teacher_email):
        refuse(u, c, who, label, "ack")
        return Outcome(False, cn.refused("acknowledge"), reference=c.reference)
    claimed = (
        await rows_changed(
            s,
            update(Concern)
            .where(Concern.id == c.id, Concern.acknowledged_at.is_(None))
            .values(acknowledged_at=now, acknowledged_by_id=who.id, acknowledged_by_label=who.name),
        )
        == 1
    )
    await s.refresh(c)
    msg = cn.alert(await alert_facts(s, u.policy, c), u.zone)
    if not claimed:
        return Outcome(
            True,
            f"{c.reference} was already acknowledged by {c.acknowledged_by_label}.",
            msg,
            c.reference,
        )
    minutes = int((now - c.filed_at).total_seconds() // 60)
    s.add(
        chronology_entry(c, now, "acknowledged", who, label, detail=f"{minutes} min after filing")
    )
    u.audit(who, "concern.ack", "concern", c.reference, {"minutes": minutes})
    await u.update_thread(thread_key(c.id), msg)
    if c.reporter_id is not None and c.reporter_id != who.id:
        u.to_staff(c.reporter_id, cn.acknowledged_for_reporter(c.reference, who.name))
    log.info("concern %s acknowledged after %d min", c.reference, minutes)
    return Outcome(
        True,
        f"You acknowledged {c.reference}. Everyone who got the alert can see that you have it.",
        msg,
        c.reference,
    )


async def may_manage(
    u: Unit, who: Staff | None, label: str, concern_id: str, action: str
) -> tuple[Concern | None, str]:
    """For the note and close buttons: the concern if ``who`` may manage it, else a refusal."""
    c = await by_id(u.session, concern_id)
    if c is None:
        return None, "That concern no longer exists."
    if not may_see(who, c, u.policy.head_teacher_email):
        refuse(u, c, who, label, action)
        return None, cn.refused("manage")
    if c.status == "closed":
        return None, f"{c.reference} is closed."
    return c, ""


async def add_note(
    u: Unit, who: Staff | None, label: str, concern_id: str, note: str, close: bool
) -> Outcome:
    s, now = u.session, u.now
    c = await by_id(s, concern_id)
    if c is None:
        return Outcome(False, "That concern no longer exists.")
    if not may_see(who, c, u.policy.head_teacher_email):
        refuse(u, c, who, label, "close" if close else "note")
        return Outcome(False, cn.refused("manage"))
    if c.status == "closed":
        return Outcome(False, f"{c.reference} is already closed.")
    if close:
        c.status, c.closed_at, c.outcome = "closed", now, note
        if c.acknowledged_at is None:
            c.acknowledged_at, c.acknowledged_by_label = now, who.name if who else label
            c.acknowledged_by_id = who.id if who else None
        s.add(chronology_entry(c, now, "closed", who, label, note=note))
    else:
        s.add(chronology_entry(c, now, "note", who, label, note=note))
    u.audit(who, "concern.close" if close else "concern.note", "concern", c.reference)
    await s.flush()
    msg = cn.alert(await alert_facts(s, u.policy, c), u.zone)
    if close:
        await u.update_thread(thread_key(c.id), msg)
    done = "closed" if close else "noted"
    log.info("concern %s %s", c.reference, done)
    return Outcome(
        True,
        f"{c.reference}: {'closed with your outcome' if close else 'note added'}.",
        msg,
        c.reference,
    )


# ---------------------------------------------------------------- the list of open concerns

LIST_MAX = 20  # shown in chat (Slack allows 50 blocks in a message; each concern takes two)


async def open_concerns(
    u: Unit, who: Staff | None, label: str
) -> tuple[list[cn.ListedConcern] | None, str]:
    """The open concerns ``who`` may see: not yet acknowledged first (urgent ones first, then
    oldest first), then the acknowledged ones, oldest first. No narrative, no names. The
    list is audited; a refusal (not a DSL or head teacher) is audited and explained."""
    head_email = u.policy.head_teacher_email
    if who is None or not who.active or not (who.has_role(*DSL_ROLES) or is_head(who, head_email)):
        u.audit(who or label, "concern.list_refused", "concern", "open")
        log.warning("concern list refused for someone concerns are not sent to")
        return None, cn.LIST_REFUSED
    rows = (await u.session.execute(select(Concern).where(Concern.status == "open"))).scalars()
    visible = [c for c in rows if may_see(who, c, head_email)]
    visible.sort(
        key=lambda c: (c.acknowledged_at is not None, not c.immediate_risk, c.filed_at, c.id)
    )
    listed = [
        cn.ListedConcern(
            concern_id=c.id,
            reference=c.reference,
            category=(cat.label if (cat := u.policy.category(c.category)) else c.category),
            urgent=c.immediate_risk,
            filed_at=c.filed_at,
            acknowledged_by=c.acknowledged_by_label if c.acknowledged_at else None,
        )
        for c in visible
    ]
    u.audit(who, "concern.list", "concern", "open", {"count": len(listed)})
    return listed, ""


# ---------------------------------------------------------------- deliveries in the chronology

PLATFORM_NAMES = {"slack": "Slack", "teams": "Teams"}


async def note_deliveries(units: Units, limit: int = 500) -> int:
    """Add a "delivered" event for each concern alert the platform has accepted (the outbox
    marks it delivered only once the platform returned a message id)."""
    async with units.read() as u:
        s = u.session
        rows = (
            await s.execute(
                select(OutboxMessage, ConcernEvent.id)
                .outerjoin(ConcernEvent, ConcernEvent.outbox_id == OutboxMessage.id)
                .where(
                    OutboxMessage.thread_key.like("concern:%"),
                    OutboxMessage.kind != "update",
                    OutboxMessage.delivered_at.is_not(None),
                    ConcernEvent.id.is_(None),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            )
        ).all()
        todo: list[tuple[OutboxMessage, Concern, str]] = []
        for row, _ in rows:
            key = (row.thread_key or "").removeprefix("concern:")
            c = await by_id(s, key)
            if c is None:
                continue
            if row.kind == "role":
                where = f"{(row.role or '').upper()} channel"
            else:
                person = await s.get(Staff, row.staff_id) if row.staff_id else None
                where = f"direct message to {person.name if person else 'staff'}"
            if row.platform in PLATFORM_NAMES:  # Slack and Teams may both be in use
                where += f" on {PLATFORM_NAMES[row.platform]}"
            todo.append((row, c, where))
    done = 0
    for row, c, where in todo:
        try:
            async with units.write() as u:
                assert row.delivered_at is not None
                u.session.add(
                    chronology_entry(
                        c,
                        row.delivered_at,
                        "delivered",
                        None,
                        "system",
                        detail=where,
                        outbox_id=row.id,
                    )
                )
            done += 1
        except IntegrityError:  # another replica noted it first
            continue
    return done
