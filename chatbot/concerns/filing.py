"""Filing a concern: the form, its checks, the store-first transaction, and who is alerted.

Nothing in this module logs or audits the narrative, the pupil's name or a parent's email: log
lines and audit rows carry the reference, the category and ids only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot import outbox
from chatbot.bookings import notices
from chatbot.bookings.service import load
from chatbot.concerns import notices as cn
from chatbot.fields import (
    FieldError,
    one,
    parse_date,
    parse_time,
    picked_email,
    record_id,
    text,
    too_long_ago,
)
from chatbot.interaction import SubmittedValue
from chatbot.policy import Policy
from chatbot.roster.identity import staff_by_email
from chatbot.roster.pupils import pupils_by_upn
from chatbot.storage.db import next_number
from chatbot.storage.models import Booking, Concern, ConcernEvent, Pupil, Staff
from chatbot.ui import Form, Input, Option
from chatbot.uow import Unit

log = logging.getLogger("chatbot.concerns")

FORM_ID = "concern"
NARRATIVE_MAX = 5000
STAFF_CATEGORY = "staff_conduct"
FUTURE_SLACK = timedelta(minutes=5)
# Built once: a new concern's row (see file()).
_INSERT_CONCERN = insert(cast(Table, Concern.__table__)).returning(Concern.id)
_INSERT_EVENT = insert(cast(Table, ConcernEvent.__table__))
_EVENT_COLUMNS = tuple(col.key for col in ConcernEvent.__table__.columns if col.key != "id")


def thread_key(concern_id: int) -> str:
    return f"concern:{concern_id}"


def ack_minutes(policy: Policy, urgent: bool) -> int:
    return policy.concern_urgent_ack_minutes if urgent else policy.concern_ack_minutes


def repeat_minutes(policy: Policy, urgent: bool) -> int:
    """After escalation, how often an unacknowledged concern is sent again."""
    return policy.concern_urgent_repeat_minutes if urgent else policy.concern_repeat_minutes


def out_of_hours(policy: Policy, now: datetime) -> bool:
    local = now.astimezone(policy.zone)
    if not policy.is_school_day(local.date()):
        return True
    return not policy.day_start <= local.time().replace(tzinfo=None) < policy.day_end


# ---------------------------------------------------------------- the form


def on_call(booking: Booking, staff: Staff | None) -> bool:
    """Whether ``staff`` hosts or co-hosts the call: only they may link a concern to it."""
    return staff is not None and staff.id in (booking.host_id, booking.cohost_id)


def concern_form(u: Unit, booking: Booking | None = None) -> Form:
    p = u.policy
    local = u.local(booking.starts_at if booking is not None else u.now)
    state: dict[str, str] = {}
    intro = (
        "Tell the Designated Safeguarding Lead what you saw or heard. Only the DSL and "
        "deputy DSL (and the head teacher, for a concern about a member of staff) will see "
        "the details. If a child may be at immediate risk of harm, "
        f"call the police on {p.contacts.police_phone} now and tell the DSL in person."
    )
    pupil_initial: str | None = None
    if booking is not None:
        state["booking_id"] = str(booking.id)
        intro += f" This concern will be linked to {notices.ref(booking)}."
        if len(booking.pupils) == 1:
            pupil_initial = booking.pupils[0].pupil.upn
    return Form(
        id=FORM_ID,
        title="Report a safeguarding concern",
        intro=intro,
        submit_label="Send to the DSL",
        state=state,
        inputs=(
            Input(
                "pupil",
                "Pupil (if the concern is about a pupil)",
                "pupil",
                required=False,
                initial=pupil_initial,
            ),
            Input(
                "category",
                "What kind of concern is it?",
                "select",
                options=tuple(Option(c.key, c.label) for c in p.concern_categories),
            ),
            Input(
                "staff",
                "Member of staff concerned (only for a concern about staff)",
                "staff",
                required=False,
            ),
            Input(
                "risk",
                "Could a child be at immediate risk of harm?",
                "select",
                options=(Option("no", "No"), Option("yes", "Yes")),
                initial="no",
            ),
            Input(
                "when_date", "When did it happen? (date)", "date", initial=local.date().isoformat()
            ),
            Input("when_time", "Time", "time", initial=f"{local:%H:%M}"),
            Input(
                "narrative",
                "What happened",
                "long_text",
                max_length=NARRATIVE_MAX,
                hint="What you saw or heard, in the words people used. Facts, not opinions.",
            ),
        ),
    )


@dataclass
class Draft:
    pupil: Pupil | None
    category: str
    subject: Staff | None
    urgent: bool
    happened_at: datetime
    narrative: str
    booking: Booking | None


@dataclass
class FileResult:
    errors: dict[str, str] = field(default_factory=dict)
    concern: Concern | None = None


async def read_form(
    u: Unit, reporter: Staff | None, values: dict[str, SubmittedValue], state: dict[str, str]
) -> tuple[Draft | None, dict[str, str]]:
    errors: dict[str, str] = {}
    p = u.policy
    s = u.session
    pupil: Pupil | None = None
    upn = one(values, "pupil")
    if upn:
        found, missing = await pupils_by_upn(s, [upn])
        if missing or not found:
            errors["pupil"] = (
                "I can't find that pupil. Choose them from the list, or leave it empty."
            )
        else:
            pupil = found[0]
    category = one(values, "category")
    if p.category(category) is None:
        errors["category"] = "Choose the kind of concern from the list."
    subject: Staff | None = None
    email = ""
    try:
        email = picked_email(values, "staff", "the member of staff concerned")
    except FieldError as e:
        errors[e.field] = e.message
    if email:
        subject = await staff_by_email(s, email)
        if subject is None or not subject.active:
            errors["staff"] = "That person is not on the staff roster. Choose them from the list."
            subject = None
    elif category == STAFF_CATEGORY and "staff" not in errors:
        errors["staff"] = "Choose the member of staff this concern is about."
    risk = one(values, "risk")
    if risk not in ("yes", "no"):
        errors["risk"] = "Answer yes or no."
    happened_at: datetime | None = None
    day: date | None = None
    try:
        day = parse_date(values, "when_date", "The date")
    except FieldError as e:
        errors[e.field] = e.message
    clock: time | None = None
    try:
        clock = parse_time(values, "when_time", "The time")
    except FieldError as e:
        errors[e.field] = e.message
    if day is not None and clock is not None:
        happened_at = datetime.combine(day, clock, tzinfo=p.zone)
        if happened_at > u.now + FUTURE_SLACK:
            errors["when_date"] = "That is in the future. When did it happen?"
        elif old := too_long_ago(day, u.local(u.now).date(), "That date"):
            errors["when_date"] = old
    narrative = ""
    try:
        narrative = text(values, "narrative", "What happened", NARRATIVE_MAX)
    except FieldError as e:
        errors[e.field] = e.message
    booking: Booking | None = None
    if state.get("booking_id"):
        booking = await load(s, record_id(state["booking_id"]))
        if booking is not None and not on_call(booking, reporter):
            booking = None  # a link to someone else's call is dropped; the report still goes
    if errors or happened_at is None:
        return None, errors
    return Draft(pupil, category, subject, risk == "yes", happened_at, narrative, booking), {}


# ---------------------------------------------------------------- store first


async def file(
    u: Unit,
    reporter: Staff | None,
    reporter_label: str,
    values: dict[str, SubmittedValue],
    state: dict[str, str],
) -> FileResult:
    """Check the form; then write the concern, its chronology, audit row and alerts in the
    unit, so they commit together. Nothing in the result exists until the unit commits (the
    router answers only after that). Concerns filed at the same moment take their reference
    numbers one after the other (see storage.db.next_number), so none is refused for it."""
    now = u.now
    s = u.session
    draft, errors = await read_form(u, reporter, values, state)
    if draft is None:
        return FileResult(errors=errors)
    year = u.local(now).year
    seq = await next_number(s, f"concern:{year}")
    ooh = out_of_hours(u.policy, now)
    row = {
        "reference": f"C-{year}-{seq:04d}",
        "year": year,
        "seq": seq,
        "reporter_id": reporter.id if reporter else None,
        "reporter_label": reporter_label[:320],
        "pupil_id": draft.pupil.id if draft.pupil else None,
        "subject_staff_id": draft.subject.id if draft.subject else None,
        "booking_id": draft.booking.id if draft.booking else None,
        "category": draft.category,
        "immediate_risk": draft.urgent,
        "happened_at": draft.happened_at,
        "narrative": draft.narrative,
        "filed_at": now,
        "out_of_hours": ooh,
        "ack_due_at": now + timedelta(minutes=ack_minutes(u.policy, draft.urgent)),
        "status": "open",
        "legal_hold": False,
    }
    # A Core insert: the ORM's unit-of-work flush cost a good part of filing a concern.
    concern_id = int((await s.execute(_INSERT_CONCERN, row)).scalar_one())
    # The concern as an object the alert and the receipt can read; not added to the session.
    c = Concern(id=concern_id, **row)
    detail = "out of school hours" if ooh else ""
    # The first chronology entry goes in with a Core insert too, for the same reason.
    first = chronology_entry(c, now, "filed", reporter, reporter_label, detail)
    await s.execute(_INSERT_EVENT, {k: getattr(first, k) for k in _EVENT_COLUMNS})
    u.audit(
        reporter or reporter_label,
        "concern.file",
        "concern",
        c.reference,
        {
            "category": c.category,
            "immediate_risk": c.immediate_risk,
            "pupil_id": c.pupil_id,
            "about_staff": c.subject_staff_id is not None,
            "booking_id": c.booking_id,
            "out_of_hours": ooh,
        },
    )
    sent = await send_alert(u, c, "new")
    log.info("concern %s filed (%s), alerts queued: %s", c.reference, c.category, len(sent))
    return FileResult(concern=c)


def chronology_entry(
    c: Concern,
    at: datetime,
    kind: str,
    actor: Staff | None,
    actor_label: str = "system",
    detail: str = "",
    note: str | None = None,
    outbox_id: int | None = None,
) -> ConcernEvent:
    """A new entry for the concern's chronology (append-only: the database refuses edits),
    naming who acted as the roster has them; the caller adds it to its session."""
    return ConcernEvent(
        concern_id=c.id,
        at=at,
        kind=kind,
        actor_id=actor.id if actor else None,
        actor_label=(actor.name if actor else actor_label)[:320],
        detail=detail[:500],
        note=note,
        outbox_id=outbox_id,
    )


# ---------------------------------------------------------------- who hears about it


@dataclass
class Audience:
    subject: Staff | None  # the member of staff the concern is about
    dsl_channel: bool  # safe to post to the DSL channel
    dsl_people: list[Staff]  # DSLs and deputy DSLs, never the subject
    heads: list[Staff]  # the head teacher, when the concern is about a member of staff
    slt_people: list[Staff]  # SLT, never the subject


def _others(people: list[Staff], subject: Staff | None) -> list[Staff]:
    seen: set[int] = set()
    out: list[Staff] = []
    for p in people:
        if p.active and p.id not in seen and (subject is None or p.id != subject.id):
            seen.add(p.id)
            out.append(p)
    return out


# Everyone a concern's alert may go to, found with one query (then sorted by role here).
ALERTED_ROLES = ("dsl", "deputy_dsl", "slt", "admin")


async def audience(s: AsyncSession, policy: Policy, c: Concern, people: bool = True) -> Audience:
    """Who hears about ``c``. Without ``people`` the lists of DSLs, SLT and heads are left
    empty: for a new concern about no member of staff, the channels are the whole audience."""
    subject = await s.get(Staff, c.subject_staff_id) if c.subject_staff_id else None
    alerted = await outbox.people_with_roles(s, ALERTED_ROLES) if people else []

    def holding(*roles: str) -> list[Staff]:
        return [p for p in alerted if p.has_role(*roles)]

    heads: list[Staff] = []
    if subject is not None:
        heads = holding("admin")
        if policy.head_teacher_email:
            head = await staff_by_email(s, policy.head_teacher_email)
            if head is not None:
                heads.insert(0, head)
    return Audience(
        subject=subject,
        dsl_channel=subject is None or not subject.has_role("dsl", "deputy_dsl"),
        dsl_people=_others(holding("dsl", "deputy_dsl"), subject),
        heads=_others(heads, subject),
        slt_people=_others(holding("slt"), subject),
    )


async def alert_facts(s: AsyncSession, policy: Policy, c: Concern) -> cn.AlertFacts:
    cat = policy.category(c.category)
    reporter = await s.get(Staff, c.reporter_id) if c.reporter_id else None
    pupil = await s.get(Pupil, c.pupil_id) if c.pupil_id else None
    return cn.AlertFacts(
        concern_id=c.id,
        reference=c.reference,
        category=cat.label if cat else c.category,
        urgent=c.immediate_risk,
        reporter=reporter.name if reporter else c.reporter_label,
        pupil_initials=pupil.initials if pupil else "",
        about_staff=c.subject_staff_id is not None,
        happened_at=c.happened_at,
        filed_at=c.filed_at,
        acknowledged_by=c.acknowledged_by_label,
        acknowledged_at=c.acknowledged_at,
        closed=c.status == "closed",
    )


async def send_alert(u: Unit, c: Concern, stage: cn.AlertStage) -> list[str]:
    """Queue the alert for ``stage`` in the unit; returns who it goes to (labels for the
    chronology, no personal details of the pupil)."""
    s = u.session
    # Direct messages go to people only on a chase, or when the concern is about a colleague
    # (the DSL channel may be the wrong place, and the head is told); otherwise the channels.
    people = stage in ("escalation", "repeat") or c.subject_staff_id is not None
    who = await audience(s, u.policy, c, people)
    msg = cn.alert(
        await alert_facts(s, u.policy, c),
        u.zone,
        stage,
        ack_minutes(u.policy, c.immediate_risk),
        repeat_every=repeat_minutes(u.policy, c.immediate_risk),
    )
    key = thread_key(c.id)
    sent: list[str] = []
    dms: list[Staff] = []
    if stage in ("escalation", "repeat"):
        dms = who.dsl_people + who.slt_people + who.heads
        if stage == "repeat" and who.subject is None and out_of_hours(u.policy, u.now):
            # Out of hours the SLT channel is the school's route, as for a new concern.
            u.to_role("slt", msg, thread_key=key)
            sent.append("SLT channel")
    else:
        if who.dsl_channel:
            u.to_role("dsl", msg, thread_key=key)
            sent.append("DSL channel")
        else:
            dms += who.dsl_people
        dms += who.heads
        if stage == "new" and c.out_of_hours:
            if who.subject is None:
                u.to_role("slt", msg, thread_key=key)
                sent.append("SLT channel")
            else:
                dms += who.slt_people
        if not sent and not dms:  # the only DSL is the subject and there is no head
            dms = who.slt_people
    for person in _others(dms, who.subject):
        u.to_staff(person.id, msg, thread_key=key)
        sent.append(person.name)
    if not sent:
        log.error(
            "concern %s: nobody to alert (no DSL, head teacher or SLT on the roster)", c.reference
        )
    return sent
