"""How long call records are kept, and the purge that removes what is past it.

Keeping in Touch logs and checklist ticks are kept for the policy's years after the call, and
a parent's consent for its years after it was withdrawn (a consent that stands is never
purged). Records tied to a safeguarding matter are held: a call with a concern linked to it
that is still open or on legal hold, a call with a pupil whose concern is on legal hold, and
the consent of such a pupil. The bookings themselves and the audit trail (append-only) stay;
nothing else refers to the rows removed here. Every run is audited, dry or not, refused or
not, and so is each record removed (ids only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from chatbot.bookings.logbook import NO_AS, may_read_all
from chatbot.roster.identity import cli_actor
from chatbot.storage.models import Booking, BookingPupil, CallLog, ChecklistTick, Concern, Consent
from chatbot.uow import Unit, Units

log = logging.getLogger("chatbot.bookings.retention")

CHUNK = 500  # ids per DELETE, well inside every database's limit on bound values


def years_before(day: date, years: int) -> date:
    """The same day ``years`` earlier (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return date(day.year - years, 2, 28)


# A call is held while a concern linked to it is open or on legal hold, or while a concern
# about one of its pupils is on legal hold.
_CALL_HELD = or_(
    exists().where(
        Concern.booking_id == Booking.id,
        or_(Concern.legal_hold.is_(True), Concern.status == "open"),
    ),
    exists().where(
        BookingPupil.booking_id == Booking.id,
        Concern.pupil_id == BookingPupil.pupil_id,
        Concern.legal_hold.is_(True),
    ),
)
_CONSENT_HELD = exists().where(Concern.pupil_id == Consent.pupil_id, Concern.legal_hold.is_(True))


@dataclass
class Kind:
    """One kind of record: what is past retention, what of it is held."""

    due: list[int] = field(default_factory=list)  # removed (or would be, in a dry run)
    held: list[int] = field(default_factory=list)  # past retention, but held


@dataclass
class PurgeReport:
    logs: Kind = field(default_factory=Kind)  # booking ids
    ticks: Kind = field(default_factory=Kind)  # booking ids
    consents: Kind = field(default_factory=Kind)  # consent ids
    refused: str = ""


def _start_of(u: Unit, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=u.zone)


async def _sort(u: Unit, id_col: Any, held: Any, *where: Any) -> Kind:
    rows = await u.session.execute(select(id_col, held).where(*where).distinct())
    out = Kind()
    for row_id, is_held in sorted(rows.all()):
        (out.held if is_held else out.due).append(row_id)
    return out


async def _delete(u: Unit, column: InstrumentedAttribute[Any], ids: list[int]) -> None:
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        await u.session.execute(delete(column.class_).where(column.in_(chunk)))


async def purge(units: Units, as_email: str, dry_run: bool = False) -> PurgeReport:
    """Remove call logs, checklist ticks and withdrawn consents past retention and not held,
    as the SLT member, DSL or deputy DSL named by ``as_email``."""
    report = PurgeReport()
    async with units.write() as u:
        who, label = await cli_actor(u.session, as_email, NO_AS)
        if not may_read_all(who):
            u.audit(who or label, "records.purge_refused", "records", "past retention")
            report.refused = (
                "Only SLT, the DSL or a deputy DSL on the roster can purge call records; "
                "this attempt has been recorded."
            )
            return report
        p, today = u.policy, u.local(u.now).date()
        logs_before = _start_of(u, years_before(today, p.call_log_years))
        ticks_before = _start_of(u, years_before(today, p.checklist_years))
        consent_before = _start_of(u, years_before(today, p.consent_years_after_withdrawal))
        report.logs = await _sort(
            u,
            Booking.id,
            _CALL_HELD,
            Booking.id == CallLog.booking_id,
            Booking.starts_at < logs_before,
        )
        report.ticks = await _sort(
            u,
            Booking.id,
            _CALL_HELD,
            Booking.id == ChecklistTick.booking_id,
            Booking.starts_at < ticks_before,
        )
        report.consents = await _sort(
            u, Consent.id, _CONSENT_HELD, Consent.withdrawn_at < consent_before
        )
        if not dry_run:
            await _delete(u, CallLog.booking_id, report.logs.due)
            await _delete(u, ChecklistTick.booking_id, report.ticks.due)
            await _delete(u, Consent.id, report.consents.due)
            for action, kind in (
                ("calllog.purge", report.logs),
                ("checklist.purge", report.ticks),
            ):
                for booking_id in kind.due:
                    u.audit(who, action, "booking", booking_id)
            for consent_id in report.consents.due:
                u.audit(who, "consent.purge", "consent", consent_id)
        u.audit(
            who,
            "records.purge_run",
            "records",
            "past retention",
            {
                "dry_run": dry_run,
                **{
                    f"{name}_{part}": len(getattr(kind, part))
                    for name, kind in (
                        ("logs", report.logs),
                        ("ticks", report.ticks),
                        ("consents", report.consents),
                    )
                    for part in ("due", "held")
                },
            },
        )
    log.info(
        "records purge%s: %d logs, %d checklists, %d consents removed; %d held",
        " (dry run)" if dry_run else "",
        len(report.logs.due),
        len(report.ticks.due),
        len(report.consents.due),
        len(report.logs.held) + len(report.ticks.held) + len(report.consents.held),
    )
    return report
