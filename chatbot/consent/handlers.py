"""What consent answers: /consent (record), /consent withdraw, /consent letter."""

from __future__ import annotations

from chatbot.consent import service
from chatbot.consent.letter import letter_message
from chatbot.effects import CloseForm, Effect, Ephemeral, FormErrors, OpenForm, say
from chatbot.fields import one
from chatbot.mail import handlers as email_handlers
from chatbot.registry import Registry, Turn
from chatbot.uow import Unit

HELP = (
    "**/consent**: record a parent's written agreement; **/consent ask** emails a family the "
    "information and asks them to reply to agree; **/consent requests** lists those waiting; "
    "**/consent letter** gives the information email to send yourself; **/consent withdraw** "
    "removes an agreement."
)


async def consent_command(u: Unit, t: Turn) -> list[Effect]:
    word = t.args.lower()
    if word.startswith("withdraw"):
        return [OpenForm(service.withdraw_form())]
    if word.startswith("letter"):
        return [Ephemeral(letter_message(u.policy))]
    if word.startswith("ask"):
        return await email_handlers.open_ask(u, t)
    if word.startswith("request"):
        return await email_handlers.list_requests(u, t)
    return [OpenForm(service.consent_form())]


async def record(u: Unit, t: Turn) -> list[Effect]:
    res = await service.grant_from_form(u, t.staff, t.interaction.values)
    if res.errors:
        return [FormErrors(res.errors)]
    assert res.pupil is not None
    return [CloseForm(), *say(f"Recorded written consent for {res.pupil.short_name}.")]


async def withdraw(u: Unit, t: Turn) -> list[Effect]:
    upn = one(t.interaction.values, "pupil")
    err = await service.withdraw(u, upn, t.staff)
    if err:
        return [FormErrors({"pupil": err})]
    return [
        CloseForm(),
        *say("Consent withdrawn. That pupil can't be booked until it is given again."),
    ]


def register(r: Registry) -> None:
    r.command("consent", consent_command, help=HELP)
    r.submit(service.FORM_ID, record)
    r.submit(service.WITHDRAW_FORM_ID, withdraw)
