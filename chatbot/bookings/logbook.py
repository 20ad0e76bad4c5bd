"""Reading Keeping in Touch logs: ``/calls log`` in chat and ``chatbot logs export`` (CSV).

A host reads the logs of their own calls; SLT, the DSL and deputy DSLs read everyone's. Every
read, in chat or from the CLI, is audited with who read, how, the filter and which calls were
shown (ids only), and so is a refused one.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, or_, select

from chatbot.bookings import notices
from chatbot.fields import FieldError, parse_date
from chatbot.roster.identity import cli_actor
from chatbot.storage.models import Booking, BookingPupil, CallLog, Concern, Pupil, Staff
from chatbot.ui import Context, Message, Section, esc
from chatbot.uow import Unit, Units

READ_ALL_ROLES = ("slt", "dsl", "deputy_dsl")
SHOWN_IN_CHAT = 20  # a chat message holds this many logs; more are exported from the CLI
SUMMARY_IN_CHAT = 600  # characters of a summary shown in chat (the export has it whole)
AUDITED_IDS = 200  # call ids named in one audit row
USAGE = (
    "Read Keeping in Touch logs with /calls log, optionally followed by one of: "
    "pupil NAME or UPN, class NAME, date YYYY-MM-DD, or from YYYY-MM-DD to YYYY-MM-DD."
)
NO_AS = "cli (no --as given)"  # the audit's actor when the CLI was not told who is acting
Via = Literal["chat", "cli"]


def may_read_all(staff: Staff | None) -> bool:
    return staff is not None and staff.active and staff.has_role(*READ_ALL_ROLES)


@dataclass(frozen=True)
class LogFilter:
    """Which logs: calls on ``start``..``end`` (school dates, both included), with one of
    ``pupil_ids``, or with a pupil in ``class_name``. None means any."""

    start: date | None = None
    end: date | None = None
    pupil_ids: tuple[int, ...] | None = None
    class_name: str | None = None

    def audit_detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.start:
            out["from"] = self.start.isoformat()
        if self.end:
            out["to"] = self.end.isoformat()
        if self.pupil_ids is not None:
            out["pupil_ids"] = list(self.pupil_ids)
        if self.class_name is not None:
            out["class"] = self.class_name[:50]
        return out


@dataclass
class LogEntry:
    booking: Booking
    log: CallLog
    host: Staff
    cohost: Staff | None
    concern_filed: bool  # the host filed a concern linked to the call


def day(text: str, label: str) -> date:
    """A date typed in chat or given to the CLI (raises FieldError with a plain message)."""
    return parse_date({"d": text}, "d", label)


async def pupils_matching(u: Unit, query: str) -> tuple[int, ...]:
    """Pupils (leavers too: their logs are still kept) by UPN or part of their name."""
    q = query.strip().lower()[:50]
    rows = await u.session.execute(
        select(Pupil.id).where(
            or_(
                func.lower(Pupil.forename + " " + Pupil.surname).like(f"%{q}%"),
                func.lower(Pupil.upn) == q,
            )
        )
    )
    return tuple(rows.scalars())


async def parse_filter(u: Unit, text: str) -> tuple[LogFilter | None, str]:
    """The words after ``/calls log`` as a filter, or (None, what is wrong)."""
    word, _, rest = text.strip().partition(" ")
    word, rest = word.lower(), rest.strip()
    try:
        if not word:
            return LogFilter(), ""
        if word == "pupil" and rest:
            ids = await pupils_matching(u, rest)
            if not ids:
                return None, f"No pupil on the roster matches {rest[:50]!r}."
            return LogFilter(pupil_ids=ids), ""
        if word == "class" and rest:
            return LogFilter(class_name=rest[:50]), ""
        if word == "date" and rest:
            on = day(rest, "The date")
            return LogFilter(on, on), ""
        if word == "from" and rest:
            first, *last = re.split(r"\s+to\s+", rest, maxsplit=1)
            start = day(first, "The first date")
            end = day(last[0], "The last date") if last else u.local(u.now).date()
            if end < start:
                return None, "The last date is before the first one."
            return LogFilter(start, end), ""
    except FieldError as e:
        return None, e.message
    return None, USAGE


def _bounds(zone: ZoneInfo, f: LogFilter) -> list[Any]:
    where: list[Any] = []
    if f.start is not None:
        where.append(Booking.starts_at >= datetime.combine(f.start, time(0), tzinfo=zone))
    if f.end is not None:
        after = f.end + timedelta(days=1)
        where.append(Booking.starts_at < datetime.combine(after, time(0), tzinfo=zone))
    if f.pupil_ids is not None:
        on_call = select(BookingPupil.booking_id).where(BookingPupil.pupil_id.in_(f.pupil_ids))
        where.append(Booking.id.in_(on_call))
    if f.class_name is not None:
        in_class = (
            select(BookingPupil.booking_id)
            .join(Pupil, Pupil.id == BookingPupil.pupil_id)
            .where(func.lower(Pupil.class_name) == f.class_name.strip().lower())
        )
        where.append(Booking.id.in_(in_class))
    return where


async def find(u: Unit, viewer: Staff, f: LogFilter, limit: int | None = None) -> list[LogEntry]:
    """The logs ``viewer`` may read that match ``f``, latest call first."""
    where = _bounds(u.zone, f)
    if not may_read_all(viewer):
        where.append(Booking.host_id == viewer.id)
    filed = exists().where(Concern.booking_id == Booking.id, Concern.reporter_id == Booking.host_id)
    q = (
        select(CallLog, Booking, filed)
        .join(Booking, Booking.id == CallLog.booking_id)
        .where(*where)
        .order_by(Booking.starts_at.desc(), Booking.id.desc())
    )
    rows = list((await u.session.execute(q.limit(limit) if limit else q)).all())
    if not rows:
        return []
    s = u.session
    staff_ids = {b.host_id for _, b, _ in rows} | {b.cohost_id for _, b, _ in rows if b.cohost_id}
    people = await s.execute(select(Staff).where(Staff.id.in_(staff_ids)))
    staff = {x.id: x for x in people.scalars()}
    return [
        LogEntry(b, log, staff[b.host_id], staff.get(b.cohost_id or 0), bool(was_filed))
        for log, b, was_filed in rows
    ]


def audit_read(
    u: Unit, viewer: Staff, via: Via, f: LogFilter, entries: list[LogEntry], destination: str = ""
) -> None:
    ids = [e.booking.id for e in entries]
    detail = {**f.audit_detail(), "count": len(ids), "bookings": ids[:AUDITED_IDS]}
    if destination:
        detail["destination"] = destination[:200]
    u.audit(viewer, "calllog.read", "call_log", via, detail)


# ---------------------------------------------------------------- showing them


def worry_text(e: LogEntry) -> str:
    if not e.log.worrying:
        return "no"
    return "yes, concern filed" if e.concern_filed else "yes, NO concern filed yet"


def cohost_text(e: LogEntry) -> str:
    if e.cohost is None:
        return "none"
    if e.log.cohost_present is None:
        return e.cohost.name
    return f"{e.cohost.name} ({'on the call' if e.log.cohost_present else 'NOT on the call'})"


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most].rstrip() + "… (cut short here)"


def chat_message(entries: list[LogEntry], zone: ZoneInfo, everyone: bool) -> Message:
    """Up to :data:`SHOWN_IN_CHAT` logs (``entries`` may hold one more, to say there are)."""
    whose = "Keeping in Touch logs" if everyone else "Keeping in Touch logs of your calls"
    if not entries:
        text = f"No {whose} match that."
        return Message(text, (Section(esc(text)),))
    shown = entries[:SHOWN_IN_CHAT]
    blocks: list[Section | Context] = [Section(f"**{whose}**, latest first")]
    for e in shown:
        b, log = e.booking, e.log
        blocks.append(
            Section(
                f"**{notices.when(b, zone)} · {notices.ref(b)}** · "
                f"{notices.KIND_LABEL.get(b.kind, b.kind)}\n"
                f"Host {esc(e.host.name)} · co-host {esc(cohost_text(e))}\n"
                f"Pupils {esc(notices.pupil_names(b))} ({esc(notices.classes(b))}) · "
                f"{log.actual_minutes} minutes · worrying: {worry_text(e)}\n"
                f"Attended: {esc(log.attended)}\n"
                f"{esc(_clip(log.summary, SUMMARY_IN_CHAT))}"
            )
        )
    more = len(entries) > SHOWN_IN_CHAT
    note = (
        f"Showing the latest {SHOWN_IN_CHAT}. Narrow it down (pupil, class or dates), or "
        "export them all with `chatbot logs export`."
        if more
        else "This reading is recorded in the audit trail."
    )
    blocks.append(Context((note,)))
    return Message(f"{len(shown)}{'+' if more else ''} {whose}.", tuple(blocks))


CSV_COLUMNS = (
    "call", "date", "start", "end", "type", "host", "co_host", "co_host_on_call", "pupils",
    "upns", "classes", "booked_minutes", "actual_minutes", "attended", "summary", "worrying",
    "concern_filed_by_host", "logged_at",
)  # fmt: skip
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """A CSV cell a spreadsheet will show as text: one that starts like a formula (``=``,
    ``+``, ``-``, ``@``, tab or CR) gets a leading ``'``, so it is never run."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def csv_text(entries: list[LogEntry], zone: ZoneInfo) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for e in entries:
        b, log = e.booking, e.log
        s, end = b.starts_at.astimezone(zone), b.ends_at.astimezone(zone)
        row: list[object] = [
            notices.ref(b),
            s.date().isoformat(),
            f"{s:%H:%M}",
            f"{end:%H:%M}",
            notices.KIND_LABEL.get(b.kind, b.kind),
            e.host.name,
            e.cohost.name if e.cohost else "",
            _yes_no(log.cohost_present),
            "; ".join(f"{bp.pupil.forename} {bp.pupil.surname}" for bp in b.pupils),
            "; ".join(bp.pupil.upn for bp in b.pupils),
            "; ".join(sorted({bp.pupil.class_name for bp in b.pupils if bp.pupil.class_name})),
            int((b.ends_at - b.starts_at).total_seconds() // 60),
            log.actual_minutes,
            log.attended,
            log.summary,
            _yes_no(log.worrying),
            _yes_no(e.concern_filed) if log.worrying else "",
            log.logged_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        ]
        w.writerow([cell(v) for v in row])
    return out.getvalue()


# ---------------------------------------------------------------- the CLI export


@dataclass
class Export:
    ok: bool
    text: str  # the CSV, or why not
    count: int = 0


async def export(
    units: Units, as_email: str, f: LogFilter, destination: str, pupil: str = ""
) -> Export:
    """The matching logs as CSV, for the member of staff named by ``as_email`` (their own
    calls, or every call for SLT and the DSL). Audited, refusals too."""
    async with units.write() as u:
        who, label = await cli_actor(u.session, as_email, NO_AS)
        if who is None or not who.active:
            u.audit(label, "calllog.read_refused", "call_log", "cli")
            return Export(
                False,
                "Only staff on the roster can read call logs (SLT and the DSL all of them, "
                "others their own calls); this attempt has been recorded.",
            )
        if pupil:
            f = replace(f, pupil_ids=await pupils_matching(u, pupil))
        entries = await find(u, who, f)
        audit_read(u, who, "cli", f, entries, destination)
        return Export(True, csv_text(entries, u.zone), len(entries))
