"""The school's live-video policy as settings the bot enforces.

The settings come from a TOML file named by the ``CHATBOT_POLICY`` environment variable; without
it the built-in defaults apply. ``chatbot/default_policy.toml`` spells out every default with
comments and is a good starting point for a school's own file.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

ENV_VAR = "CHATBOT_POLICY"
DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.toml")
STAGES = ("before", "start", "environment")
CALL_KINDS = ("group", "one_to_one")
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
BANK_HOLIDAY_REGIONS = {
    "england": "ENG",
    "wales": "WLS",
    "scotland": "SCT",
    "northern_ireland": "NIR",
}


class PolicyError(ValueError):
    """The policy file is unreadable or has a bad setting; the message names the key."""


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    label: str
    stage: str  # "before" | "start" | "environment"


@dataclass(frozen=True)
class ConcernCategory:
    key: str
    label: str


@dataclass(frozen=True)
class Term:
    start: date
    end: date  # inclusive


@dataclass(frozen=True)
class Contacts:
    school_phone: str = "0115 9892744"
    police_phone: str = "999"
    ceop_url: str = "https://www.ceop.police.uk/Safety-Centre/"
    out_of_hours: str = "When school is closed, contact SLT by their school email addresses."


DEFAULT_CHECKLIST: tuple[ChecklistItem, ...] = tuple(
    ChecklistItem(key, label, stage)
    for stage, key, label in (
        ("before", "invite_passcode", "Invitation emailed ahead of the call, with a passcode"),
        ("before", "waiting_room", "Waiting room switched on"),
        ("before", "video_on", "Video switched on for the host and for participants"),
        ("before", "parent_info", "Parent information emailed and written agreement on file"),
        ("start", "no_screen_share", "Participants cannot share their screen"),
        ("start", "no_rename", "Participants cannot change their own display name"),
        ("start", "admit_expected", "Only people you expect are let in from the waiting room"),
        ("start", "lock_meeting", "Meeting locked once everyone expected has joined"),
        (
            "environment",
            "clothing_background",
            "Everyone on camera suitably dressed; plain background with nothing harmful in view",
        ),
        ("environment", "not_bedroom", "Device set up in a suitable room, not a bedroom"),
        ("environment", "household_aware", "People at home know you are on a call with a pupil"),
        (
            "environment",
            "confidential_room",
            "Confidential talk only in a room with no other adults",
        ),
        (
            "environment",
            "professional_language",
            "Professional language throughout, from you and from anyone in the background",
        ),
    )
)

DEFAULT_CATEGORIES: tuple[ConcernCategory, ...] = tuple(
    ConcernCategory(key, label)
    for key, label in (
        ("discrimination", "Discrimination: unfair treatment of people for who they are"),
        ("drugs", "Drugs or other substance misuse"),
        ("extremism", "Extremism, terrorism or stirring up hatred"),
        ("malware_hacking", "Malware, hacking or getting round filters"),
        ("pornography", "Pornography or sexually explicit images"),
        ("piracy", "Piracy or copyright theft"),
        ("self_harm", "Self-harm, suicide or eating disorders"),
        ("violence", "Violence or encouraging people to hurt others"),
        ("online_abuse", "Online abuse, exploitation or bullying"),
        ("inappropriate_behaviour", "Inappropriate or disturbing behaviour, images or language"),
        ("staff_conduct", "A concern about a member of staff"),
        ("other", "Something else"),
    )
)


@functools.lru_cache(maxsize=64)
def _bank_holidays(subdiv: str, year: int) -> dict[date, str]:
    found = holidays.country_holidays("GB", subdiv=subdiv, years=year)
    return {day: str(name) for day, name in found.items()}


def _short_date(day: date) -> str:
    return f"{day.day} {MONTH_NAMES[day.month - 1]} {day.year}"


def _long_date(day: date) -> str:
    return f"{DAY_NAMES[day.weekday()]} {_short_date(day)}"


@dataclass(frozen=True)
class Policy:
    school_name: str = "Ash Lea School"
    timezone: str = "Europe/London"
    school_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # date.weekday() numbers
    day_start: time = time(9, 0)
    day_end: time = time(15, 0)
    bank_holidays: str | None = "england"
    terms: tuple[Term, ...] = ()  # when non-empty, only days inside a term are school days
    closures: tuple[date, ...] = ()  # extra closed days, such as INSET days
    max_call_minutes: int = 30
    min_call_minutes: int = 5
    calls_per_pupil_per_week: int = 1  # Monday..Sunday in the school's time zone
    min_notice_minutes: int = 60
    max_advance_days: int = 365  # how far ahead a call may be booked
    cohost_required_group: bool = True
    cohost_required_one_to_one: bool = True
    platforms: tuple[str, ...] = ("Zoom",)
    consent_required: bool = True
    cohost_answer_by_minutes: int = 30
    checklist_lead_minutes: int = 15
    log_nudge_after_minutes: int = 120
    log_report_after_minutes: int = 1440
    checklist: tuple[ChecklistItem, ...] = DEFAULT_CHECKLIST
    concern_categories: tuple[ConcernCategory, ...] = DEFAULT_CATEGORIES
    concern_ack_minutes: int = 10
    concern_urgent_ack_minutes: int = 2
    retention_review_years: int = 0
    head_teacher_email: str | None = None
    contacts: Contacts = field(default_factory=Contacts)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def closed_reason(self, day: date) -> str | None:
        """None on a school day, otherwise the reason the school is shut, in plain words."""
        if isinstance(day, datetime):
            day = day.date()
        if day.weekday() not in self.school_days:
            return f"{_long_date(day)} is not a school day"
        if self.bank_holidays is not None:
            name = _bank_holidays(BANK_HOLIDAY_REGIONS[self.bank_holidays], day.year).get(day)
            if name:
                return f"{_short_date(day)} is a bank holiday ({name})"
        if day in self.closures:
            return f"On {_long_date(day)} the school is closed (closure day)"
        if self.terms and not any(t.start <= day <= t.end for t in self.terms):
            return f"{_long_date(day)} is outside term time"
        return None

    def is_school_day(self, day: date) -> bool:
        return self.closed_reason(day) is None

    def hours_text(self) -> str:
        """For example "09:00 to 15:00, Monday to Friday"."""
        runs: list[list[int]] = []
        for d in sorted(self.school_days):
            if runs and runs[-1][-1] == d - 1:
                runs[-1].append(d)
            else:
                runs.append([d])
        words: list[str] = []
        for run in runs:
            if len(run) >= 3:
                words.append(f"{DAY_NAMES[run[0]]} to {DAY_NAMES[run[-1]]}")
            else:
                words.extend(DAY_NAMES[d] for d in run)
        when = ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)
        return f"{self.day_start:%H:%M} to {self.day_end:%H:%M}, {when or 'no days'}"

    def checklist_stage(self, stage: str) -> tuple[ChecklistItem, ...]:
        if stage not in STAGES:
            raise ValueError(f"unknown checklist stage {stage!r} (use one of {', '.join(STAGES)})")
        return tuple(item for item in self.checklist if item.stage == stage)

    def category(self, key: str) -> ConcernCategory | None:
        return next((c for c in self.concern_categories if c.key == key), None)

    def cohost_required(self, kind: str) -> bool:
        if kind not in CALL_KINDS:
            raise ValueError(f"unknown call kind {kind!r} (use 'group' or 'one_to_one')")
        return self.cohost_required_group if kind == "group" else self.cohost_required_one_to_one

    def to_toml(self) -> str:
        """The policy in force as TOML; load_policy reads it back to an equal Policy."""
        lines = ["# Live-video policy in force, written out by the bot"]
        for section, keys in _SPEC.items():
            lines += ["", f"[{section}]"]
            owner = self.contacts if section == "contacts" else self
            for key, (attr, kind) in keys.items():
                value = getattr(owner, attr)
                if value is not None or kind == "region":
                    lines.append(f"{key} = {_dump(kind, value)}")
        for array, fields in _ARRAYS.items():
            for entry in getattr(self, array):
                lines += ["", f"[[{array}]]"]
                lines += [f"{name} = {_quote(getattr(entry, name))}" for name in fields]
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- TOML layout

# section -> TOML key -> (attribute on Policy, or on Contacts for [contacts]; kind of value)
_SPEC: dict[str, dict[str, tuple[str, str]]] = {
    "school": {
        "name": ("school_name", "text"), "timezone": ("timezone", "zone"),
        "head_teacher_email": ("head_teacher_email", "email"),
    },
    "hours": {
        "days": ("school_days", "days"), "start": ("day_start", "time"), "end": ("day_end", "time"),
        "bank_holidays": ("bank_holidays", "region"), "closures": ("closures", "dates"),
        "terms": ("terms", "terms"),
    },
    "calls": {
        "max_minutes": ("max_call_minutes", "positive"),
        "min_minutes": ("min_call_minutes", "positive"),
        "per_pupil_per_week": ("calls_per_pupil_per_week", "positive"),
        "min_notice_minutes": ("min_notice_minutes", "positive"),
        "max_advance_days": ("max_advance_days", "positive"),
        "cohost_required_group": ("cohost_required_group", "bool"),
        "cohost_required_one_to_one": ("cohost_required_one_to_one", "bool"),
        "platforms": ("platforms", "names"), "consent_required": ("consent_required", "bool"),
        **{k: (k, "positive") for k in (
            "cohost_answer_by_minutes", "checklist_lead_minutes",
            "log_nudge_after_minutes", "log_report_after_minutes",
        )},
    },
    "concerns": {
        "ack_minutes": ("concern_ack_minutes", "positive"),
        "urgent_ack_minutes": ("concern_urgent_ack_minutes", "positive"),
        "retention_review_years": ("retention_review_years", "count"),
    },
    "contacts": {
        k: (k, "text") for k in ("school_phone", "police_phone", "ceop_url", "out_of_hours")
    },
}  # fmt: skip
_ARRAYS: dict[str, tuple[str, ...]] = {
    "checklist": ("key", "label", "stage"),
    "concern_categories": ("key", "label"),
}
_DAY_LOOKUP = {
    **{k: n for n, k in enumerate(DAY_KEYS)},
    **{d.lower(): n for n, d in enumerate(DAY_NAMES)},
}
_KEY_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})\Z")


def _quote(text: str) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m[0]):04x}", out) + '"'


def _dump(kind: str, value: Any) -> str:
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("positive", "count"):
        return str(value)
    if kind == "time":
        return f'"{value:%H:%M}"'
    if kind == "region":
        return _quote(value or "none")
    if kind == "days":
        return "[" + ", ".join(_quote(DAY_KEYS[d]) for d in sorted(value)) + "]"
    if kind in ("dates", "names"):
        return "[" + ", ".join(_quote(str(v)) for v in value) + "]"
    if kind == "terms":
        rows = [f'  {{start = "{t.start}", end = "{t.end}"}},\n' for t in value]
        return "[\n" + "".join(rows) + "]" if rows else "[]"
    return _quote(value)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | time):
        return value.isoformat()
    return "a table" if isinstance(value, dict) else repr(value)


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Reader:
    """Turns parsed TOML into a Policy, raising PolicyError that names the bad key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> NoReturn:
        raise PolicyError(f"policy file {self.source}: {where}: {message}")

    def table(self, where: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"expected a table, got {_show(value)}")
        for key in value:
            if key not in allowed:
                hint = _did_you_mean(key, list(allowed))
                if where == "[school]" and key == "phone":
                    hint = " (the school phone number goes in [contacts] as school_phone)"
                self.fail(f"{where} {key}", f"unknown setting{hint}")
        return value

    def text(self, where: str, value: Any) -> str:
        if not isinstance(value, str):
            self.fail(where, f"expected text in quotes, got {_show(value)}")
        if not value.strip():
            self.fail(where, "must not be empty")
        return value

    def items(self, where: str, value: Any, allow_empty: bool = False) -> list[Any]:
        if not isinstance(value, list):
            self.fail(where, f"expected a list in [ ], got {_show(value)}")
        if not value and not allow_empty:
            self.fail(where, "must list at least one entry")
        return value

    def day(self, where: str, value: Any) -> date:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(where, f"{_show(value)} is not a date (use YYYY-MM-DD)")

    def value(self, kind: str, where: str, value: Any) -> Any:
        if kind in ("positive", "count"):
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(where, f"expected a whole number, got {_show(value)}")
            least = 1 if kind == "positive" else 0
            if value < least:
                self.fail(where, f"must be at least {least}, got {value}")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                self.fail(where, f"expected true or false, got {_show(value)}")
            return value
        if kind == "time":
            if isinstance(value, time) and value.tzinfo is None and not value.second:
                return value.replace(microsecond=0)
            match = _TIME_RE.match(value) if isinstance(value, str) else None
            if not match or int(match[1]) > 23 or int(match[2]) > 59:
                self.fail(where, f"{_show(value)} is not a time of day (use HH:MM, 24-hour)")
            return time(int(match[1]), int(match[2]))
        if kind == "days":
            days = set()
            for name in self.items(where, value):
                day = _DAY_LOOKUP.get(self.text(where, name).strip().lower())
                if day is None:
                    hint = _did_you_mean(name.strip().lower(), list(DAY_KEYS))
                    self.fail(where, f"{name!r} is not a day of the week{hint}")
                days.add(day)
            return frozenset(days)
        if kind == "names":
            return tuple(self.text(where, name) for name in self.items(where, value))
        if kind == "dates":
            return tuple(sorted({self.day(where, d) for d in self.items(where, value, True)}))
        if kind == "terms":
            terms = []
            for n, raw in enumerate(self.items(where, value, allow_empty=True), 1):
                entry = self.table(f"{where} #{n}", raw, ("start", "end"))
                for key in ("start", "end"):
                    if key not in entry:
                        self.fail(f"{where} #{n} {key}", "is missing")
                term = Term(
                    self.day(f"{where} #{n} start", entry["start"]),
                    self.day(f"{where} #{n} end", entry["end"]),
                )
                if term.end < term.start:
                    self.fail(
                        f"{where} #{n} end", f"{term.end} is before the term starts ({term.start})"
                    )
                terms.append(term)
            return tuple(sorted(terms, key=lambda t: t.start))
        text = self.text(where, value)
        if kind == "zone":
            try:
                ZoneInfo(text)
            except (ZoneInfoNotFoundError, ValueError):
                self.fail(where, f"{text!r} is not a known time zone (e.g. 'Europe/London')")
        if kind == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
            self.fail(where, f"{text!r} is not an email address")
        if kind == "region":
            if text != "none" and text not in BANK_HOLIDAY_REGIONS:
                self.fail(
                    where, f"{text!r} is not one of {', '.join([*BANK_HOLIDAY_REGIONS, 'none'])}"
                )
            return None if text == "none" else text
        return text

    def array(self, name: str, raw: Any) -> list[dict[str, str]]:
        if not isinstance(raw, list):
            self.fail(f"[{name}]", f"write each entry under its own [[{name}]] heading")
        if not raw:
            self.fail(f"[[{name}]]", "must have at least one entry")
        seen: set[str] = set()
        out: list[dict[str, str]] = []
        for n, entry in enumerate(raw, 1):
            where = f"[[{name}]] #{n}"
            entry = self.table(where, entry, _ARRAYS[name])
            values: dict[str, str] = {}
            for key in _ARRAYS[name]:
                if key not in entry:
                    self.fail(f"{where} {key}", "is missing")
                values[key] = self.text(f"{where} {key}", entry[key])
            key = values["key"]
            if not _KEY_RE.match(key):
                self.fail(f"{where} key", f"{key!r} must be lower-case letters, digits and _")
            if key in seen:
                self.fail(f"{where} key", f"{key!r} is used more than once")
            if values.get("stage", STAGES[0]) not in STAGES:
                self.fail(
                    f"{where} stage", f"{values['stage']!r} is not one of {', '.join(STAGES)}"
                )
            seen.add(key)
            out.append(values)
        return out

    def policy(self, data: dict[str, Any]) -> Policy:
        for name in data:
            if name not in _SPEC and name not in _ARRAYS:
                self.fail(f"[{name}]", f"unknown section{_did_you_mean(name, [*_SPEC, *_ARRAYS])}")
        tables = {s: self.table(f"[{s}]", data.get(s, {}), tuple(_SPEC[s])) for s in _SPEC}
        kw: dict[str, Any] = {}
        contacts: dict[str, Any] = {}
        for section, keys in _SPEC.items():
            for key, value in tables[section].items():
                attr, kind = keys[key]
                target = contacts if section == "contacts" else kw
                target[attr] = self.value(kind, f"[{section}] {key}", value)
        if "checklist" in data:
            kw["checklist"] = tuple(
                ChecklistItem(**e) for e in self.array("checklist", data["checklist"])
            )
        if "concern_categories" in data:
            entries = self.array("concern_categories", data["concern_categories"])
            kw["concern_categories"] = tuple(ConcernCategory(**e) for e in entries)
        p = Policy(**kw, contacts=Contacts(**contacts))
        # Settings that must agree: (section, later key, earlier key, broken?, what is wrong).
        for section, later, earlier, broken, why in (
            (
                "hours", "end", "start", p.day_end <= p.day_start,
                f"the day must end after it starts (start {p.day_start:%H:%M}, "
                f"end {p.day_end:%H:%M})",
            ),
            (
                "calls", "max_minutes", "min_minutes", p.max_call_minutes < p.min_call_minutes,
                f"max_minutes ({p.max_call_minutes}) is less than "
                f"min_minutes ({p.min_call_minutes})",
            ),
            (
                "calls", "log_report_after_minutes", "log_nudge_after_minutes",
                p.log_report_after_minutes < p.log_nudge_after_minutes,
                "SLT must not be told about an unlogged call before the host is reminded",
            ),
            (
                "calls", "cohost_answer_by_minutes", "min_notice_minutes",
                p.cohost_answer_by_minutes >= p.min_notice_minutes,
                "the co-host's deadline must fall after the latest possible booking, so "
                "cohost_answer_by_minutes must be less than min_notice_minutes",
            ),
            (
                "concerns", "urgent_ack_minutes", "ack_minutes",
                p.concern_urgent_ack_minutes > p.concern_ack_minutes,
                "urgent concerns must not allow longer than ordinary ones",
            ),
        ):  # fmt: skip
            if broken:
                key = later if later in tables[section] else earlier
                self.fail(f"[{section}] {key}", why)
        return p


def policy_from_toml(text: str, source: str = "<text>") -> Policy:
    """Parse policy TOML text; error messages name ``source`` and the offending key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {source}: not valid TOML: {exc}") from exc
    return _Reader(source).policy(data)


def load_policy(path: str | os.PathLike[str] | None = None) -> Policy:
    """Load the policy file at ``path``; ``None`` gives the built-in defaults."""
    if path is None:
        return Policy()
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PolicyError(f"policy file {source}: cannot be read ({reason})") from exc
    return policy_from_toml(text, source)


def policy_from_env() -> Policy:
    """The policy named by the CHATBOT_POLICY environment variable, else the defaults."""
    return load_policy(os.environ.get(ENV_VAR) or None)
