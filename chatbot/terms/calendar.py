"""The school calendar the office imports (``chatbot policy terms import``), as the booking
rules see it.

Term dates change every year and are published by councils and schools as iCalendar feeds or
spreadsheets, so they are data the office keeps up to date, not policy: they live in the
database (``school_calendar``), where every replica sees an import at once and no restart is
needed, and each import is audited. The policy file's own ``[hours] terms`` and ``closures``
still apply as well: a day must pass both.
"""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import bindparam, delete, func, or_, select

from chatbot.policy.model import DAY_NAMES, MONTH_NAMES
from chatbot.storage.db import rows_changed
from chatbot.storage.models import CalendarEntry
from chatbot.terms.reading import Entry
from chatbot.uow import Unit, Units

log = logging.getLogger("chatbot.terms")

KINDS = ("term", "holiday", "inset")
NO_TERMS_WARNING = (
    "NO TERM DATES ARE SET: calls can be booked in school holidays. Import the school's term "
    "dates with `chatbot policy terms import FILE.ics` (or a CSV), or set [hours] terms in "
    "the policy file."
)


def _long(day: date) -> str:
    return f"{DAY_NAMES[day.weekday()]} {day.day} {MONTH_NAMES[day.month - 1]} {day.year}"


# Every term, and whatever else covers the day; built once (every booking runs it).
_COVERING = (
    select(CalendarEntry)
    .where(
        or_(
            CalendarEntry.kind == "term",
            (CalendarEntry.starts_on <= bindparam("day"))
            & (CalendarEntry.ends_on >= bindparam("day")),
        )
    )
    .order_by(CalendarEntry.starts_on, CalendarEntry.id)
)


async def closed_reason(u: Unit, day: date) -> str | None:
    """Why the imported calendar closes ``day`` (a named holiday or INSET day, or a day
    outside every imported term), or None if it is open."""
    rows = list((await u.session.execute(_COVERING, {"day": day})).scalars())
    for e in rows:
        if e.kind == "inset" and e.starts_on <= day <= e.ends_on:
            return f"{_long(day)} is an INSET day, when the school is closed to pupils ({e.name})"
    for e in rows:
        if e.kind == "holiday" and e.starts_on <= day <= e.ends_on:
            return f"{_long(day)} is in a school holiday ({e.name})"
    terms = [e for e in rows if e.kind == "term"]
    if not terms or any(t.starts_on <= day <= t.ends_on for t in terms):
        return None
    before = [t for t in terms if t.ends_on < day]
    after = [t for t in terms if t.starts_on > day]
    if before and after:
        last = max(before, key=lambda t: t.ends_on)
        return f"{_long(day)} is in the school holiday between {last.name} and {after[0].name}"
    if before:
        last = max(before, key=lambda t: t.ends_on)
        return (
            f"{_long(day)} is after the last term in the school calendar ({last.name} ends "
            f"{_long(last.ends_on)}); import the next year's term dates"
        )
    return f"{_long(day)} is before the first term in the school calendar ({after[0].name})"


async def has_term_dates(units: Units) -> bool:
    """Are any term dates set, in the policy file or imported?"""
    if units.policy.terms:
        return True
    async with units.read() as u:
        count = await u.session.execute(
            select(func.count()).select_from(CalendarEntry).where(CalendarEntry.kind == "term")
        )
        return int(count.scalar_one()) > 0


async def warn_if_no_term_dates(units: Units) -> bool:
    """Log a loud warning at start-up when no term dates are set; True if it warned."""
    if await has_term_dates(units):
        return False
    log.warning(NO_TERMS_WARNING)
    return True


async def replace_from(
    u: Unit, source: str, entries: list[Entry], actor: str, everything: bool = False
) -> int:
    """Store ``entries`` in place of those imported before from a file of the same name
    (``everything``: in place of the whole imported calendar). Returns how many were removed."""
    stmt = delete(CalendarEntry)
    if not everything:
        stmt = stmt.where(CalendarEntry.source == source)
    removed = await rows_changed(u.session, stmt)
    u.session.add_all(
        CalendarEntry(
            kind=e.kind,
            name=e.name,
            starts_on=e.start,
            ends_on=e.end,
            source=source,
            imported_at=u.now,
        )
        for e in entries
    )
    counts = {k: sum(1 for e in entries if e.kind == k) for k in KINDS}
    u.audit(actor, "calendar.import", "calendar", source[:50], {**counts, "removed": removed})
    return removed


async def listing(u: Unit) -> list[CalendarEntry]:
    rows = await u.session.execute(
        select(CalendarEntry).order_by(CalendarEntry.starts_on, CalendarEntry.id)
    )
    return list(rows.scalars())
