"""What consent answers: /consent (record), /consent withdraw, /consent letter, and marking a
pupil for whom video calls are not suitable (/consent not-suitable, /consent suitable)."""

from __future__ import annotations

from chatbot.consent import service, suitability
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
    "removes an agreement; **/consent not-suitable** records that video calls don't suit a "
    "pupil (**/consent suitable** undoes it)."
)
NOT_SUITABLE_WORDS = ("not-suitable", "not suitable", "unsuitable", "notsuitable")


async def consent_command(u: Unit, t: Turn) -> list[Effect]:
    word = " ".join(t.args.lower().split())
    if word.startswith("withdraw"):
        return [OpenForm(service.withdraw_form())]
    if word.startswith("letter"):
        return [Ephemeral(letter_message(u.policy))]
    if word.startswith("ask"):
        return await email_handlers.open_ask(u, t)
    if word.startswith("request"):
        return await email_handlers.list_requests(u, t)
    if word.startswith(NOT_SUITABLE_WORDS):
        return [OpenForm(suitability.unsuitable_form())]
    if word.startswith("suitable"):
        return [OpenForm(suitability.suitable_form())]
    return [OpenForm(service.consent_form())]


async def record(u: Unit, t: Turn) -> list[Effect]:
    res = await service.grant_from_form(u, t.staff, t.interaction.values)
    if res.errors:
        return [FormErrors(res.errors)]
    assert res.pupil is not None
    text = f"Recorded written consent for {res.pupil.short_name}."
    if res.released:
        text += f" {len(res.released)} call(s) on hold for it can go ahead again."
    return [CloseForm(), *say(text)]


async def withdraw(u: Unit, t: Turn) -> list[Effect]:
    res = await service.withdraw(u, one(t.interaction.values, "pupil"), t.staff)
    if res.error:
        return [FormErrors({"pupil": res.error})]
    return [CloseForm(), *say(res.summary(u.zone))]


async def not_suitable(u: Unit, t: Turn) -> list[Effect]:
    res = await suitability.mark_unsuitable(u, t.staff, t.interaction.values)
    if res.errors:
        return [FormErrors(res.errors)]
    assert res.pupil is not None
    text = (
        f"Recorded: video calls are not suitable for {res.pupil.short_name}. Booking a call "
        "with them will be refused, showing your reason; SLT have been told."
    )
    if res.calls:
        text += f" {len(res.calls)} booked call(s) were called off; their hosts were told."
    return [CloseForm(), *say(text)]


async def suitable(u: Unit, t: Turn) -> list[Effect]:
    err, pupil = await suitability.mark_suitable(u, t.staff, one(t.interaction.values, "pupil"))
    if err or pupil is None:
        return [FormErrors({"pupil": err or "Choose the pupil."})]
    return [
        CloseForm(),
        *say(f"Video calls can be booked with {pupil.short_name} again (with written consent)."),
    ]


def register(r: Registry) -> None:
    r.command("consent", consent_command, help=HELP)
    r.submit(service.FORM_ID, record)
    r.submit(service.WITHDRAW_FORM_ID, withdraw)
    r.submit(suitability.FORM_ID, not_suitable)
    r.submit(suitability.CLEAR_FORM_ID, suitable)
