"""What a member of staff sees of their own calls: the /my-calls list and the Home view."""

from __future__ import annotations

from sqlalchemy import select

from chatbot.bookings import notices
from chatbot.bookings.service import my_calls
from chatbot.meetings.service import flagged
from chatbot.storage.models import CallLog, Staff
from chatbot.ui import Actions, Button, Context, Message, Section, esc
from chatbot.uow import Unit

STATUS = {"awaiting_cohost": "waiting for co-host", "confirmed": "confirmed"}


async def my_calls_message(u: Unit, staff: Staff) -> Message:
    calls = await my_calls(u, staff)
    zone = u.zone
    if not calls:
        text = "You have no upcoming calls. Book one with /book-call."
        return Message(text, (Section(text),))
    blocks: list[Section | Actions | Context] = [Section("**Your calls**")]
    s = u.session
    logged = set(
        (
            await s.execute(
                select(CallLog.booking_id).where(CallLog.booking_id.in_([b.id for b in calls]))
            )
        ).scalars()
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
        elif b.id in zoom_flagged:
            status += " · **Zoom settings need fixing** (see the checklist)"
        blocks.append(
            Section(
                f"**{notices.when(b, zone)}** · {notices.KIND_LABEL[b.kind]} with "
                f"{esc(notices.pupil_names(b))} · {role}, co-host "
                f"{esc(co.name) if co else 'none'} · {status}"
            )
        )
        buttons: list[Button] = []
        if b.host_id == staff.id and not past:
            buttons.append(Button("checklist.open", "Checklist", str(b.id)))
            buttons.append(Button("booking.cancel", "Cancel call", str(b.id), "danger"))
        if b.cohost_id == staff.id and b.status == "awaiting_cohost":
            buttons.append(Button("cohost.accept", "Accept", str(b.id), "primary"))
            buttons.append(Button("cohost.decline", "Decline", str(b.id), "danger"))
        if past and b.host_id == staff.id and b.id not in logged:
            buttons.append(Button("calllog.open", "Write the log", str(b.id), "primary"))
        buttons.append(Button("concern.open", "Report a concern", f"booking:{b.id}"))
        blocks.append(Actions(tuple(buttons)))
    return Message(f"You have {len(calls)} call(s).", tuple(blocks))
