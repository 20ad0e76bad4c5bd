"""What bookings answer: /book-call, /my-calls, the Home view, and the buttons on calls."""

from __future__ import annotations

from datetime import timedelta

from chatbot.bookings import calllog, checklist, cohost, holds, logbook, notices, scheduled
from chatbot.bookings.forms import FORM_ID, booking_form
from chatbot.bookings.service import cancel, create_booking, load, why_not_cancel
from chatbot.bookings.views import FROM_LIST, cancel_question, my_calls_message
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


async def _in_place(u: Unit, t: Turn, msg: Message) -> list[Effect]:
    """``msg`` where the click came from: the Home view, or the message clicked."""
    if t.interaction.surface == "home":
        return [ShowHome(msg)]
    return [UpdateMessage(msg)] if t.interaction.message_ref else [Ephemeral(msg)]


async def ask_to_cancel(u: Unit, t: Turn) -> list[Effect]:
    """ "Cancel call" asks first, in the list the host clicked it in (a core step, so every
    surface asks: a slip on Slack or Teams cancels nothing either)."""
    b = await load(u.session, record_id(t.interaction.value))
    if (why := why_not_cancel(b, t.staff, u.now)) is not None:
        return say(why)
    assert b is not None
    if b.host_id != t.staff.id:  # SLT: the call is not in their own list
        return [Ephemeral(cancel_question(b, u.zone))]
    return await _in_place(u, t, await my_calls_message(u, t.staff, confirming=b.id))


async def cancel_call(u: Unit, t: Turn) -> list[Effect]:
    text, b = await cancel(u, t.staff, record_id(t.interaction.value))
    if b is None or b.host_id != t.staff.id:
        return say(text)
    # The host confirmed in their list of calls: show the list without it.
    return [UpdateMessage(await my_calls_message(u, t.staff)), *say(text)]


async def keep_call(u: Unit, t: Turn) -> list[Effect]:
    b = await load(u.session, record_id(t.interaction.value))
    text = f"Kept: {notices.ref(b)} is still booked." if b is not None else "Nothing cancelled."
    if b is None or b.host_id != t.staff.id or not t.interaction.message_ref:
        return say(text)
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
    from_list = i.value.startswith(FROM_LIST)
    booking_id = record_id(i.value.removeprefix(FROM_LIST))
    ans = await cohost.answer(u, t.staff, booking_id, i.name == "cohost.accept")
    out: list[Effect] = []
    if from_list and i.message_ref:  # answered in /my-calls: the list, brought up to date
        out.append(UpdateMessage(await my_calls_message(u, t.staff)))
    elif ans.message is not None and i.message_ref:
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
    if (
        res.worrying
        and res.booking is not None
        and await calllog.worry_open(u.session, res.booking)
    ):
        # The log stays open until this concern is filed: if the form is closed, the host is
        # reminded and then the DSL is told (see scheduled._worry_remind and _worry_report).
        text = (
            f"{res.message} You said something was worrying: tell the DSL in this form. "
            "Until you send it, the log stays open."
        )
        return [*say(text), OpenForm(concern_form(u, res.booking))]
    return [CloseForm(), *say(res.message)]


async def calls_command(u: Unit, t: Turn) -> list[Effect]:
    """``/calls log [pupil NAME | class NAME | date D | from D to D]``: read logs; audited."""
    word, _, rest = t.args.partition(" ")
    if word.lower() != "log":
        return say(logbook.USAGE)
    f, err = await logbook.parse_filter(u, rest)
    if f is None:
        return say(err)
    entries = await logbook.find(u, t.staff, f, limit=logbook.SHOWN_IN_CHAT + 1)
    logbook.audit_read(u, t.staff, "chat", f, entries[: logbook.SHOWN_IN_CHAT])
    everyone = logbook.may_read_all(t.staff)
    return [Ephemeral(logbook.chat_message(entries, u.zone, everyone))]


BOOK_HELP = "**/book-call**: book a video call with a pupil or group; I check the school's rules."
CALLS_HELP = "**/my-calls**: your upcoming calls, co-host requests and logs still to write."
LOG_HELP = (
    "**/calls log**: read Keeping in Touch logs (your own calls; SLT and the DSL see all), "
    "by pupil, class or date."
)


def register(r: Registry) -> None:
    r.command("book-call", book_call, help=BOOK_HELP)
    r.command("my-calls", show_my_calls, help=CALLS_HELP)
    r.command("calls", calls_command, help=LOG_HELP, writes=True)  # a read that is audited
    r.add("home", "", open_home, writes=False)
    r.home = home
    r.submit(FORM_ID, submit_booking)
    r.action("booking.cancel", ask_to_cancel, writes=False)
    r.action("booking.cancel_confirm", cancel_call)
    r.action("booking.cancel_keep", keep_call, writes=False)
    r.action("booking.rebook", rebook, writes=False)
    r.action("cohost.accept", answer_cohost)
    r.action("cohost.decline", answer_cohost)
    r.action("checklist.open", open_checklist, writes=False)
    r.action("checklist.tick", tick)
    r.action("calllog.open", open_log, writes=False)
    r.submit(calllog.FORM_ID, submit_log)
    r.sweep("bookings", scheduled.run_booking_sweeps)
    r.sweep("call_holds", holds.call_off_held_calls)
