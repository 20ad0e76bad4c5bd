"""What concerns answer: /concern, the DSL alert's buttons, notes and closing.

Anyone the platform lets talk to the bot can report a concern, on the roster or not, so these
handlers are registered without ``staff_only``; and who may see or manage a concern is decided
on the roster as it is now (``fresh_actor``), never on a cached match. The work lives in
:mod:`filing` (the form and the store-first unit), :mod:`records` (view, acknowledge, notes),
:mod:`chase` (the sweep that re-sends and escalates), :mod:`export` and :mod:`retention`.
"""

from __future__ import annotations

from chatbot.bookings.service import load
from chatbot.concerns import chase, records
from chatbot.concerns import notices as cn
from chatbot.concerns.filing import FORM_ID, concern_form, file, on_call
from chatbot.effects import (
    CloseForm,
    Effect,
    Ephemeral,
    FormErrors,
    OpenForm,
    Popup,
    Reply,
    UpdateMessage,
    say,
)
from chatbot.fields import FieldError, record_id, text
from chatbot.policy import Policy
from chatbot.registry import Registry, Turn
from chatbot.storage.models import Booking
from chatbot.ui import Form, Input
from chatbot.uow import Unit

NOTE_FORM_ID = "concern_note"
CLOSE_FORM_ID = "concern_close"
HELP = "**/concern**: report a safeguarding concern to the DSL, privately."
LIST_HELP = "**/concerns**: for the DSL: open concerns, those not yet acknowledged first."


def _note_form(concern_id: int, reference: str, close: bool) -> Form:
    if close:
        return Form(
            id=CLOSE_FORM_ID,
            title=f"Close {reference}",
            submit_label="Close concern",
            state={"concern_id": str(concern_id)},
            intro="Record the outcome: what was decided and who it was referred to.",
            inputs=(Input("note", "Outcome", "long_text", max_length=records.NOTE_MAX),),
        )
    return Form(
        id=NOTE_FORM_ID,
        title=f"Note on {reference}",
        submit_label="Add note",
        state={"concern_id": str(concern_id)},
        inputs=(Input("note", "Note", "long_text", max_length=records.NOTE_MAX),),
    )


async def open_form(u: Unit, t: Turn) -> list[Effect]:
    return [OpenForm(concern_form(u))]


async def open_from_call(u: Unit, t: Turn) -> list[Effect]:
    """The form from a call's "Report a concern" button: linked to the call and its pupil for
    the call's host and co-host; for anyone else the plain form, so reporting is never blocked
    and nothing about someone else's call is shown."""
    booking: Booking | None = None
    kind, _, ident = t.interaction.value.partition(":")
    if kind == "booking":
        booking = await load(u.session, record_id(ident))
    if booking is not None and not on_call(booking, t.actor):
        booking = None
    return [OpenForm(concern_form(u, booking))]


async def submit(u: Unit, t: Turn) -> list[Effect]:
    i = t.interaction
    res = await file(u, t.actor, t.actor_label, i.values, i.state)
    if res.errors or res.concern is None:
        return [FormErrors(res.errors)]
    c = res.concern  # the receipt is sent only once the unit has committed
    return [CloseForm(), Reply(cn.receipt(c.reference, u.policy, c.immediate_risk, c.out_of_hours))]


def save_failed(policy: Policy, t: Turn) -> list[Effect]:
    """Nothing was stored: the form stays open with the person's words in it."""
    return [FormErrors({"narrative": cn.save_failed(policy)})]


async def view(u: Unit, t: Turn) -> list[Effect]:
    out = await records.view(u, t.actor, t.actor_label, t.interaction.value)
    if not out.ok or out.message is None:
        return say(out.text)
    return [Popup(f"Concern {out.reference}", out.message)]


async def list_open(u: Unit, t: Turn) -> list[Effect]:
    rows, why = await records.open_concerns(u, t.actor, t.actor_label)
    if rows is None:
        return say(why)
    return [Ephemeral(cn.open_list(rows, u.now, records.LIST_MAX))]


async def acknowledge(u: Unit, t: Turn) -> list[Effect]:
    out = await records.acknowledge(u, t.actor, t.actor_label, t.interaction.value)
    effects: list[Effect] = []
    if out.ok and out.message is not None and t.interaction.message_ref:
        effects.append(UpdateMessage(out.message))
    return [*effects, *say(out.text)]


async def _manage(u: Unit, t: Turn, close: bool) -> list[Effect]:
    c, why = await records.may_manage(
        u, t.actor, t.actor_label, t.interaction.value, "close" if close else "note"
    )
    if c is None:
        return say(why)
    return [OpenForm(_note_form(c.id, c.reference, close))]


async def open_note(u: Unit, t: Turn) -> list[Effect]:
    return await _manage(u, t, close=False)


async def open_close(u: Unit, t: Turn) -> list[Effect]:
    return await _manage(u, t, close=True)


async def _note(u: Unit, t: Turn, close: bool) -> list[Effect]:
    i = t.interaction
    try:
        note = text(i.values, "note", "The outcome" if close else "The note", records.NOTE_MAX)
    except FieldError as e:
        return [FormErrors({e.field: e.message})]
    out = await records.add_note(
        u, t.actor, t.actor_label, i.state.get("concern_id", ""), note, close
    )
    return [CloseForm(), *say(out.text)]


async def submit_note(u: Unit, t: Turn) -> list[Effect]:
    return await _note(u, t, close=False)


async def submit_close(u: Unit, t: Turn) -> list[Effect]:
    return await _note(u, t, close=True)


def register(r: Registry) -> None:
    anyone = {"staff_only": False, "fresh_actor": True}
    r.command("concern", open_form, help=HELP, **anyone)
    r.command("concerns", list_open, help=LIST_HELP, writes=True, **anyone)  # audited
    r.action("concern.open", open_from_call, writes=False, **anyone)
    r.submit(FORM_ID, submit, on_failure=save_failed, **anyone)
    r.action("concern.view", view, **anyone)
    r.action("concern.ack", acknowledge, **anyone)
    r.action("concern.note", open_note, **anyone)
    r.action("concern.close", open_close, **anyone)
    r.submit(NOTE_FORM_ID, submit_note, **anyone)
    r.submit(CLOSE_FORM_ID, submit_close, **anyone)
    r.sweep("concerns", chase.sweep)
