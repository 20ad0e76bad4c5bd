"""Term dates from the files schools and councils publish: iCalendar (.ics) or CSV.

Each event or row becomes a term, a named holiday or an INSET day, judged by its kind column
(CSV) or by the words in its name ("Autumn term 1", "Christmas holiday", "Half term",
"INSET day"). Feeds that mark terms with one-day events ("Autumn term starts", "Autumn term
ends") have each start paired with the next end. Events that are none of these (parents'
evenings, sports day) are left out and reported, as are rows that can't be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from chatbot.csvfile import header_key, read_rows
from chatbot.fields import DATE_FORMATS

NAME_MAX = 200
MAX_DAYS = 400  # no term or holiday is longer than a school year: longer is a mistake

_INSET = re.compile(
    r"\binset\b|training day|staff development|teacher day|\bpd day|professional development"
    r"|non[- ]pupil day|closed to pupils",
    re.I,
)
_HOLIDAY = re.compile(r"holiday|half[- ]?term|\bbreak\b|vacation|\bclosed\b|closure", re.I)
_TERM = re.compile(r"\bterm\b", re.I)
_STARTS = re.compile(r"\s*[-:]?\s*\b(starts?|begins?|opens?|first day( of)?)\b\s*", re.I)
_ENDS = re.compile(r"\s*[-:]?\s*\b(ends?|finish(es)?|closes|last day( of)?)\b\s*", re.I)
KIND_WORDS = {
    "term": "term",
    "holiday": "holiday",
    "holidays": "holiday",
    "half term": "holiday",
    "closure": "holiday",
    "inset": "inset",
    "inset day": "inset",
    "training day": "inset",
}
CSV_HEADERS = {
    "name": ("name", "summary", "title", "event", "description"),
    "start": ("start", "start date", "starts", "from", "first day", "date"),
    "end": ("end", "end date", "ends", "to", "last day"),
    "kind": ("kind", "type", "category"),
}


class CalendarFileError(ValueError):
    """The file as a whole can't be read as term dates."""


@dataclass(frozen=True)
class Entry:
    kind: str  # "term" | "holiday" | "inset"
    name: str
    start: date
    end: date  # inclusive


@dataclass
class Read:
    entries: list[Entry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (which, why)


def kind_of(name: str) -> str | None:
    if _INSET.search(name):
        return "inset"
    if _HOLIDAY.search(name):
        return "holiday"
    if _TERM.search(name):
        return "term"
    return None


def _entry(kind: str, name: str, start: date, end: date) -> Entry:
    if end < start:
        raise ValueError(f"it ends ({end}) before it starts ({start})")
    if (end - start).days > MAX_DAYS:
        raise ValueError(f"it runs for more than {MAX_DAYS} days ({start} to {end})")
    return Entry(kind, name, start, end)


def _clean(name: str) -> str:
    return " ".join(name.split())[:NAME_MAX]


def _pair_markers(markers: list[tuple[date, str, str]], out: Read) -> None:
    """One-day "X term starts" / "X term ends" events as terms: each start with the next end."""
    start: tuple[date, str] | None = None
    for day, edge, name in sorted(markers, key=lambda m: (m[0], m[1] == "start")):
        if edge == "start":
            if start is not None:
                out.skipped.append((start[1], "a term start with no end after it"))
            start = (day, name)
        elif start is None:
            out.skipped.append((name, "a term end with no start before it"))
        else:
            term = _STARTS.sub(" ", start[1]).strip() or "Term"
            out.entries.append(_entry("term", _clean(term), start[0], day))
            start = None
    if start is not None:
        out.skipped.append((start[1], "a term start with no end after it"))


def _marker(name: str) -> str | None:
    if not _TERM.search(name) or _HOLIDAY.search(name):
        return None
    if _STARTS.search(name):
        return "start"
    if _ENDS.search(name):
        return "end"
    return None


def _day(value: date | datetime, zone: ZoneInfo) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(zone) if value.tzinfo else value).date()
    return value


def read_ics(data: bytes, zone: ZoneInfo) -> Read:
    """Terms, holidays and INSET days from an iCalendar file (all-day events end the day
    before their DTEND, as RFC 5545 says)."""
    import icalendar

    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise CalendarFileError(f"not an iCalendar file ({str(exc)[:120]})") from None
    out = Read()
    markers: list[tuple[date, str, str]] = []
    for event in cal.walk("VEVENT"):
        name = _clean(str(event.get("SUMMARY", "")))
        label = name or "(an event with no name)"
        try:
            if "DTSTART" not in event:
                raise ValueError("it has no start date")
            raw_start = event.decoded("DTSTART")
            start = _day(raw_start, zone)
            if "DTEND" in event:
                raw_end = event.decoded("DTEND")
                end = _day(raw_end, zone)
                if not isinstance(raw_end, datetime) or raw_end.time() == datetime.min.time():
                    end -= timedelta(days=1)  # DTEND is exclusive
                end = max(end, start)
            elif "DURATION" in event:
                end = max(start, _day(raw_start + event.decoded("DURATION"), zone) - timedelta(1))
            else:
                end = start
            edge = _marker(name)
            if edge is not None and start == end:
                markers.append((start, edge, name))
                continue
            kind = kind_of(name)
            if kind is None:
                out.skipped.append((label, "not a term, holiday or INSET day"))
                continue
            out.entries.append(_entry(kind, name, start, end))
        except (ValueError, TypeError) as exc:
            out.skipped.append((label, str(exc)[:200]))
    _pair_markers(markers, out)
    if not out.entries:
        raise CalendarFileError("it has no terms, holidays or INSET days")
    return out


def _date_cell(value: str, what: str) -> date:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{what} {value.strip()[:40]!r} is not a date (use YYYY-MM-DD or DD/MM/YYYY)")


def read_csv(text: str) -> Read:
    """Terms, holidays and INSET days from a CSV: name, start, end (optional for one day)
    and kind (optional: judged from the name); comma, semicolon or tab separated."""
    header, rows = read_rows(text, CalendarFileError)
    norm = [header_key(h) for h in header]
    cols: dict[str, int] = {}
    for key, aliases in CSV_HEADERS.items():
        for alias in aliases:
            if alias in norm:
                cols[key] = norm.index(alias)
                break
    missing = [k for k in ("name", "start") if k not in cols]
    if missing:
        raise CalendarFileError(
            f"the file has no column for {', '.join(missing)} "
            f"(columns found: {', '.join(h for h in header if h) or 'none'})"
        )

    def cell(row: list[str], key: str) -> str:
        i = cols.get(key)
        return row[i].strip() if i is not None and i < len(row) else ""

    out = Read()
    for line, row in rows:
        try:
            name = _clean(cell(row, "name"))
            if not name:
                raise ValueError("it has no name")
            start = _date_cell(cell(row, "start"), "start")
            end = _date_cell(cell(row, "end"), "end") if cell(row, "end") else start
            given = " ".join(cell(row, "kind").lower().replace("_", " ").split())
            kind = KIND_WORDS.get(given) if given else kind_of(name)
            if kind is None:
                raise ValueError(
                    f"kind {given[:30]!r} is not term, holiday or inset"
                    if given
                    else "its name doesn't say term, holiday or INSET; add a kind column"
                )
            out.entries.append(_entry(kind, name, start, end))
        except ValueError as exc:
            out.skipped.append((f"line {line}", str(exc)))
    if not out.entries:
        raise CalendarFileError("it has no terms, holidays or INSET days that can be read")
    return out


def read_file(name: str, data: bytes, zone: ZoneInfo) -> Read:
    """An .ics (by its name or its first line) or otherwise a CSV."""
    if name.lower().endswith((".ics", ".ical", ".ifb")) or data.lstrip().startswith(
        b"BEGIN:VCALENDAR"
    ):
        return read_ics(data, zone)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CalendarFileError("it is neither an iCalendar file nor a UTF-8 CSV") from None
    return read_csv(text)
