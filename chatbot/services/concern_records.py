"""Need-to-know access to a concern, its chronology, export and retention.

Only staff with the ``dsl`` or ``deputy_dsl`` role see the narrative, and never the member of
staff a concern is about. Every view, refusal, acknowledgement, note, closure, export, hold
and purge is both a chronology event (kept with the concern) and an audit row (kept for good).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot import concern_notices as cn
from chatbot import notices, outbox
from chatbot.core import Core
from chatbot.services import audit
from chatbot.services.concern_filing import (
    add_event,
    alert_facts,
    thread_key,
)
from chatbot.services.forms import PUPIL_LIFETIME_YEARS, record_id
from chatbot.services.identity import cli_actor, staff_by_email
from chatbot.storage.db import rows_changed
from chatbot.storage.models import (
    Booking,
    Concern,
    ConcernEvent,
    OutboxMessage,
    Pupil,
    Staff,
)
from chatbot.ui import Message

log = logging.getLogger("chatbot.concerns")

DSL_ROLES = ("dsl", "deputy_dsl")
NOTE_MAX = 3000
ADULT_AGE = PUPIL_LIFETIME_YEARS  # records are kept until the pupil is 25


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


def _refuse(
    s: AsyncSession, core: Core, c: Concern, who: Staff | None, label: str, action: str
) -> None:
    now = core.now()
    audit.record(
        s,
        at=now,
        actor=who or label,
        action=f"concern.{action}_refused",
        subject_type="concern",
        subject_id=c.reference,
    )
    if action == "view":
        add_event(s, c, now, "view_refused", who, label)
    log.warning("concern %s: %s refused for a user without the DSL role", c.reference, action)


# ---------------------------------------------------------------- view details


@dataclass
class Outcome:
    ok: bool
    text: str = ""
    message: Message | None = None  # the popup, or the refreshed alert
    reference: str = ""


async def details_facts(s: AsyncSession, core: Core, c: Concern) -> cn.DetailFacts:
    zone = core.policy.zone
    cat = core.policy.category(c.category)
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


async def view(core: Core, who: Staff | None, label: str, concern_id: str) -> Outcome:
    now = core.now()
    async with core.db.transaction() as s:
        c = await by_id(s, concern_id)
        if c is None:
            return Outcome(False, "That concern no longer exists.")
        if not may_see(who, c):
            _refuse(s, core, c, who, label, "view")
            return Outcome(False, cn.refused("see the details of"), reference=c.reference)
        add_event(s, c, now, "viewed", who, label)
        audit.record(
            s,
            at=now,
            actor=who,
            action="concern.view",
            subject_type="concern",
            subject_id=c.reference,
        )
        msg = cn.details(await details_facts(s, core, c), core.policy.zone)
    log.info("concern %s details viewed", c.reference)
    return Outcome(True, message=msg, reference=c.reference)


# ---------------------------------------------------------------- acknowledge, note, close


async def acknowledge(core: Core, who: Staff | None, label: str, concern_id: str) -> Outcome:
    now = core.now()
    async with core.db.transaction() as s:
        c = await by_id(s, concern_id)
        if c is None:
            return Outcome(False, "That concern no longer exists.")
        if who is None or not may_acknowledge(who, c, core.policy.head_teacher_email):
            _refuse(s, core, c, who, label, "ack")
            return Outcome(False, cn.refused("acknowledge"), reference=c.reference)
        claimed = (
            await rows_changed(
                s,
                update(Concern)
                .where(Concern.id == c.id, Concern.acknowledged_at.is_(None))
                .values(
                    acknowledged_at=now, acknowledged_by_id=who.id, acknowledged_by_label=who.name
                ),
            )
            == 1
        )
        await s.refresh(c)
        msg = cn.alert(await alert_facts(s, core.policy, c), core.policy.zone)
        if not claimed:
            return Outcome(
                True,
                f"{c.reference} was already acknowledged by {c.acknowledged_by_label}.",
                msg,
                c.reference,
            )
        minutes = int((now - c.filed_at).total_seconds() // 60)
        add_event(s, c, now, "acknowledged", who, label, detail=f"{minutes} min after filing")
        audit.record(
            s,
            at=now,
            actor=who,
            action="concern.ack",
            subject_type="concern",
            subject_id=c.reference,
            detail={"minutes": minutes},
        )
        await outbox.update_thread(s, now, thread_key(c.id), msg)
        if c.reporter_id is not None and c.reporter_id != who.id:
            outbox.to_staff(
                s, now, c.reporter_id, cn.acknowledged_for_reporter(c.reference, who.name)
            )
    log.info("concern %s acknowledged after %d min", c.reference, minutes)
    return Outcome(
        True,
        f"You acknowledged {c.reference}. Everyone who got the alert can see that you have it.",
        msg,
        c.reference,
    )


async def may_manage(
    core: Core, who: Staff | None, label: str, concern_id: str, action: str
) -> tuple[Concern | None, str]:
    """For the note and close buttons: the concern if ``who`` may manage it, else a refusal."""
    async with core.db.transaction() as s:
        c = await by_id(s, concern_id)
        if c is None:
            return None, "That concern no longer exists."
        if not may_see(who, c):
            _refuse(s, core, c, who, label, action)
            return None, cn.refused("manage")
        if c.status == "closed":
            return None, f"{c.reference} is closed."
        return c, ""


async def add_note(
    core: Core, who: Staff | None, label: str, concern_id: str, note: str, close: bool
) -> Outcome:
    now = core.now()
    async with core.db.transaction() as s:
        c = await by_id(s, concern_id)
        if c is None:
            return Outcome(False, "That concern no longer exists.")
        if not may_see(who, c):
            _refuse(s, core, c, who, label, "close" if close else "note")
            return Outcome(False, cn.refused("manage"))
        if c.status == "closed":
            return Outcome(False, f"{c.reference} is already closed.")
        if close:
            c.status, c.closed_at, c.outcome = "closed", now, note
            if c.acknowledged_at is None:
                c.acknowledged_at, c.acknowledged_by_label = now, who.name if who else label
                c.acknowledged_by_id = who.id if who else None
            add_event(s, c, now, "closed", who, label, note=note)
        else:
            add_event(s, c, now, "note", who, label, note=note)
        audit.record(
            s,
            at=now,
            actor=who,
            action="concern.close" if close else "concern.note",
            subject_type="concern",
            subject_id=c.reference,
        )
        await s.flush()
        msg = cn.alert(await alert_facts(s, core.policy, c), core.policy.zone)
        if close:
            await outbox.update_thread(s, now, thread_key(c.id), msg)
    done = "closed" if close else "noted"
    log.info("concern %s %s", c.reference, done)
    return Outcome(
        True,
        f"{c.reference}: {'closed with your outcome' if close else 'note added'}.",
        msg,
        c.reference,
    )


# ---------------------------------------------------------------- deliveries in the chronology


async def note_deliveries(core: Core, limit: int = 500) -> int:
    """Add a "delivered" event for each concern alert the platform has accepted (the outbox
    marks it delivered only once the platform returned a message id)."""
    async with core.db.transaction() as s:
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
            todo.append((row, c, where))
    done = 0
    for row, c, where in todo:
        try:
            async with core.db.transaction() as s:
                assert row.delivered_at is not None
                add_event(
                    s,
                    c,
                    row.delivered_at,
                    "delivered",
                    None,
                    "system",
                    detail=where,
                    outbox_id=row.id,
                )
            done += 1
        except IntegrityError:  # another replica noted it first
            continue
    return done


# ---------------------------------------------------------------- export


def retain_until(dob: date | None, review_years: int) -> date | None:
    """The pupil's 25th birthday plus the review period (29 February counts as 1 March)."""
    if dob is None:
        return None
    year = dob.year + ADULT_AGE + review_years
    if year > date.max.year:  # a nonsense birth date already stored: keep, never crash
        return date.max
    try:
        return dob.replace(year=year)
    except ValueError:
        return date(year, 3, 1)


async def concern_retention(s: AsyncSession, core: Core, c: Concern) -> date | None:
    pupil = await s.get(Pupil, c.pupil_id) if c.pupil_id else None
    return retain_until(pupil.date_of_birth if pupil else None, core.policy.retention_review_years)


@dataclass
class Export:
    ok: bool
    text: str  # the record, or why it was refused


async def export(core: Core, reference: str, as_email: str, destination: str) -> Export:
    await note_deliveries(core)
    now = core.now()
    async with core.db.transaction() as s:
        who = await staff_by_email(s, as_email)
        c = await by_reference(s, reference)
        if c is None:
            return Export(False, f"No concern with reference {reference[:30]!r}.")
        if not may_see(who, c):
            _refuse(s, core, c, who, as_email[:200], "export")
            return Export(
                False,
                "Only a DSL or deputy DSL on the roster can export a concern; "
                "this attempt has been recorded.",
            )
        add_event(s, c, now, "exported", who, as_email, detail=destination[:200])
        audit.record(
            s,
            at=now,
            actor=who,
            action="concern.export",
            subject_type="concern",
            subject_id=c.reference,
            detail={"destination": destination[:200]},
        )
        await s.flush()
        events = list(
            (
                await s.execute(
                    select(ConcernEvent)
                    .where(ConcernEvent.concern_id == c.id)
                    .order_by(ConcernEvent.at, ConcernEvent.id)
                )
            ).scalars()
        )
        keep = await concern_retention(s, core, c)
        keep_text = keep.isoformat() if keep else "no pupil date of birth on file: review by hand"
        assert who is not None
        record = cn.export_text(
            c,
            await details_facts(s, core, c),
            events,
            core.policy.zone,
            keep_text,
            who.name,
            now,
            core.policy.school_name,
        )
    log.info("concern %s exported", c.reference)
    return Export(True, record)


# ---------------------------------------------------------------- retention


NO_AS = "cli (no --as given)"  # the audit's actor when the CLI was not told who is acting


def _cli_refusal(
    s: AsyncSession, now: datetime, who: Staff | None, label: str, action: str, subject: str
) -> None:
    audit.record(
        s,
        at=now,
        actor=who or label,
        action=f"concern.{action}_refused",
        subject_type="concern",
        subject_id=subject,
    )
    log.warning("concern %s refused for a user without the DSL role", action)


async def set_hold(core: Core, reference: str, on: bool, as_email: str) -> str | None:
    """Place or lift the legal hold, as the DSL or deputy DSL named by ``as_email``; returns
    why not, or None when done. A refusal is audited too."""
    now = core.now()
    async with core.db.transaction() as s:
        who, label = await cli_actor(s, as_email, NO_AS)
        c = await by_reference(s, reference) if is_dsl(who) else None
        if not is_dsl(who) or (c is not None and not may_see(who, c)):
            _cli_refusal(s, now, who, label, "legal_hold", reference.strip().upper()[:30])
            return (
                "Only a DSL or deputy DSL on the roster can place or lift a legal hold; "
                "this attempt has been recorded."
            )
        if c is None:
            return f"No concern with reference {reference[:30]!r}."
        c.legal_hold = on
        add_event(s, c, now, "legal_hold_on" if on else "legal_hold_off", who, label)
        audit.record(
            s,
            at=now,
            actor=who,
            action="concern.legal_hold",
            subject_type="concern",
            subject_id=c.reference,
            detail={"on": on},
        )
    log.info("concern %s legal hold %s", c.reference, "on" if on else "off")
    return None


@dataclass
class PurgeReport:
    purged: list[str]
    held: list[str]  # past retention but on legal hold
    undated: list[str]  # no pupil date of birth: kept until reviewed by hand
    refused: str = ""  # why nothing was done, when the person is not a DSL


async def purge(core: Core, as_email: str, dry_run: bool = False) -> PurgeReport:
    """Delete concerns past their retention date and not on legal hold, with their chronology
    and alert rows, as the DSL or deputy DSL named by ``as_email``. Every run, dry or not,
    allowed or refused, is audited; so is each record deleted (reference only)."""
    now = core.now()
    today = core.local(now).date()
    report = PurgeReport([], [], [])
    async with core.db.transaction() as s:
        who, label = await cli_actor(s, as_email, NO_AS)
        if not is_dsl(who):
            _cli_refusal(s, now, who, label, "purge", "past retention")
            report.refused = (
                "Only a DSL or deputy DSL on the roster can purge concern records; "
                "this attempt has been recorded."
            )
            return report
        for c in (await s.execute(select(Concern).order_by(Concern.id))).scalars():
            keep = await concern_retention(s, core, c)
            if keep is None:
                report.undated.append(c.reference)
                continue
            if keep >= today:
                continue
            if c.legal_hold:
                report.held.append(c.reference)
                continue
            report.purged.append(c.reference)
            if dry_run:
                continue
            await s.execute(delete(ConcernEvent).where(ConcernEvent.concern_id == c.id))
            await s.execute(
                delete(OutboxMessage).where(OutboxMessage.thread_key == thread_key(c.id))
            )
            await s.execute(delete(Concern).where(Concern.id == c.id))
            audit.record(
                s,
                at=now,
                actor=who,
                action="concern.purge",
                subject_type="concern",
                subject_id=c.reference,
                detail={"retained_until": keep.isoformat()},
            )
        audit.record(
            s,
            at=now,
            actor=who,
            action="concern.purge_run",
            subject_type="concern",
            subject_id="past retention",
            detail={
                "dry_run": dry_run,
                "purged": len(report.purged),
                "held": len(report.held),
                "undated": len(report.undated),
            },
        )
    log.info(
        "concern purge%s: %d removed, %d on legal hold, %d without a retention date",
        " (dry run)" if dry_run else "",
        len(report.purged),
        len(report.held),
        len(report.undated),
    )
    return report
