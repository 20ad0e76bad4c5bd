"""Turning submitted form values into typed values, with plain-English field errors."""

from __future__ import annotations

import re
from datetime import date, datetime, time

from chatbot.interaction import SubmittedValue, UserRef

DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")
TIME_RE = re.compile(r"^(\d{1,2})[:.](\d{2})$")
# No pupil is 25 or older (their records are kept until then), so nothing a person tells us
# about one happened longer ago than that: an earlier date is a slip (0001 for 2001, say).
PUPIL_LIFETIME_YEARS = 25
RECORD_ID = re.compile(r"[0-9]{1,10}")
# A day, or a day and time in ISO 8601 ("T" or a space between, seconds and an offset optional).
MOMENT_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?\Z"
)
MAX_RECORD_ID = 2**31 - 1  # the widest id an INTEGER primary key holds on PostgreSQL


class FieldError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def one(values: dict[str, SubmittedValue], key: str) -> str:
    v = values.get(key, "")
    if isinstance(v, list):
        v = v[0] if v else ""
    if isinstance(v, UserRef):
        return (v.email or "").strip()
    return str(v).strip()


def many(values: dict[str, SubmittedValue], key: str) -> list[str]:
    v = values.get(key, [])
    if isinstance(v, UserRef):
        v = [v]
    items = v if isinstance(v, list) else re.split(r"[,;\n]", v)
    out = [(x.email or "") if isinstance(x, UserRef) else str(x) for x in items]
    return [x.strip() for x in out if x.strip()]


def picked_email(values: dict[str, SubmittedValue], key: str, label: str) -> str:
    """The email of the colleague chosen in a staff picker ("" when none was chosen).

    Pickers that list the roster submit its emails; a platform's own user picker submits the
    person, whose email the router has asked the platform's directory for."""
    v = values.get(key, "")
    if isinstance(v, list):
        v = v[0] if v else ""
    if isinstance(v, UserRef):
        if not v.email:
            who = v.display_name[:60] or "That person"
            raise FieldError(
                key,
                f"{who} is not on the staff roster: {v.platform.title()} has no school email "
                f"address for them. Choose a colleague on the roster as {label}.",
            )
        return v.email.strip()
    return str(v).strip()


def text(
    values: dict[str, SubmittedValue], key: str, label: str, max_len: int, required: bool = True
) -> str:
    v = one(values, key)
    if required and not v:
        raise FieldError(key, f"{label} is required.")
    if len(v) > max_len:
        raise FieldError(
            key, f"{label} is too long ({len(v):,} characters); keep it under {max_len:,}."
        )
    return v


def parse_date(values: dict[str, SubmittedValue], key: str, label: str = "Date") -> date:
    v = one(values, key)
    if not v:
        raise FieldError(key, f"{label} is required.")
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(v, fmt).date()
        except ValueError:
            continue
    raise FieldError(key, f"{v[:40]!r} is not a date. Use YYYY-MM-DD, for example 2026-12-01.")


def parse_time(values: dict[str, SubmittedValue], key: str, label: str = "Time") -> time:
    v = one(values, key)
    if not v:
        raise FieldError(key, f"{label} is required.")
    m = TIME_RE.match(v)
    if m:
        h, mi = int(m.group(1)), int(m.group(2))
        if h < 24 and mi < 60:
            return time(h, mi)
    raise FieldError(key, f"{v[:40]!r} is not a time of day. Use 24-hour HH:MM, for example 10:30.")


def parse_moment(text: str) -> date | datetime:
    """A day (``2026-11-20``), or a day and time in ISO 8601 (``2026-11-20T18:03``,
    ``2026-11-20 18:03``, with seconds and an offset such as ``Z`` or ``+01:00`` if wanted).
    A datetime without an offset is naive: the caller puts it in the school's time zone. A day
    alone stays a date (it says nothing about the time). ValueError says what is wrong."""
    v = text.strip()
    if MOMENT_RE.match(v):
        try:
            return datetime.fromisoformat(v) if len(v) > 10 else date.fromisoformat(v)
        except ValueError:
            pass
    raise ValueError(
        f"{v[:40]!r} is not a date, or a date and time: use YYYY-MM-DD, 'YYYY-MM-DD HH:MM' or "
        "ISO 8601 such as 2026-11-20T18:03:00"
    )


def parse_int(values: dict[str, SubmittedValue], key: str, label: str, lo: int, hi: int) -> int:
    v = one(values, key)
    if not v:
        raise FieldError(key, f"{label} is required.")
    try:
        n = int(v)
    except ValueError:
        raise FieldError(key, f"{label} must be a whole number of minutes.") from None
    if not lo <= n <= hi:
        raise FieldError(key, f"{label} must be between {lo} and {hi}.")
    return n


def lifetime_start(today: date) -> date:
    """The earliest date anyone may give for something in a pupil's life (or their birth)."""
    year = today.year - PUPIL_LIFETIME_YEARS
    leap_day = (today.month, today.day) == (2, 29)
    return date(year, 3, 1) if leap_day else today.replace(year=year)


def too_long_ago(day: date, today: date, what: str) -> str | None:
    """A plain message if ``day`` is before :func:`lifetime_start`, else None."""
    if day >= lifetime_start(today):
        return None
    return f"{what} is more than {PUPIL_LIFETIME_YEARS} years ago; check the year."


def record_id(value: str) -> int | None:
    """A row id from outside (a button's value, a form's state), or None if it can't be one.

    Only ASCII digits in the range an id column holds: anything else ("9" * 5000, a number
    too wide for the database, "²") would make the look-up itself fail."""
    value = value.strip()
    if not RECORD_ID.fullmatch(value):
        return None
    n = int(value)
    return n if 1 <= n <= MAX_RECORD_ID else None
