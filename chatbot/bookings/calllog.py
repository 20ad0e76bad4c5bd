"""The Keeping in Touch log, written by the host after each call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from chatbot.bookings import notices
from chatbot.bookings.service import load
from chatbot.fields import FieldError, one, parse_int, text
from chatbot.interaction import SubmittedValue
from chatbot.meetings.events import CallActivity, activity
from chatbot.storage.models import Booking, CallLog, Staff
from chatbot.ui import Form, Input, Option, esc
from chatbot.uow import Unit

FORM_ID = "call_log"
SUMMARY_MAX = 3000


def log_form(b: Booking, zone: ZoneInfo | None = None, actual: CallActivity | None = None) -> Form:
    """The log, filled in with what Zoom saw of the call (``actual``) when it saw anything:
    the host confirms or corrects it."""
    minutes = int((b.ends_at - b.starts_at).total_seconds() // 60)
    intro = f"{notices.ref(b)}: {esc(notices.pupil_names(b))}."
    attended = notices.pupil_names(b)
    if actual is not None and zone is not None:
        intro += " " + esc(zoom_summary(actual, zone))
        minutes = actual.minutes if actual.minutes is not None else minutes
        attended = "; ".join(actual.people)[:500] or attended
    return Form(
        id=FORM_ID,
        title="Keeping in Touch log",
        intro=intro,
        submit_label="Save log",
        state={"booking_id": str(b.id)},
        inputs=(
            Input("attended", "Who attended", "text", max_length=500, initial=attended),
            Input(
                "minutes", "How long it actually lasted (minutes)", "number", initial=str(minutes)
            ),
            Input("summary", "What you talked about", "long_text", max_length=SUMMARY_MAX),
            Input(
                "worrying",
                "Was anything worrying?",
                "select",
                options=(Option("no", "No"), Option("yes", "Yes: I will file a concern")),
                initial="no",
            ),
        ),
    )


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


@dataclass
class LogResult:
    errors: dict[str, str] = field(default_factory=dict)
    booking: Booking | None = None
    worrying: bool = False
    message: str = ""


async def open_form(
    u: Unit, actor: Staff, booking_id: int | None
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
    return None, log_form(b, u.zone, await activity(u.session, b))


async def _logged(u: Unit, b: Booking) -> bool:
    return (
        await u.session.execute(select(CallLog.id).where(CallLog.booking_id == b.id))
    ).first() is not None


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
    worrying = one(values, "worrying")
    if worrying not in ("yes", "no"):
        res.errors["worrying"] = "Answer yes or no."
    if res.errors:
        return res
    b = await load(u.session, booking_id)
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
        worrying=worrying == "yes",
        logged_by_id=actor.id,
        logged_at=u.now,
    )
    u.session.add(log)
    await u.session.flush()
    u.audit(actor, "calllog.save", "booking", b.id, {"worrying": log.worrying})
    res.booking, res.worrying = b, log.worrying
    res.message = f"Saved the Keeping in Touch log for {notices.ref(b)}."
    return res
