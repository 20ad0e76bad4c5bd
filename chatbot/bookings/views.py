"""What a member of staff sees of their own calls: the /my-calls list and the Home view."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select

from chatbot.bookings import notices
from chatbot.bookings.calllog import worry_unfiled
from chatbot.bookings.service import my_calls
from chatbot.meetings.service import flagged
from chatbot.storage.models import Booking, CallLog, Staff
from chatbot.ui import Actions, Button, Context, Message, Section, esc
from chatbot.uow import Unit

STATUS = {"awaiting_cohost": "waiting for co-host", "confirmed": "confirmed"}
# Buttons in the list carry this before the call's id, so an answer given from the list
# redraws the list rather than replacing it with that one call's message.
FROM_LIST = "list:"
CANCEL_QUESTION = "**Cancel this call?** The co-host (and SLT, if they were told) will be told."


def cancel_buttons(booking_id: int) -> Actions:
    """The confirmation step of cancelling: a mis-typed number or a slip of the mouse on
    "Cancel call" must not call a call off."""
    return Actions(
        (
            Button("booking.cancel_confirm", "Yes, cancel the call", str(booking_id), "danger"),
            Button("booking.cancel_keep", "No, keep it", str(booking_id)),
        )
    )


def cancel_question(b: Booking, zone: ZoneInfo) -> Message:
    """The confirmation on its own, for someone whose list does not hold the call (SLT)."""
    head = f"Cancel {notices.ref(b)} on {notices.when(b, zone)}?"
    return Message(head, (Section(CANCEL_QUESTION), Context((head,)), cancel_buttons(b.id)))


async def my_calls_message(u: Unit, staff: Staff, confirming: int | None = None) -> Message:
    """/my-calls and the Home view; ``confirming``: the call whose Cancel was just clicked,
    shown with the question instead of its buttons."""
    calls = await my_calls(u, staff)
    zone = u.zone
    if not calls:
        text = "You have no upcoming calls. Book one with /book-call."
        return Message(text, (Section(text),))
    blocks: list[Section | Actions | Context] = [Section("**Your calls**")]
    s = u.session
    ids = [b.id for b in calls]
    logged = set(
        (await s.execute(select(CallLog.booking_id).where(CallLog.booking_id.in_(ids)))).scalars()
    )
    worried = set(  # logs that said something was worrying, with no concern filed yet
        (await s.execute(select(Booking.id).where(Booking.id.in_(ids), *worry_unfiled()))).scalars()
    )
    zoom_flagged = await flagged(s, [b.id for b in calls])
    for b in calls:
        host = await s.get(Staff, b.host_id)
        co = await s.get(Staff, b.cohost_id) if b.cohost_id else None
        assert host is not None
        role = "You host" if b.host_id == staff.id else f"{esc(host.name)} hosts"
        status = STATUS[b.status]
        past = b.ends_at <= u.now
        if past:
            status = "log written" if b.id in logged else "log still to write"
            if b.id in worried and b.host_id == staff.id:
                status = "log written; concern still to file"
        elif b.held_at is not None:
            status += f" · on hold: {esc(b.held_reason or '')}"
        elif b.id in zoom_flagged:
            status += " · **Zoom settings need fixing** (see the checklist)"
        blocks.append(
            Section(
                f"**{notices.when(b, zone)}** · {notices.KIND_LABEL[b.kind]} with "
                f"{esc(notices.pupil_names(b))} · {role}, co-host "
                f"{esc(co.name) if co else 'none'} · {esc(status)}"
            )
        )
        if b.id == confirming and b.host_id == staff.id and not past:
            blocks += [Section(CANCEL_QUESTION), cancel_buttons(b.id)]
            continue
        buttons: list[Button] = []
        if b.host_id == staff.id and not past:
            buttons.append(Button("checklist.open", "Checklist", str(b.id)))
            buttons.append(Button("booking.cancel", "Cancel call", str(b.id), "danger"))
        if b.cohost_id == staff.id and b.status == "awaiting_cohost":
            from_list = f"{FROM_LIST}{b.id}"
            if b.held_at is None:
                buttons.append(Button("cohost.accept", "Accept", from_list, "primary"))
            buttons.append(Button("cohost.decline", "Decline", from_list, "danger"))
        if past and b.host_id == staff.id and b.id not in logged:
            buttons.append(Button("calllog.open", "Write the log", str(b.id), "primary"))
        buttons.append(Button("concern.open", "Report a concern", f"booking:{b.id}"))
        blocks.append(Actions(tuple(buttons)))
    return Message(f"You have {len(calls)} call(s).", tuple(blocks))
