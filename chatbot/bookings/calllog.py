"""The Keeping in Touch log, written by the host after each call.

What the log tells us that SLT must know (the second member of staff was not there, the call
ran over the school's limit) goes to SLT as soon as it is saved. A log that says something was
worrying stays open until the host files a concern linked to the call: the sweeps remind the
host and then tell the DSL (see :func:`worry_unfiled`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.bookings import notices
from chatbot.bookings.service import load
from chatbot.fields import FieldError, one, parse_int, text
from chatbot.interaction import SubmittedValue
from chatbot.meetings.events import CallActivity, activity
from chatbot.storage.models import Booking, CallLog, Concern, Staff
from chatbot.ui import Form, Input, Option, esc
from chatbot.uow import Unit

FORM_ID = "call_log"
SUMMARY_MAX = 3000
YES_NO = (Option("yes", "Yes"), Option("no", "No"))


def log_form(
    b: Booking,
    cohost: Staff | None = None,
    initial: Mapping[str, str] | None = None,
    seen: str = "",
) -> Form:
    """The log form for ``b``. ``initial`` pre-fills answers known from elsewhere (such as the
    meeting's real length); the host can still change them. ``seen``: what the video platform
    recorded of the call, in words, shown above the questions."""
    given = initial or {}
    minutes = int((b.ends_at - b.starts_at).total_seconds() // 60)
    inputs = [
        Input(
            "attended",
            "Who attended",
            "text",
            max_length=500,
            initial=given.get("attended", notices.pupil_names(b)),
        ),
    ]
    if b.cohost_id is not None:
        who = cohost.name if cohost is not None else "the co-host"
        inputs.append(
            Input(
                "cohost_present",
                f"Was {who}, the second member of staff, on the call?",
                "select",
                options=YES_NO,
                initial=given.get("cohost_present"),
            )
        )
    inputs += [
        Input(
            "minutes",
            "How long it actually lasted (minutes)",
            "number",
            initial=given.get("minutes", str(minutes)),
        ),
        Input(
            "summary",
            "What you talked about",
            "long_text",
            max_length=SUMMARY_MAX,
            initial=given.get("summary"),
        ),
        Input(
            "worrying",
            "Was anything worrying?",
            "select",
            options=(Option("no", "No"), Option("yes", "Yes: I will file a concern")),
            initial=given.get("worrying", "no"),
        ),
    ]
    return Form(
        id=FORM_ID,
        title="Keeping in Touch log",
        intro=f"{notices.ref(b)}: {esc(notices.pupil_names(b))}."
        + (f" {esc(seen)}" if seen else ""),
        submit_label="Save log",
        state={"booking_id": str(b.id)},
        inputs=tuple(inputs),
    )


def worry_unfiled(logged_by: datetime | None = None) -> list[Any]:
    """Conditions on Booking: its log (saved by ``logged_by``, if given) says something was
    worrying, and its host has filed no concern linked to the call, before or after the log."""
    worry = [CallLog.booking_id == Booking.id, CallLog.worrying.is_(True)]
    if logged_by is not None:
        worry.append(CallLog.logged_at <= logged_by)
    return [
        exists().where(*worry),
        ~exists().where(Concern.booking_id == Booking.id, Concern.reporter_id == Booking.host_id),
    ]


async def worry_open(s: AsyncSession, b: Booking) -> bool:
    """Whether ``b``'s log reported a worry that still has no concern filed."""
    q = select(Booking.id).where(Booking.id == b.id, *worry_unfiled())
    return (await s.execute(q)).first() is not None


@dataclass
class LogResult:
    errors: dict[str, str] = field(default_factory=dict)
    booking: Booking | None = None
    worrying: bool = False
    message: str = ""


async def open_form(
    u: Unit, actor: Staff, booking_id: int | None, initial: Mapping[str, str] | None = None
) -> tuple[str | None, Form | None]:
    b = await load(u.session, booking_id)
    if b is None or b.host_id != actor.id:
        return "Only the host of that call can write its log.", None
    if b.status != "confirmed":
        return f"{notices.ref(b)} did not go ahead, so it needs no log.", None
    if b.starts_at > u.now:
        return "The log is written after the call.", None
    if await _logged(u, b):
        return f"The log for {notices.ref(b)} is already written. Thank you.", None
    cohost = await u.session.get(Staff, b.cohost_id) if b.cohost_id else None
    given = dict(initial or {})
    seen = ""
    if (actual := await activity(u.session, b)) is not None:
        # What Zoom saw: the host confirms or corrects it.
        seen = zoom_summary(actual, u.zone)
        if actual.minutes is not None:
            given.setdefault("minutes", str(actual.minutes))
        if actual.people:
            given.setdefault("attended", "; ".join(actual.people)[:500])
    return None, log_form(b, cohost, given, seen)


def zoom_summary(actual: CallActivity, zone: ZoneInfo) -> str:
    """What Zoom recorded, in words, for the host to check against their memory."""

    def hm(at: datetime | None) -> str:
        return f"{at.astimezone(zone):%H:%M}" if at is not None else "not recorded"

    length = f" ({actual.minutes} minutes)" if actual.minutes is not None else ""
    joined = "; ".join(actual.people) or "nobody recorded"
    return (
        f"Zoom recorded: started {hm(actual.started)}, ended {hm(actual.ended)}{length}. "
        f"Joined: {joined}. Please check and correct below."
    )


async def _logged(u: Unit, b: Booking) -> bool:
    return (
        await u.session.execute(select(CallLog.id).where(CallLog.booking_id == b.id))
    ).first() is not None


def _yes_no(values: dict[str, SubmittedValue], key: str, errors: dict[str, str]) -> bool:
    answer = one(values, key)
    if answer not in ("yes", "no"):
        errors[key] = "Answer yes or no."
    return answer == "yes"


async def save(
    u: Unit, actor: Staff, booking_id: int | None, values: dict[str, SubmittedValue]
) -> LogResult:
    res = LogResult()
    try:
        attended = text(values, "attended", "Who attended", 500)
    except FieldError as e:
        res.errors[e.field] = e.message
    try:
        minutes = parse_int(values, "minutes", "Length", 0, 24 * 60)
    except FieldError as e:
        res.errors[e.field] = e.message
    try:
        summary = text(values, "summary", "The summary", SUMMARY_MAX)
    except FieldError as e:
        res.errors[e.field] = e.message
    worrying = _yes_no(values, "worrying", res.errors)
    b = await load(u.session, booking_id)
    cohost_present: bool | None = None
    if b is not None and b.cohost_id is not None:
        cohost_present = _yes_no(values, "cohost_present", res.errors)
    if res.errors:
        return res
    if b is None or b.host_id != actor.id or b.status != "confirmed":
        res.errors["summary"] = "Only the host of a call that went ahead can write its log."
        return res
    if b.starts_at > u.now:
        res.errors["summary"] = "The log is written after the call."
        return res
    if await _logged(u, b):
        res.message = f"The log for {notices.ref(b)} was already saved."
        res.booking = b
        return res
    log = CallLog(
        booking_id=b.id,
        attended=attended,
        actual_minutes=minutes,
        summary=summary,
        worrying=worrying,
        cohost_present=cohost_present,
        logged_by_id=actor.id,
        logged_at=u.now,
    )
    u.session.add(log)
    await u.session.flush()
    points = _points_for_slt(u, log)
    u.audit(
        actor,
        "calllog.save",
        "booking",
        b.id,
        {"worrying": log.worrying, "cohost_present": cohost_present, "for_slt": list(points)},
    )
    if points:
        cohost = await u.session.get(Staff, b.cohost_id) if b.cohost_id else None
        msg = notices.log_points_for_slt(b, actor, cohost, u.zone, list(points.values()))
        u.to_role("slt", msg)
    res.booking, res.worrying = b, log.worrying
    res.message = f"Saved the Keeping in Touch log for {notices.ref(b)}."
    return res


def _points_for_slt(u: Unit, log: CallLog) -> dict[str, str]:
    """What the log tells SLT, by a code for the audit trail. Never the log's own words."""
    points = {}
    if log.cohost_present is False:
        points["no_cohost"] = "The second member of staff was not on the call."
    if log.actual_minutes > u.policy.max_call_minutes:
        points["too_long"] = (
            f"The call lasted {log.actual_minutes} minutes; the school's limit is "
            f"{u.policy.max_call_minutes}."
        )
    return points
