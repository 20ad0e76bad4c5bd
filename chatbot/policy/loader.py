"""Reading the school's policy TOML into a :class:`~chatbot.policy.model.Policy`.

``default_policy.toml`` beside this module holds every default, with comments, and is the
starting point for a school's own file (``CHATBOT_POLICY``). A school's file only needs the
settings it changes: each section it names overrides the defaults key by key, and a
``[[checklist]]`` or ``[[concern_categories]]`` list replaces the default list whole. Any
mistake stops start-up with a :class:`PolicyError` that names the file and the key.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatbot.policy.model import (
    BANK_HOLIDAY_REGIONS,
    DAY_KEYS,
    DAY_NAMES,
    ON_WITHDRAWAL,
    SLT_NOTICES,
    STAFF_CHECKS,
    STAGES,
    ChecklistItem,
    ConcernCategory,
    Contacts,
    Policy,
    PolicyError,
    Term,
)

ENV_VAR = "CHATBOT_POLICY"
DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.toml")
# Settings a school may leave out altogether (the defaults file does not set them).
OPTIONAL = {"head_teacher_email": None}
OPTIONAL_CONTACTS = {"code_of_conduct_url": None}

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
            "checklist_slt_after_minutes", "worry_reminder_after_minutes",
            "worry_dsl_after_minutes",
        )},
    },
    "concerns": {
        "ack_minutes": ("concern_ack_minutes", "positive"),
        "urgent_ack_minutes": ("concern_urgent_ack_minutes", "positive"),
        "repeat_minutes": ("concern_repeat_minutes", "positive"),
        "urgent_repeat_minutes": ("concern_urgent_repeat_minutes", "positive"),
        "retention_review_years": ("retention_review_years", "count"),
    },
    "consent": {"on_withdrawal": ("consent_on_withdrawal", "choice")},
    "staff": {
        "checks_missing": ("staff_checks_missing", "choice"),
        "training_valid_months": ("training_valid_months", "positive"),
    },
    "contacts": {
        **{k: (k, "text") for k in ("school_phone", "police_phone", "ceop_url", "out_of_hours")},
        "code_of_conduct_url": ("code_of_conduct_url", "url"),
    },
    "retention": {
        "call_logs_years": ("call_log_years", "positive"),
        "checklist_years": ("checklist_years", "positive"),
        "consent_years_after_withdrawal": ("consent_years_after_withdrawal", "positive"),
    },
    "email": {
        "slt_notices": ("slt_notices", "slt_notices"),
        "family_reminders": ("family_reminders", "names"),
    },
    "zoom": {
        "cohost_absent_minutes": ("zoom_cohost_absent_minutes", "positive"),
        "overrun_slt_after_minutes": ("zoom_overrun_slt_minutes", "count"),
        "fix_user_settings": ("zoom_fix_user_settings", "bool"),
    },
}  # fmt: skip
# The values a "choice" setting may take, by the Policy attribute it sets.
_CHOICES: dict[str, tuple[str, ...]] = {
    "consent_on_withdrawal": ON_WITHDRAWAL,
    "staff_checks_missing": STAFF_CHECKS,
}
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
_URL_RE = re.compile(r"https?://[^\s<>\"'`]+\Z")


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

    def choice(self, where: str, value: Any, allowed: tuple[str, ...]) -> str:
        text = self.text(where, value)
        if text not in allowed:
            hint = _did_you_mean(text, list(allowed))
            self.fail(where, f"{text!r} is not one of {', '.join(allowed)}{hint}")
        return text

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
        if kind == "url" and not _URL_RE.match(text):
            self.fail(where, f"{text!r} is not a web address (it starts with https://)")
        if kind == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
            self.fail(where, f"{text!r} is not an email address")
        if kind == "slt_notices" and text not in SLT_NOTICES:
            self.fail(where, f"{text!r} is not one of {', '.join(SLT_NOTICES)}")
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

    def settings(self, data: dict[str, Any]) -> dict[str, Any]:
        """The Policy fields this file sets (``contacts`` as a dict of its own fields)."""
        for name in data:
            if name not in _SPEC and name not in _ARRAYS:
                self.fail(f"[{name}]", f"unknown section{_did_you_mean(name, [*_SPEC, *_ARRAYS])}")
        kw: dict[str, Any] = {"contacts": {}}
        for section, keys in _SPEC.items():
            table = self.table(f"[{section}]", data.get(section, {}), tuple(keys))
            for key, value in table.items():
                attr, kind = keys[key]
                target = kw["contacts"] if section == "contacts" else kw
                where = f"[{section}] {key}"
                if kind == "choice":
                    target[attr] = self.choice(where, value, _CHOICES[attr])
                else:
                    target[attr] = self.value(kind, where, value)
        if "checklist" in data:
            kw["checklist"] = tuple(
                ChecklistItem(**e) for e in self.array("checklist", data["checklist"])
            )
        if "concern_categories" in data:
            entries = self.array("concern_categories", data["concern_categories"])
            kw["concern_categories"] = tuple(ConcernCategory(**e) for e in entries)
        return kw

    def policy(self, defaults: dict[str, Any], kw: dict[str, Any]) -> Policy:
        """The defaults overridden by this file's settings, checked for agreement."""
        merged = {**OPTIONAL, **defaults, **kw}
        merged["contacts"] = Contacts(
            **{**OPTIONAL_CONTACTS, **defaults["contacts"], **kw["contacts"]}
        )
        try:
            p = Policy(**merged)
        except TypeError as exc:  # only the defaults file can lack a setting
            self.fail("the defaults", f"a setting is missing ({exc})")
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
                "calls", "worry_dsl_after_minutes", "worry_reminder_after_minutes",
                p.worry_dsl_after_minutes < p.worry_reminder_after_minutes,
                "the DSL must not be told about a worry with no concern before the host is "
                "reminded",
            ),
            (
                "concerns", "urgent_ack_minutes", "ack_minutes",
                p.concern_urgent_ack_minutes > p.concern_ack_minutes,
                "urgent concerns must not allow longer than ordinary ones",
            ),
            (
                "concerns", "urgent_repeat_minutes", "repeat_minutes",
                p.concern_urgent_repeat_minutes > p.concern_repeat_minutes,
                "urgent concerns must not be re-sent less often than ordinary ones",
            ),
        ):  # fmt: skip
            if broken:
                attr_later = _SPEC[section][later][0]
                key = later if attr_later in kw else earlier
                self.fail(f"[{section}] {key}", why)
        return p


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {source}: not valid TOML: {exc}") from exc


@functools.lru_cache(maxsize=1)
def _default_settings() -> dict[str, Any]:
    source = os.fspath(DEFAULT_POLICY_FILE)
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    return _Reader(source).settings(_parse(text, source))


def policy_from_toml(text: str, source: str = "<text>") -> Policy:
    """Parse policy TOML text over the defaults; errors name ``source`` and the key."""
    reader = _Reader(source)
    return reader.policy(_default_settings(), reader.settings(_parse(text, source)))


@functools.lru_cache(maxsize=1)
def default_policy() -> Policy:
    """The policy of ``default_policy.toml`` alone."""
    return _Reader(os.fspath(DEFAULT_POLICY_FILE)).policy(_default_settings(), {"contacts": {}})


def load_policy(path: str | os.PathLike[str] | None = None) -> Policy:
    """Load the policy file at ``path``; ``None`` gives the defaults."""
    if path is None:
        return default_policy()
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


def to_toml(p: Policy) -> str:
    """The policy in force as TOML; :func:`load_policy` reads it back to an equal Policy."""
    lines = ["# Live-video policy in force, written out by the bot"]
    for section, keys in _SPEC.items():
        lines += ["", f"[{section}]"]
        owner = p.contacts if section == "contacts" else p
        for key, (attr, kind) in keys.items():
            value = getattr(owner, attr)
            if value is not None or kind == "region":
                lines.append(f"{key} = {_dump(kind, value)}")
    for array, fields in _ARRAYS.items():
        for entry in getattr(p, array):
            lines += ["", f"[[{array}]]"]
            lines += [f"{name} = {_quote(getattr(entry, name))}" for name in fields]
    return "\n".join(lines) + "\n"
