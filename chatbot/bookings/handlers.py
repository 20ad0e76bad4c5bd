"""What bookings answer: /book-call, /my-calls, the Home view, and the buttons on calls."""

from __future__ import annotations

from datetime import timedelta

from chatbot.bookings import calllog, checklist, cohost, holds, notices, scheduled
from chatbot.bookings.forms import FORM_ID, booking_form
from chatbot.bookings.service import cancel, create_booking, load
from chatbot.bookings.views import my_calls_message
from chatbot.concerns.filing import concern_form
from chatbot.effects import (
    CloseForm,
    Effect,
    Ephemeral,
    FormErrors,
    OpenForm,
    Reply,
    ShowHome,
    UpdateMessage,
    say,
)
from chatbot.fields import record_id
from chatbot.registry import Registry, Turn
from chatbot.ui import Message
from chatbot.uow import Unit


async def book_call(u: Unit, t: Turn) -> list[Effect]:
    return [OpenForm(booking_form(u.policy))]


async def show_my_calls(u: Unit, t: Turn) -> list[Effect]:
    return [Ephemeral(await my_calls_message(u, t.staff))]


async def home(u: Unit, t: Turn) -> Message:
    return await my_calls_message(u, t.staff)


async def open_home(u: Unit, t: Turn) -> list[Effect]:
    return [ShowHome(await home(u, t))]


async def submit_booking(u: Unit, t: Turn) -> list[Effect]:
    res = await create_booking(u, t.staff, t.interaction.values)
    if res.errors:
        return [FormErrors(res.errors)]
    assert res.booking is not None
    b = res.booking
    answer_by = b.starts_at - timedelta(minutes=u.policy.cohost_answer_by_minutes)
    msg = notices.booked_for_host(b, t.staff, res.cohost, u.zone, answer_by)
    return [CloseForm(), Reply(msg)]


async def cancel_call(u: Unit, t: Turn) -> list[Effect]:
    text, b = await cancel(u, t.staff, record_id(t.interaction.value))
    if b is None or b.host_id != t.staff.id:
        return say(text)
    # The host clicked Cancel in their list of calls: show the list without it.
    return [UpdateMessage(await my_calls_message(u, t.staff)), *say(text)]


async def rebook(u: Unit, t: Turn) -> list[Effect]:
    b = await load(u.session, record_id(t.interaction.value))
    if b is None or b.host_id != t.staff.id:
        return say("Only the host can book that call again.")
    local = u.local(b.starts_at)
    initial: dict[str, str | tuple[str, ...]] = {
        "pupils": tuple(bp.pupil.upn for bp in b.pupils),
        "kind": b.kind,
        "date": local.date().isoformat(),
        "start": f"{local:%H:%M}",
        "duration": str(int((b.ends_at - b.starts_at).total_seconds() // 60)),
        "platform": b.platform,
        "plan": b.plan,
    }
    return [OpenForm(booking_form(u.policy, initial))]


async def answer_cohost(u: Unit, t: Turn) -> list[Effect]:
    i = t.interaction
    ans = await cohost.answer(u, t.staff, record_id(i.value), i.name == "cohost.accept")
    out: list[Effect] = []
    if ans.message is not None and i.message_ref:
        out.append(UpdateMessage(ans.message))
    out.extend(say(ans.text))
    return out


async def open_checklist(u: Unit, t: Turn) -> list[Effect]:
    err, msg = await checklist.view(u, t.staff, record_id(t.interaction.value))
    return [Reply(msg)] if msg is not None else say(err or "Could not open the checklist.")


async def tick(u: Unit, t: Turn) -> list[Effect]:
    booking_id, _, key = t.interaction.value.partition(":")
    err, msg = await checklist.tick(u, t.staff, record_id(booking_id), key)
    if err or msg is None:
        return say(err or "Could not tick that.")
    return [UpdateMessage(msg)] if t.interaction.message_ref else [Reply(msg)]


async def open_log(u: Unit, t: Turn) -> list[Effect]:
    err, form = await calllog.open_form(u, t.staff, record_id(t.interaction.value))
    return [OpenForm(form)] if form is not None else say(err or "Could not open the log.")


async def submit_log(u: Unit, t: Turn) -> list[Effect]:
    i = t.interaction
    res = await calllog.save(u, t.staff, record_id(i.state.get("booking_id", "")), i.values)
    if res.errors:
        return [FormErrors(res.errors)]
    if res.worrying and res.booking is not None:
        return [*say(res.message), OpenForm(concern_form(u, res.booking))]
    return [CloseForm(), *say(res.message)]


BOOK_HELP = "**/book-call**: book a video call with a pupil or group; I check the school's rules."
CALLS_HELP = "**/my-calls**: your upcoming calls, co-host requests and logs still to write."


def register(r: Registry) -> None:
    r.command("book-call", book_call, help=BOOK_HELP)
    r.command("my-calls", show_my_calls, help=CALLS_HELP)
    r.add("home", "", open_home, writes=False)
    r.home = home
    r.submit(FORM_ID, submit_booking)
    r.action("booking.cancel", cancel_call)
    r.action("booking.rebook", rebook, writes=False)
    r.action("cohost.accept", answer_cohost)
    r.action("cohost.decline", answer_cohost)
    r.action("checklist.open", open_checklist, writes=False)
    r.action("checklist.tick", tick)
    r.action("calllog.open", open_log, writes=False)
    r.submit(calllog.FORM_ID, submit_log)
    r.sweep("bookings", scheduled.run_booking_sweeps)
    r.sweep("call_holds", holds.call_off_held_calls)
