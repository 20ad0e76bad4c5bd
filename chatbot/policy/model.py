"""The school's live-video policy as the settings the bot enforces, and what they imply.

Every value comes from the TOML files read by :mod:`chatbot.policy.loader`: the defaults live
only in ``default_policy.toml`` beside this module, and a school's own file overrides them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

# When each stage's items may be ticked: "before" and "environment" (the room and the people
# around you, set up ahead) from when the checklist is sent, "start" only once the call starts.
STAGES = ("before", "start", "environment")
SLT_NOTICES = ("channel", "email", "both")
CALL_KINDS = ("group", "one_to_one")
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# What happens to a pupil's booked calls when their parents withdraw consent.
ON_WITHDRAWAL = ("cancel", "hold")
# What happens when a host or co-host has no DBS check or out-of-date safeguarding training
# on the staff roster: SLT are told ("warn"), or the booking is refused ("refuse").
STAFF_CHECKS = ("warn", "refuse")
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
    school_phone: str
    police_phone: str
    ceop_url: str
    out_of_hours: str
    code_of_conduct_url: str | None  # optional: shown with the checklist's Code of Conduct item


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
    school_name: str
    timezone: str
    school_days: frozenset[int]  # date.weekday() numbers
    day_start: time
    day_end: time
    bank_holidays: str | None
    terms: tuple[Term, ...]  # when non-empty, only days inside a term are school days
    closures: tuple[date, ...]  # extra closed days, such as INSET days
    max_call_minutes: int
    min_call_minutes: int
    calls_per_pupil_per_week: int  # Monday..Sunday in the school's time zone
    min_notice_minutes: int
    max_advance_days: int  # how far ahead a call may be booked
    cohost_required_group: bool
    cohost_required_one_to_one: bool
    platforms: tuple[str, ...]
    consent_required: bool
    cohost_answer_by_minutes: int
    checklist_lead_minutes: int
    log_nudge_after_minutes: int
    log_report_after_minutes: int
    checklist_slt_after_minutes: int  # unticked checks this long after the start: tell SLT
    worry_reminder_after_minutes: int  # a log said "worrying" and no concern yet: remind host
    worry_dsl_after_minutes: int  # ... and still none this long after the log: tell the DSL
    checklist: tuple[ChecklistItem, ...]
    concern_categories: tuple[ConcernCategory, ...]
    concern_ack_minutes: int
    concern_urgent_ack_minutes: int
    concern_repeat_minutes: int  # after escalation, re-sent this often until acknowledged
    concern_urgent_repeat_minutes: int
    retention_review_years: int
    call_log_years: int  # Keeping in Touch logs are kept this long after the call
    checklist_years: int  # checklist ticks are kept this long after the call
    consent_years_after_withdrawal: int  # a withdrawn consent is kept this long after
    consent_on_withdrawal: str  # one of ON_WITHDRAWAL
    staff_checks_missing: str  # one of STAFF_CHECKS
    training_valid_months: int  # safeguarding training older than this is out of date
    zoom_cohost_absent_minutes: int  # the host is in the call and the co-host is not
    zoom_overrun_slt_minutes: int  # after the longest call allowed, before SLT are told
    zoom_fix_user_settings: bool  # may the bot change a host's Zoom account settings itself
    head_teacher_email: str | None  # optional: not in the default file
    contacts: Contacts
    slt_notices: str  # "channel" | "email" | "both": how SLT hear of calls
    family_reminders: tuple[str, ...]  # what families are asked to do, in every invitation

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

    def checklist_opens_at(self, item: ChecklistItem, starts_at: datetime) -> datetime:
        """When ``item`` may first be ticked, for a call starting at ``starts_at`` (see STAGES)."""
        if item.stage == "start":
            return starts_at
        return starts_at - timedelta(minutes=self.checklist_lead_minutes)

    def category(self, key: str) -> ConcernCategory | None:
        return next((c for c in self.concern_categories if c.key == key), None)

    def cohost_required(self, kind: str) -> bool:
        if kind not in CALL_KINDS:
            raise ValueError(f"unknown call kind {kind!r} (use 'group' or 'one_to_one')")
        return self.cohost_required_group if kind == "group" else self.cohost_required_one_to_one
