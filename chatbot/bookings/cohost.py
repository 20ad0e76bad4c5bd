"""Co-host pairing: the invited colleague accepts or declines, exactly once.

The answer is a single conditional UPDATE (``... WHERE status = 'awaiting_cohost'``), so with
any number of concurrent clicks or redelivered events one answer wins and the rest see it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from chatbot.bookings import notices
from chatbot.bookings.service import load, release_pupils, who_cancelled
from chatbot.mail import invites
from chatbot.meetings import service as meetings
from chatbot.storage.db import rows_changed
from chatbot.storage.models import Booking, Staff
from chatbot.ui import Message
from chatbot.uow import Unit


@dataclass
class Answer:
    won: bool  # this click made the decision
    text: str  # what to tell the person who clicked
    message: Message | None = None  # the request message as it should now look


async def answer(u: Unit, actor: Staff, booking_id: int | None, accept: bool) -> Answer:
    s, now, zone = u.session, u.now, u.zone
    new_status = "confirmed" if accept else "declined"
    b = await load(s, booking_id)
    if b is None:
        return Answer(False, "That call no longer exists.")
    if b.cohost_id != actor.id:
        return Answer(False, "Only the invited co-host can answer this request.")
    # A call on hold (a parent withdrew consent) can be declined but not accepted.
    open_to_answer = [Booking.id == booking_id, Booking.status == "awaiting_cohost"]
    if accept:
        open_to_answer.append(Booking.held_at.is_(None))
    won = (
        await rows_changed(
            s,
            update(Booking)
            .where(*open_to_answer)
            .values(status=new_status, cohost_answered_at=now),
        )
        == 1
    )
    if won:  # the booking as the UPDATE left it, without reading it back
        set_committed_value(b, "status", new_status)
        set_committed_value(b, "cohost_answered_at", now)
    else:  # someone else's answer (or a cancellation) came first: see which
        await s.refresh(b)
    host = await s.get(Staff, b.host_id)
    assert host is not None
    if not won and b.status == "awaiting_cohost" and b.held_at is not None:
        return Answer(
            False,
            f"This call is on hold: {b.held_reason}. It can't be accepted unless that "
            "changes; you can still decline it.",
            notices.cohost_request(b, host, actor, zone),
        )
    if not won:
        outcome = {
            "confirmed": "you accepted; the call is confirmed.",
            "declined": "you declined.",
            "lapsed": "no answer in time; the call is not going ahead.",
        }.get(b.status, f"{b.status}.")
        if b.status == "cancelled":
            outcome = f"cancelled by {await who_cancelled(s, b)}; nothing to do."
        msg = notices.cohost_request_closed(b, host, actor, zone, outcome)
        return Answer(False, f"Already answered: {outcome}", msg)
    u.audit(actor, "cohost.accept" if accept else "cohost.decline", "booking", b.id)
    if accept:
        outcome = "you accepted; the call is confirmed."
        note = meetings.confirmation_note(u, b)
        u.to_staff(host.id, notices.confirmed_for_host(b, host, actor, zone, note))
        u.tell_slt(notices.slt_notice(b, host, actor, zone), thread_key=f"slt:{b.id}")
        await invites.call_confirmed(u, b)
        await meetings.want_meeting(u, b)
    else:
        outcome = "you declined. The host has been told."
        await release_pupils(s, b)
        await meetings.booking_changed(u, b)
        u.to_staff(host.id, notices.declined_for_host(b, host, actor, zone))
    msg = notices.cohost_request_closed(b, host, actor, zone, outcome)
    # The clicked message is updated by the caller; other copies via the outbox.
    await u.update_thread(f"cohost:{b.id}", msg)
    return Answer(True, "Thank you: " + outcome, msg)
