"""Safeguarding concerns: /concern, the DSL alert and its buttons, and the chase.

The Bot hands this flow every interaction it claims *before* the roster check, so anyone the
platform lets talk to the bot can report a concern. The work lives in three modules:

- :mod:`chatbot.services.concern_filing`: the form, the store-first transaction, who is alerted;
- :mod:`chatbot.services.concern_records`: view details, acknowledge, notes, export, retention;
- :mod:`chatbot.services.concern_chase`: re-send and escalate unacknowledged alerts.
"""

from __future__ import annotations

from chatbot import concern_notices as cn
from chatbot.bot import ConcernHooks
from chatbot.core import Core
from chatbot.effects import (
    CloseForm,
    Effect,
    Ephemeral,
    FormErrors,
    OpenForm,
    Popup,
    Reply,
    UpdateMessage,
)
from chatbot.interaction import Interaction
from chatbot.services import concern_chase, concern_filing, concern_records
from chatbot.services.booking import load
from chatbot.services.forms import FieldError, record_id, text
from chatbot.storage.models import Booking, Staff
from chatbot.ui import Form, Input, Message, Section, esc

FORM_ID = concern_filing.FORM_ID
NOTE_FORM_ID = "concern_note"
CLOSE_FORM_ID = "concern_close"
COMMAND = "concern"


def _say(words: str) -> list[Effect]:
    return [Ephemeral(Message(words, (Section(esc(words)),)))]


def actor_label(i: Interaction, staff: Staff | None) -> str:
    """Who did it, for the record: the roster email, else what the platform told us."""
    if staff is not None:
        return staff.email
    return (i.actor.email or i.actor.display_name or f"{i.platform}:{i.actor.user_id}")[:320]


def _note_form(concern_id: int, reference: str, close: bool) -> Form:
    if close:
        return Form(
            id=CLOSE_FORM_ID,
            title=f"Close {reference}",
            submit_label="Close concern",
            state={"concern_id": str(concern_id)},
            intro="Record the outcome: what was decided and who it was referred to.",
            inputs=(Input("note", "Outcome", "long_text", max_length=concern_records.NOTE_MAX),),
        )
    return Form(
        id=NOTE_FORM_ID,
        title=f"Note on {reference}",
        submit_label="Add note",
        state={"concern_id": str(concern_id)},
        inputs=(Input("note", "Note", "long_text", max_length=concern_records.NOTE_MAX),),
    )


class ConcernFlow(ConcernHooks):
    def __init__(self, core: Core):
        self.core = core

    # ----- routing

    def claims(self, i: Interaction) -> bool:
        if i.kind == "command":
            return i.name.lstrip("/").lower() == COMMAND
        if i.kind == "message":
            return i.text.strip().lstrip("/").split(" ", 1)[0].lower() == COMMAND
        if i.kind == "action":
            return i.name.startswith("concern.")
        if i.kind == "submit":
            return i.name == FORM_ID or i.name.startswith("concern_")
        return False

    async def handle(self, i: Interaction, staff: Staff | None) -> list[Effect]:
        if i.kind in ("command", "message"):
            return [OpenForm(concern_filing.concern_form(self.core))]
        if i.kind == "submit":
            if i.name == FORM_ID:
                return await self._file(i, staff)
            if i.name in (NOTE_FORM_ID, CLOSE_FORM_ID):
                return await self._note(i, staff, close=i.name == CLOSE_FORM_ID)
            return _say("That form is no longer in use.")
        if i.name == "concern.open":
            return await self._open(i, staff)
        if i.name == "concern.view":
            return await self._view(i, staff)
        if i.name == "concern.ack":
            return await self._ack(i, staff)
        if i.name in ("concern.note", "concern.close"):
            return await self._manage(i, staff, close=i.name == "concern.close")
        return _say("That button is no longer in use.")

    async def open_for_booking(self, b: Booking, staff: Staff) -> list[Effect]:
        return [OpenForm(concern_filing.concern_form(self.core, b))]

    async def sweep(self) -> int:
        """Scheduled: chase unacknowledged alerts; record deliveries in the chronology."""
        return await concern_chase.sweep(self.core)

    # ----- filing

    async def _open(self, i: Interaction, staff: Staff | None) -> list[Effect]:
        """The form from a call's "Report a concern" button: linked to the call and its pupil
        for the call's host and co-host; for anyone else the plain form, so reporting is never
        blocked and nothing about someone else's call is shown."""
        booking: Booking | None = None
        kind, _, ident = i.value.partition(":")
        booking_id = record_id(ident) if kind == "booking" else None
        if booking_id is not None:
            async with self.core.db.reading() as s:
                booking = await load(s, booking_id)
        if booking is not None and not concern_filing.on_call(booking, staff):
            booking = None
        return [OpenForm(concern_filing.concern_form(self.core, booking))]

    async def _file(self, i: Interaction, staff: Staff | None) -> list[Effect]:
        res = await concern_filing.file(self.core, staff, actor_label(i, staff), i.values, i.state)
        if res.errors:
            return [FormErrors(res.errors)]
        if res.failed or res.concern is None:
            return [FormErrors({"narrative": cn.save_failed(self.core.policy)})]
        c = res.concern  # committed: the receipt can only ever describe a stored concern
        return [
            CloseForm(),
            Reply(cn.receipt(c.reference, self.core.policy, c.immediate_risk, c.out_of_hours)),
        ]

    # ----- the alert's buttons

    async def _view(self, i: Interaction, staff: Staff | None) -> list[Effect]:
        out = await concern_records.view(self.core, staff, actor_label(i, staff), i.value)
        if not out.ok or out.message is None:
            return _say(out.text)
        return [Popup(f"Concern {out.reference}", out.message)]

    async def _ack(self, i: Interaction, staff: Staff | None) -> list[Effect]:
        out = await concern_records.acknowledge(self.core, staff, actor_label(i, staff), i.value)
        effects: list[Effect] = []
        if out.ok and out.message is not None and i.message_ref:
            effects.append(UpdateMessage(out.message))
        return [*effects, *_say(out.text)]

    async def _manage(self, i: Interaction, staff: Staff | None, close: bool) -> list[Effect]:
        c, why = await concern_records.may_manage(
            self.core, staff, actor_label(i, staff), i.value, "close" if close else "note"
        )
        if c is None:
            return _say(why)
        return [OpenForm(_note_form(c.id, c.reference, close))]

    async def _note(self, i: Interaction, staff: Staff | None, close: bool) -> list[Effect]:
        try:
            note = text(
                i.values, "note", "The outcome" if close else "The note", concern_records.NOTE_MAX
            )
        except FieldError as e:
            return [FormErrors({e.field: e.message})]
        out = await concern_records.add_note(
            self.core, staff, actor_label(i, staff), i.state.get("concern_id", ""), note, close
        )
        return [CloseForm(), *_say(out.text)]
