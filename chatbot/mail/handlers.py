"""What the email features answer: asking parents for consent, checking their replies, and
the join details for call invitations."""

from __future__ import annotations

from chatbot.consent import by_email
from chatbot.effects import CloseForm, Effect, Ephemeral, FormErrors, OpenForm, UpdateMessage, say
from chatbot.fields import FieldError, one, record_id, text
from chatbot.mail import invites
from chatbot.registry import Registry, Turn
from chatbot.ui import Context, Message, Section, esc
from chatbot.uow import Unit


async def open_ask(u: Unit, t: Turn) -> list[Effect]:
    if not u.mail.sending:
        return say(by_email.NOT_SET_UP)
    return [OpenForm(by_email.ask_form())]


async def submit_ask(u: Unit, t: Turn) -> list[Effect]:
    upn = one(t.interaction.values, "pupil")
    if not upn:
        return [FormErrors({"pupil": "Choose the pupil."})]
    words, req = await by_email.request(u, t.staff, upn)
    if req is None:
        return [FormErrors({"pupil": words})]
    return [CloseForm(), *say(words)]


async def list_requests(u: Unit, t: Turn) -> list[Effect]:
    rows = await by_email.open_requests(u)
    if not rows:
        return say("No consent requests are waiting for a reply.")
    lines = [by_email.status_line(u, r, p) for r, p in rows]
    return [
        Ephemeral(
            Message(
                f"{len(rows)} consent request(s) waiting",
                (
                    Section("**Consent requested, waiting for a reply**"),
                    Section(esc("\n".join(lines))),
                    Context(("Replies come back to whoever sent the request, to check.",)),
                ),
            )
        )
    ]


def _answer(text: str, msg: Message | None, t: Turn) -> list[Effect]:
    out: list[Effect] = []
    if msg is not None and t.interaction.message_ref:
        out.append(UpdateMessage(msg))
    return [*out, *say(text)]


async def agree(u: Unit, t: Turn) -> list[Effect]:
    text_, msg = await by_email.agree(u, t.staff, record_id(t.interaction.value))
    return _answer(text_, msg, t)


async def decline(u: Unit, t: Turn) -> list[Effect]:
    text_, msg = await by_email.decline(u, t.staff, record_id(t.interaction.value))
    return _answer(text_, msg, t)


async def open_held(u: Unit, t: Turn) -> list[Effect]:
    reply_id = record_id(t.interaction.value)
    if reply_id is None:
        return say("There is no such reply.")
    return [OpenForm(by_email.held_form(reply_id))]


async def submit_held(u: Unit, t: Turn) -> list[Effect]:
    i = t.interaction
    try:
        reason = text(i.values, "reason", "The reason", by_email.REASON_MAX)
    except FieldError as e:
        return [FormErrors({e.field: e.message})]
    errors, words = await by_email.accept_held(
        u, t.staff, record_id(i.state.get("reply_id", "")), reason
    )
    if errors:
        return [FormErrors(errors)]
    return [CloseForm(), *say(words)]


async def open_join(u: Unit, t: Turn) -> list[Effect]:
    booking_id = record_id(t.interaction.value)
    if booking_id is None:
        return say("There is no such call.")
    return [OpenForm(invites.join_form(booking_id))]


async def submit_join(u: Unit, t: Turn) -> list[Effect]:
    i = t.interaction
    errors, words = await invites.submit_join(
        u, t.staff, record_id(i.state.get("booking_id", "")), i.values
    )
    if errors:
        return [FormErrors(errors)]
    return [CloseForm(), *say(words)]


def register(r: Registry) -> None:
    r.action("consent.ask", open_ask, writes=False)
    r.submit(by_email.ASK_FORM_ID, submit_ask)
    r.action("consent.reply.agree", agree)
    r.action("consent.reply.decline", decline)
    r.action("consent.reply.held", open_held, writes=False)
    r.submit(by_email.HELD_FORM_ID, submit_held)
    r.action("invite.details", open_join, writes=False)
    r.submit(invites.FORM_ID, submit_join)
