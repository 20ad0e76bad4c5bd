"""How long a concern is kept: until the pupil's 25th birthday plus the school's review
period, unless a legal hold says otherwise; and the purge that removes what is past it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, select

from chatbot.concerns.access import by_reference
from chatbot.concerns.filing import add_event, thread_key
from chatbot.storage.models import Concern, ConcernEvent, OutboxMessage, Pupil, Staff
from chatbot.uow import Unit, Units

log = logging.getLogger("chatbot.concerns")

ADULT_AGE = 25


def retain_until(dob: date | None, review_years: int) -> date | None:
    """The pupil's 25th birthday plus the review period (29 February counts as 1 March)."""
    if dob is None:
        return None
    year = dob.year + ADULT_AGE + review_years
    try:
        return dob.replace(year=year)
    except ValueError:
        return date(year, 3, 1)


async def concern_retention(u: Unit, c: Concern) -> date | None:
    pupil = await u.session.get(Pupil, c.pupil_id) if c.pupil_id else None
    return retain_until(pupil.date_of_birth if pupil else None, u.policy.retention_review_years)


async def set_hold(units: Units, reference: str, on: bool, actor: Staff | str) -> str | None:
    """Place or lift the legal hold; returns an error, or None when done."""
    async with units.write() as u:
        s, now = u.session, u.now
        c = await by_reference(s, reference)
        if c is None:
            return f"No concern with reference {reference[:30]!r}."
        c.legal_hold = on
        who = actor if isinstance(actor, Staff) else None
        add_event(
            s,
            c,
            now,
            "legal_hold_on" if on else "legal_hold_off",
            who,
            actor if isinstance(actor, str) else "",
        )
        u.audit(actor, "concern.legal_hold", "concern", c.reference, {"on": on})
    log.info("concern %s legal hold %s", c.reference, "on" if on else "off")
    return None


@dataclass
class PurgeReport:
    purged: list[str]
    held: list[str]  # past retention but on legal hold
    undated: list[str]  # no pupil date of birth: kept until reviewed by hand


async def purge(units: Units, dry_run: bool = False, actor: str = "cli") -> PurgeReport:
    """Delete concerns past their retention date and not on legal hold, with their chronology
    and alert rows. The audit trail keeps a row for each purge (reference only)."""
    report = PurgeReport([], [], [])
    async with units.write() as u:
        s = u.session
        today = u.local(u.now).date()
        for c in (await s.execute(select(Concern).order_by(Concern.id))).scalars():
            keep = await concern_retention(u, c)
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
            u.audit(
                actor, "concern.purge", "concern", c.reference, {"retained_until": keep.isoformat()}
            )
    log.info(
        "concern purge%s: %d removed, %d on legal hold, %d without a retention date",
        " (dry run)" if dry_run else "",
        len(report.purged),
        len(report.held),
        len(report.undated),
    )
    return report
