"""The live-video policy's booking rules, as pure functions.

``check_booking`` takes a proposed booking plus the facts the rules need (looked up by the
booking service) and returns every violation at once, each tied to the form field it concerns
and to the policy clause it enforces. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from chatbot.policy import Policy


@dataclass(frozen=True)
class Violation:
    rule: str  # stable id, e.g. "school_hours"
    field: str  # booking form field id
    message: str  # plain English, shown to the member of staff
    clause: str  # which part of the policy this enforces


@dataclass(frozen=True)
class ProposedBooking:
    host_id: int
    cohost_id: int | None
    kind: str  # "one_to_one" | "group"
    starts_at: datetime  # aware
    minutes: int
    platform: str
    plan: str
    pupil_count: int


@dataclass(frozen=True)
class Unsuitable:
    """A pupil for whom live video has been marked not suitable."""

    name: str  # short name
    reason: str
    keep_in_touch_by: str


@dataclass(frozen=True)
class CheckGaps:
    """What the roster lacks about a host's or co-host's DBS check and safeguarding training."""

    field: str  # the form field it is shown beside
    who: str  # "You" or the colleague's name
    gaps: tuple[str, ...]  # e.g. "no DBS check on the staff roster"


@dataclass(frozen=True)
class BookingFacts:
    now: datetime
    unknown_pupils: tuple[str, ...] = ()
    without_consent: tuple[str, ...] = ()  # pupils' short names
    unsuitable: tuple[Unsuitable, ...] = ()
    at_weekly_limit: tuple[str, ...] = ()
    host_busy: bool = False
    cohost_busy: bool = False
    check_gaps: tuple[CheckGaps, ...] = ()
    closed: str | None = None  # the school calendar's reason the day is closed, if it is
    extra: tuple[Violation, ...] = field(default_factory=tuple)


CLAUSES = {
    "school_day": "Calls happen on school days only.",
    "school_hours": "Calls happen within normal school hours.",
    "length": "Calls are kept to a reasonable length.",
    "notice": "Calls are arranged in advance, not on the spot.",
    "horizon": "SLT are told when calls are scheduled, for dates they can plan around.",
    "weekly_limit": "No more than one call a week with each pupil.",
    "consent": "Parents agree in writing before their child joins a call.",
    "suitable": "Live video may not suit every pupil; families keep in touch another way.",
    "staff_checks": "Staff on calls are DBS checked and have up-to-date safeguarding training.",
    "cohost": "A second member of staff joins the call.",
    "platform": "Only the school's agreed platform is used.",
    "plan": "The host has a plan for the conversation.",
    "pupils": "Calls are with pupils on the school roll.",
}


def _v(rule: str, field_id: str, message: str) -> Violation:
    return Violation(rule, field_id, message, CLAUSES[rule])


def _names(names: tuple[str, ...]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def fmt_day(d: date) -> str:
    return f"{d:%A} {d.day} {d:%B %Y}"


def outside_window(day: date, now: datetime, policy: Policy) -> Violation | None:
    """A call's date must be from today up to ``max_advance_days`` ahead. Checked before
    anything else about the day: a date in year 1 or 9999 is a slip, not a plan."""
    today = now.astimezone(policy.zone).date()
    if day < today:
        return _v("horizon", "date", "That date has passed. Choose today or a later day.")
    last = today + timedelta(days=policy.max_advance_days)
    if day > last:
        return _v(
            "horizon",
            "date",
            f"Calls can be booked up to {policy.max_advance_days} days ahead, so "
            f"{fmt_day(last)} at the latest. Choose an earlier date.",
        )
    return None


def months_before(day: date, months: int) -> date:
    """The same day of the month ``months`` earlier (the month's last day if it is shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("every month has 28 days")


def check_gaps(
    dbs_checked: date | None, training: date | None, on: date, policy: Policy
) -> tuple[str, ...]:
    """What is missing from a member of staff's checks for a call on ``on``."""
    gaps = []
    if dbs_checked is None:
        gaps.append("no DBS check on the staff roster")
    if training is None:
        gaps.append("no safeguarding training date on the staff roster")
    elif training < months_before(on, policy.training_valid_months):
        gaps.append(
            f"safeguarding training last recorded on {fmt_day(training)}, more than "
            f"{policy.training_valid_months} months before the call"
        )
    return tuple(gaps)


def _day_and_hours(
    start: datetime, minutes: int, policy: Policy, calendar_closed: str | None = None
) -> list[Violation]:
    """A school day, inside school hours from start to end (``start`` in school time).
    ``calendar_closed`` is why the imported school calendar closes that day, if it does."""
    end = start + timedelta(minutes=minutes)
    closed = policy.closed_reason(start.date()) or calendar_closed
    if closed:
        return [_v("school_day", "date", f"{closed}. Choose a school day.")]
    if start.time() < policy.day_start or start.time() >= policy.day_end:
        hours = policy.hours_text()
        return [_v("school_hours", "start", f"{start:%H:%M} is outside school hours ({hours}).")]
    if end.time() > policy.day_end or end.date() != start.date():
        return [
            _v(
                "school_hours",
                "duration",
                f"The call would end at {end:%H:%M}, after school hours end "
                f"at {policy.day_end:%H:%M}. Start earlier or make it shorter.",
            )
        ]
    return []


def check_booking(p: ProposedBooking, facts: BookingFacts, policy: Policy) -> list[Violation]:
    out: list[Violation] = []
    local_start = p.starts_at.astimezone(policy.zone)
    window = outside_window(local_start.date(), facts.now, policy)
    if window:
        out.append(window)  # the date itself is refused: nothing about its day or time matters
    else:
        out.extend(_day_and_hours(local_start, p.minutes, policy, facts.closed))

    if p.minutes > policy.max_call_minutes:
        out.append(
            _v(
                "length",
                "duration",
                f"Calls can last at most {policy.max_call_minutes} minutes, "
                "so families can get on with their day.",
            )
        )
    elif p.minutes < policy.min_call_minutes:
        out.append(
            _v("length", "duration", f"A call needs at least {policy.min_call_minutes} minutes.")
        )

    if window is None:
        if p.starts_at <= facts.now:
            out.append(_v("notice", "start", "That time has already passed."))
        elif p.starts_at < facts.now + timedelta(minutes=policy.min_notice_minutes):
            out.append(
                _v(
                    "notice",
                    "start",
                    f"Calls must be booked at least {policy.min_notice_minutes} minutes ahead, "
                    "so the co-host and SLT can be told.",
                )
            )

    if facts.unknown_pupils:
        out.append(
            _v(
                "pupils",
                "pupils",
                f"Not on the pupil roster: {_names(facts.unknown_pupils)}. "
                "Ask the office to import them.",
            )
        )
    elif p.pupil_count == 0:
        out.append(_v("pupils", "pupils", "Choose at least one pupil."))
    elif p.kind == "one_to_one" and p.pupil_count > 1:
        out.append(
            _v("pupils", "kind", "A one-to-one call is with one pupil; choose group for more.")
        )
    if facts.without_consent:
        out.append(
            _v(
                "consent",
                "pupils",
                f"No written parental consent on file for {_names(facts.without_consent)}. "
                "Email the parents the information in /consent letter, then record their "
                "written reply with /consent.",
            )
        )
    for x in facts.unsuitable:
        out.append(
            _v(
                "suitable",
                "pupils",
                f"Video calls are not suitable for {x.name}: {x.reason.rstrip('.')}. "
                f"The family keeps in touch by {x.keep_in_touch_by.rstrip('.')} instead."
                if x.keep_in_touch_by
                else f"Video calls are not suitable for {x.name}: {x.reason.rstrip('.')}.",
            )
        )
    if facts.at_weekly_limit:
        per = policy.calls_per_pupil_per_week
        limit = "a call" if per == 1 else f"{per} calls"
        verb = "has" if len(facts.at_weekly_limit) == 1 else "have"
        out.append(
            _v(
                "weekly_limit",
                "pupils",
                f"{_names(facts.at_weekly_limit)} already {verb} {limit} that week "
                f"(Monday to Sunday); the limit is {per} a week.",
            )
        )

    if p.cohost_id is None:
        if policy.cohost_required(p.kind):
            kind = "group" if p.kind == "group" else "one-to-one"
            out.append(
                _v(
                    "cohost",
                    "cohost",
                    f"A second member of staff must join every {kind} call. Choose a co-host.",
                )
            )
    elif p.cohost_id == p.host_id:
        out.append(_v("cohost", "cohost", "The co-host must be a different member of staff."))
    elif facts.cohost_busy:
        out.append(_v("cohost", "cohost", "Your co-host already has a call at that time."))
    if facts.host_busy:
        out.append(_v("cohost", "start", "You already have a call at that time."))
    if policy.staff_checks_missing == "refuse":
        for gap in facts.check_gaps:
            out.append(
                _v(
                    "staff_checks",
                    gap.field,
                    f"{gap.who} can't be on a call yet: {_names(gap.gaps)}. "
                    "Ask the office to update the staff roster.",
                )
            )

    agreed = {x.casefold() for x in policy.platforms}
    if p.platform.casefold() not in agreed:
        out.append(
            _v(
                "platform",
                "platform",
                f"{p.platform or 'That platform'} is not agreed by the school. "
                f"Use {_names(policy.platforms)}.",
            )
        )
    if not p.plan.strip():
        out.append(
            _v(
                "plan",
                "plan",
                "Write a short plan for the conversation (for example, sharing work or a story).",
            )
        )
    out.extend(facts.extra)
    return out
