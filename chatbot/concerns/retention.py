"""How long a concern is kept: until the pupil's 25th birthday plus the school's review
period, unless a legal hold says otherwise; and the purge that removes what is past it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, select

from chatbot.concerns.access import by_reference, is_dsl, may_see
from chatbot.concerns.filing import chronology_entry, thread_key
from chatbot.fields import PUPIL_LIFETIME_YEARS
from chatbot.roster.identity import cli_actor
from chatbot.storage.models import Concern, ConcernEvent, OutboxMessage, Pupil, Staff
from chatbot.uow import Unit, Units

log = logging.getLogger("chatbot.concerns")

ADULT_AGE = PUPIL_LIFETIME_YEARS  # records are kept until the pupil is 25
NO_AS = "cli (no --as given)"  # the audit's actor when the CLI was not told who is acting


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


async def concern_retention(u: Unit, c: Concern) -> date | None:
    pupil = await u.session.get(Pupil, c.pupil_id) if c.pupil_id else None
    return retain_until(pupil.date_of_birth if pupil else None, u.policy.retention_review_years)


def _cli_refusal(u: Unit, who: Staff | None, label: str, action: str, subject: str) -> None:
    u.audit(who or label, f"concern.{action}_refused", "concern", subject)
    log.warning("concern %s refused for a user without the DSL role", action)


async def set_hold(units: Units, reference: str, on: bool, as_email: str) -> str | None:
    """Place or lift the legal hold, as the DSL or deputy DSL named by ``as_email``; returns
    why not, or None when done. A refusal is audited too."""
    async with units.write() as u:
        s, now = u.session, u.now
        who, label = await cli_actor(s, as_email, NO_AS)
        c = await by_reference(s, reference) if is_dsl(who) else None
        if not is_dsl(who) or (c is not None and not may_see(who, c, u.policy.head_teacher_email)):
            _cli_refusal(u, who, label, "legal_hold", reference.strip().upper()[:30])
            return (
                "Only a DSL or deputy DSL on the roster can place or lift a legal hold; "
                "this attempt has been recorded."
            )
        if c is None:
            return f"No concern with reference {reference[:30]!r}."
        c.legal_hold = on
        s.add(chronology_entry(c, now, "legal_hold_on" if on else "legal_hold_off", who, label))
        u.audit(who, "concern.legal_hold", "concern", c.reference, {"on": on})
    log.info("concern %s legal hold %s", c.reference, "on" if on else "off")
    return None


@dataclass
class PurgeReport:
    purged: list[str]
    held: list[str]  # past retention but on legal hold
    undated: list[str]  # no pupil date of birth: kept until reviewed by hand
    refused: str = ""  # why nothing was done, when the person is not a DSL


async def purge(units: Units, as_email: str, dry_run: bool = False) -> PurgeReport:
    """Delete concerns past their retention date and not on legal hold, with their chronology
    and alert rows, as the DSL or deputy DSL named by ``as_email``. Every run, dry or not,
    allowed or refused, is audited; so is each record deleted (reference only)."""
    report = PurgeReport([], [], [])
    async with units.write() as u:
        s = u.session
        today = u.local(u.now).date()
        who, label = await cli_actor(s, as_email, NO_AS)
        if not is_dsl(who):
            _cli_refusal(u, who, label, "purge", "past retention")
            report.refused = (
                "Only a DSL or deputy DSL on the roster can purge concern records; "
                "this attempt has been recorded."
            )
            return report
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
                who, "concern.purge", "concern", c.reference, {"retained_until": keep.isoformat()}
            )
        u.audit(
            who,
            "concern.purge_run",
            "concern",
            "past retention",
            {
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
