"""Pupils for whom live video is not suitable, and how their families keep in touch instead.

The policy reminds parents and staff that live video may not suit every pupil. A member of
staff who learns that it does not suit one records why, and how the family would like to keep
in touch instead; from then on booking a call with that pupil is refused with that reason, and
any calls they have still to come are called off. Recording it is a protective step, so any
member of staff may; it stops colleagues' calls, so SLT are told, and only the people who may
withdraw consent may mark the pupil suitable again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatbot.bookings import holds, notices
from chatbot.consent.service import WITHDRAW_ROLES
from chatbot.fields import FieldError, one, text
from chatbot.interaction import SubmittedValue
from chatbot.roster.pupils import pupils_by_upn
from chatbot.storage.models import Booking, Pupil, Staff
from chatbot.ui import Context, Fields, Form, Input, Message, Section
from chatbot.uow import Unit

FORM_ID = "video_unsuitable"
CLEAR_FORM_ID = "video_suitable"
REASON_MAX = 500
KEEP_IN_TOUCH_MAX = 300


def unsuitable_form() -> Form:
    return Form(
        id=FORM_ID,
        title="Video calls not suitable",
        intro=(
            "Record that live video calls do not suit a pupil. Calls with them will be refused "
            "and any already booked are called off; SLT are told."
        ),
        submit_label="Record",
        inputs=(
            Input("pupil", "Pupil", "pupil"),
            Input(
                "reason",
                "Why video calls don't suit them",
                "long_text",
                max_length=REASON_MAX,
                hint="Shown to staff who try to book a call with them.",
            ),
            Input(
                "keep_in_touch",
                "How the family would like to keep in touch instead",
                "text",
                max_length=KEEP_IN_TOUCH_MAX,
                placeholder="e.g. a weekly phone call with their teacher",
            ),
        ),
    )


def suitable_form() -> Form:
    return Form(
        id=CLEAR_FORM_ID,
        title="Video calls suitable again",
        intro="Video calls can be booked with this pupil again (with written consent).",
        submit_label="Save",
        inputs=(Input("pupil", "Pupil", "pupil"),),
    )


@dataclass
class Marked:
    errors: dict[str, str] = field(default_factory=dict)
    pupil: Pupil | None = None
    calls: list[Booking] = field(default_factory=list)  # called off


async def _pupil(u: Unit, upn: str) -> Pupil | None:
    found, _ = await pupils_by_upn(u.session, [upn])
    return found[0] if found else None


async def mark_unsuitable(
    u: Unit, actor: Staff | None, values: dict[str, SubmittedValue], actor_label: str = "cli"
) -> Marked:
    res = Marked()
    reason = keep = ""
    try:
        reason = text(values, "reason", "The reason", REASON_MAX)
    except FieldError as e:
        res.errors[e.field] = e.message
    try:
        keep = text(values, "keep_in_touch", "How the family keeps in touch", KEEP_IN_TOUCH_MAX)
    except FieldError as e:
        res.errors[e.field] = e.message
    upn = one(values, "pupil")
    pupil = await _pupil(u, upn) if upn else None
    if not upn:
        res.errors["pupil"] = "Choose the pupil."
    elif pupil is None:
        res.errors["pupil"] = f"{upn[:20]!r} is not on the pupil roster."
    if res.errors:
        return res
    assert pupil is not None
    who = actor or actor_label
    pupil.video_unsuitable_reason = reason
    pupil.keep_in_touch_by = keep
    pupil.video_unsuitable_at = u.now
    pupil.video_unsuitable_by = actor.email if actor else actor_label
    u.audit(who, "pupil.video_unsuitable", "pupil", pupil.id)  # the reason stays on the pupil
    res.pupil = pupil
    res.calls = await holds.stop_calls(u, pupil, who, notices.video_unsuitable(pupil), "cancel")
    u.to_role("slt", _slt_notice(pupil, holds.who(who), len(res.calls)))
    return res


def _slt_notice(pupil: Pupil, by: str, calls: int) -> Message:
    """SLT hear who marked whom (initials), not the reason: that stays with the pupil."""
    head = f"Video calls marked not suitable for {pupil.initials} by {by}."
    return Message(
        text=head,
        blocks=(
            Section("**Video calls not suitable**"),
            Fields((("Pupil", pupil.initials), ("Marked by", by), ("Calls off", str(calls)))),
            Context(("Booking a call with this pupil is refused until it is marked suitable.",)),
        ),
    )


async def mark_suitable(
    u: Unit, actor: Staff | None, upn: str, actor_label: str = "cli", *, cli: bool = False
) -> tuple[str | None, Pupil | None]:
    """Clear the mark. From chat only SLT, the DSL or deputy, or an admin may (it lets calls
    be booked again); the CLI trusts the server account. Returns (error, pupil)."""
    pupil = await _pupil(u, upn) if upn.strip() else None
    if pupil is None:
        return (f"{upn[:20]!r} is not on the pupil roster." if upn else "Choose the pupil."), None
    if pupil.video_unsuitable_reason is None:
        return f"{pupil.short_name} is not marked as unsuited to video calls.", None
    if not cli and (actor is None or not actor.has_role(*WITHDRAW_ROLES)):
        u.audit(actor or actor_label, "pupil.video_suitable_refused", "pupil", pupil.id)
        return (
            "Only SLT, the DSL or deputy DSL, or an admin can mark video calls suitable again "
            f"for {pupil.short_name}."
        ), None
    pupil.video_unsuitable_reason = pupil.keep_in_touch_by = None
    pupil.video_unsuitable_at = pupil.video_unsuitable_by = None
    u.audit(actor or actor_label, "pupil.video_suitable", "pupil", pupil.id)
    return None, pupil
