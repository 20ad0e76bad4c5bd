"""The one way in: adapters hand an Interaction to :meth:`Bot.handle` and render the Effects.

This module only routes; decisions live in ``chatbot.services``.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from chatbot import notices, parent_letter
from chatbot.core import Core
from chatbot.effects import (
    CloseForm,
    Effect,
    Ephemeral,
    FormErrors,
    OpenForm,
    Options,
    Reply,
    UpdateMessage,
)
from chatbot.interaction import Interaction
from chatbot.ports import Directory
from chatbot.services import booking as booking_svc
from chatbot.services import calllog, checklist, cohost, consent, pupils
from chatbot.services.forms import one, record_id
from chatbot.services.identity import known_staff, remember, staff_options
from chatbot.storage.models import Booking, CallLog, ProcessedDelivery, Staff
from chatbot.sweeps import run_booking_sweeps
from chatbot.ui import Actions, Button, Context, Message, Section, esc

log = logging.getLogger("chatbot.bot")

RECENT_DELIVERIES = 10_000  # delivery ids (and actors) remembered in memory
ACTOR_SECONDS = 30.0  # how long a roster match is reused before it is looked up again

COMMANDS = ("book-call", "my-calls", "consent", "concern", "help")
NOT_ON_ROSTER = (
    "You're not on the school's staff roster, so I can't book or show calls for you. "
    "Ask your IT technician to add your school email to the roster. "
    "You can still report a safeguarding concern with /concern."
)

UNREADABLE = (
    "Some of that has characters I can't read (a broken emoji, perhaps). "
    "Please type it again without them."
)

Handler = Callable[[Interaction, Staff], Awaitable[list[Effect]]]


def say(text: str) -> list[Effect]:
    """A private reply of plain text (it may quote people, so it is never read as markup)."""
    return [Ephemeral(Message(text, (Section(esc(text)),)))]


def help_message(core: Core) -> Message:
    p = core.policy
    lines = (
        "**/book-call**: book a video call with a pupil or group; I check the school's rules.",
        "**/my-calls**: your upcoming calls, co-host requests and logs still to write.",
        "**/consent**: record a parent's written agreement; **/consent letter** gives the "
        "information email to send parents first; **/consent withdraw** removes an agreement.",
        "**/concern**: report a safeguarding concern to the DSL, privately.",
    )
    rules = (
        f"School days, {p.hours_text()}; up to {p.max_call_minutes} minutes; "
        f"{p.calls_per_pupil_per_week} call a week per pupil; parental consent in writing; "
        f"a second member of staff; {', '.join(p.platforms)} only."
    )
    return Message(
        "What I can do: /book-call, /my-calls, /consent, /concern",
        (Section("\n".join(lines)), Context((rules,))),
    )


class Bot:
    def __init__(self, core: Core, directories: dict[str, Directory] | None = None):
        self.core = core
        self.directories = directories or {}
        self._concerns: ConcernHooks | None = None
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._actors: dict[tuple[str, str, str, str], tuple[float, Staff | None]] = {}

    def use_concerns(self, hooks: ConcernHooks) -> None:
        self._concerns = hooks

    @property
    def concerns(self) -> ConcernHooks | None:
        return self._concerns

    async def sweep(self) -> int:
        """Every periodic step that is due: booking reminders and expiries, concern chasing."""
        done = await run_booking_sweeps(self.core)
        if self._concerns is not None:
            done += await self._concerns.sweep()
        return done

    async def handle(self, i: Interaction) -> list[Effect]:
        """Route one interaction; a delivery id seen before is ignored, and text that no
        database or JSON encoder takes (a lone surrogate) is refused politely.

        Repeats are caught in memory first. Clicks and form submissions change things, so
        their ids are also claimed in the database: a retry after a restart, or on another
        replica, is still processed only once. Commands only read, so memory is enough."""
        if not i.readable():
            log.info("refused an interaction with unreadable text on %s", i.platform)
            return say(UNREADABLE)
        key = (i.platform, (i.delivery_id or "")[:200])
        stateful = i.kind in ("action", "submit")
        if i.delivery_id:
            if key in self._recent:
                log.info("ignored repeated delivery on %s", i.platform)
                return []
            self._recent[key] = None
            if len(self._recent) > RECENT_DELIVERIES:
                self._recent.popitem(last=False)
            if stateful and not await self._first_delivery(i):
                log.info("ignored repeated delivery on %s", i.platform)
                return []
        try:
            return await self._route(i)
        except BaseException:
            if i.delivery_id:  # the attempt failed: let the platform's retry through
                self._recent.pop(key, None)
                if stateful:
                    await self._forget_delivery(i)
            raise

    async def actor(self, i: Interaction, fresh: bool = False) -> Staff | None:
        """The staff member behind the interaction, or None if they are not on the roster.

        Matches are kept for ACTOR_SECONDS, so a burst of clicks costs one look-up; pass
        ``fresh`` where a stale role would matter (safeguarding decisions)."""
        key = (i.platform, i.actor.tenant, i.actor.user_id, (i.actor.email or "").lower())
        hit = self._actors.get(key)
        if hit is not None and not fresh and hit[0] > time.monotonic():
            return hit[1]
        async with self.core.db.reading() as s:
            found, staff = await known_staff(s, i.actor)
        if not found:
            email = i.actor.email
            directory = self.directories.get(i.platform)
            if not email and directory is not None:
                email = await directory.email_for(i.actor)  # network: outside any transaction
            async with self.core.db.transaction() as s:
                staff = await remember(s, i.actor, email, self.core.now())
        if staff is not None:
            if len(self._actors) > RECENT_DELIVERIES:
                self._actors.clear()
            self._actors[key] = (time.monotonic() + ACTOR_SECONDS, staff)
        return staff

    async def _route(self, i: Interaction) -> list[Effect]:
        if self._concerns is not None and self._concerns.claims(i):
            # Who may see a concern is decided on the roster as it is now, never a cached copy.
            return await self._concerns.handle(i, await self.actor(i, fresh=True))
        staff = await self.actor(i)
        if i.kind == "options":
            async with self.core.db.reading() as s:
                if staff is None:
                    return [Options(())]
                if i.value == "staff":
                    return [Options(tuple(await staff_options(s, i.text)))]
                return [Options(tuple(await pupils.search(s, i.text)))]
        if i.kind in ("install",):
            return [Reply(help_message(self.core))]
        if staff is None:
            return say(NOT_ON_ROSTER)
        if i.kind == "command":
            return await self._command(i, staff)
        if i.kind == "message":
            word = i.text.strip().lstrip("/").split(" ", 1)[0].lower()
            if word in COMMANDS and word != "help":
                rest = i.text.strip().lstrip("/")[len(word) :].strip()
                return await self._command(
                    Interaction(
                        platform=i.platform,
                        kind="command",
                        actor=i.actor,
                        name=word,
                        text=rest,
                        conversation=i.conversation,
                    ),
                    staff,
                )
            return [Reply(help_message(self.core))]
        if i.kind == "action":
            handler = self._actions.get(i.name)
            if handler is None:
                return say("That button is no longer in use.")
            return await handler(self, i, staff)
        if i.kind == "submit":
            handler = self._submits.get(i.name)
            if handler is None:
                return say("That form is no longer in use.")
            return await handler(self, i, staff)
        return []

    async def _command(self, i: Interaction, staff: Staff) -> list[Effect]:
        name = i.name.lstrip("/").lower()
        if name == "book-call":
            return [OpenForm(booking_svc.booking_form(self.core))]
        if name == "my-calls":
            return [Ephemeral(await self.my_calls_message(staff))]
        if name == "consent":
            word = i.text.strip().lower()
            if word.startswith("withdraw"):
                return [OpenForm(consent.withdraw_form())]
            if word.startswith("letter"):
                return [Ephemeral(parent_letter.letter_message(self.core.policy))]
            return [OpenForm(consent.consent_form())]
        if name == "help":
            return [Ephemeral(help_message(self.core))]
        return say(f"I don't know /{name[:30]}. Try /book-call, /my-calls, /consent or /concern.")

    # ----- bookings -----

    async def my_calls_message(self, staff: Staff) -> Message:
        calls = await booking_svc.my_calls(self.core, staff)
        zone = self.core.policy.zone
        now = self.core.now()
        if not calls:
            text = "You have no upcoming calls. Book one with /book-call."
            return Message(text, (Section(text),))
        blocks: list[Section | Actions | Context] = [Section("**Your calls**")]
        async with self.core.db.reading() as s:
            logged = set(
                (
                    await s.execute(
                        select(CallLog.booking_id).where(
                            CallLog.booking_id.in_([b.id for b in calls])
                        )
                    )
                ).scalars()
            )
            for b in calls:
                host = await s.get(Staff, b.host_id)
                co = await s.get(Staff, b.cohost_id) if b.cohost_id else None
                assert host is not None
                role = "You host" if b.host_id == staff.id else f"{esc(host.name)} hosts"
                status = {"awaiting_cohost": "waiting for co-host", "confirmed": "confirmed"}[
                    b.status
                ]
                past = b.ends_at <= now
                if past:
                    status = "log written" if b.id in logged else "log still to write"
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
                if buttons:
                    blocks.append(Actions(tuple(buttons)))
        return Message(f"You have {len(calls)} call(s).", tuple(blocks))

    async def _submit_booking(self, i: Interaction, staff: Staff) -> list[Effect]:
        res = await booking_svc.create_booking(self.core, staff, i.values)
        if res.errors:
            return [FormErrors(res.errors)]
        assert res.booking is not None
        b = res.booking
        answer_by = b.starts_at - timedelta(minutes=self.core.policy.cohost_answer_by_minutes)
        msg = notices.booked_for_host(b, staff, res.cohost, self.core.policy.zone, answer_by)
        return [CloseForm(), Reply(msg)]

    async def _cancel(self, i: Interaction, staff: Staff) -> list[Effect]:
        text, b = await booking_svc.cancel(self.core, staff, _int(i.value))
        if b is None or b.host_id != staff.id:
            return say(text)
        # The host clicked Cancel in their list of calls: show the list without it.
        return [UpdateMessage(await self.my_calls_message(staff)), *say(text)]

    async def _rebook(self, i: Interaction, staff: Staff) -> list[Effect]:
        async with self.core.db.transaction() as s:
            b = await s.get(Booking, _int(i.value))
            if b is None or b.host_id != staff.id:
                return say("Only the host can book that call again.")
            local = b.starts_at.astimezone(self.core.policy.zone)
            initial: dict[str, str | tuple[str, ...]] = {
                "pupils": tuple(bp.pupil.upn for bp in b.pupils),
                "kind": b.kind,
                "date": local.date().isoformat(),
                "start": f"{local:%H:%M}",
                "duration": str(int((b.ends_at - b.starts_at).total_seconds() // 60)),
                "platform": b.platform,
                "plan": b.plan,
            }
        return [OpenForm(booking_svc.booking_form(self.core, initial))]

    async def _cohost(self, i: Interaction, staff: Staff) -> list[Effect]:
        ans = await cohost.answer(self.core, staff, _int(i.value), i.name == "cohost.accept")
        out: list[Effect] = []
        if ans.message is not None and i.message_ref:
            out.append(UpdateMessage(ans.message))
        out.extend(say(ans.text))
        return out

    # ----- checklist and log -----

    async def _checklist_open(self, i: Interaction, staff: Staff) -> list[Effect]:
        err, msg = await checklist.view(self.core, staff, _int(i.value))
        return [Reply(msg)] if msg is not None else say(err or "Could not open the checklist.")

    async def _checklist_tick(self, i: Interaction, staff: Staff) -> list[Effect]:
        booking_id, _, key = i.value.partition(":")
        err, msg = await checklist.tick(self.core, staff, _int(booking_id), key)
        if err or msg is None:
            return say(err or "Could not tick that.")
        return [UpdateMessage(msg)] if i.message_ref else [Reply(msg)]

    async def _log_open(self, i: Interaction, staff: Staff) -> list[Effect]:
        err, form = await calllog.open_form(self.core, staff, _int(i.value))
        return [OpenForm(form)] if form is not None else say(err or "Could not open the log.")

    async def _log_submit(self, i: Interaction, staff: Staff) -> list[Effect]:
        res = await calllog.save(self.core, staff, _int(i.state.get("booking_id", "")), i.values)
        if res.errors:
            return [FormErrors(res.errors)]
        if res.worrying and self._concerns is not None and res.booking is not None:
            return [*say(res.message), *await self._concerns.open_for_booking(res.booking, staff)]
        return [CloseForm(), *say(res.message)]

    # ----- consent -----

    async def _consent_submit(self, i: Interaction, staff: Staff) -> list[Effect]:
        res = await consent.grant_from_form(self.core, staff, i.values)
        if res.errors:
            return [FormErrors(res.errors)]
        assert res.pupil is not None
        return [CloseForm(), *say(f"Recorded written consent for {res.pupil.short_name}.")]

    async def _consent_withdraw(self, i: Interaction, staff: Staff) -> list[Effect]:
        upn = one(i.values, "pupil")
        err = await consent.withdraw(self.core, upn, staff)
        if err:
            return [FormErrors({"pupil": err})]
        return [
            CloseForm(),
            *say("Consent withdrawn. That pupil can't be booked until it is given again."),
        ]

    _actions: dict[str, Callable[[Bot, Interaction, Staff], Awaitable[list[Effect]]]] = {
        "cohost.accept": _cohost,
        "cohost.decline": _cohost,
        "booking.cancel": _cancel,
        "booking.rebook": _rebook,
        "checklist.open": _checklist_open,
        "checklist.tick": _checklist_tick,
        "calllog.open": _log_open,
    }
    _submits: dict[str, Callable[[Bot, Interaction, Staff], Awaitable[list[Effect]]]] = {
        booking_svc.FORM_ID: _submit_booking,
        calllog.FORM_ID: _log_submit,
        consent.FORM_ID: _consent_submit,
        consent.WITHDRAW_FORM_ID: _consent_withdraw,
    }

    # ----- repeated deliveries -----

    async def _first_delivery(self, i: Interaction) -> bool:
        assert i.delivery_id is not None
        try:
            async with self.core.db.transaction() as s:
                await s.execute(
                    insert(ProcessedDelivery).values(
                        platform=i.platform, delivery_id=i.delivery_id[:200], at=self.core.now()
                    )
                )
            return True
        except IntegrityError:
            return False

    async def _forget_delivery(self, i: Interaction) -> None:
        # The first attempt failed: let the platform's retry be processed.
        async with self.core.db.transaction() as s:
            await s.execute(
                delete(ProcessedDelivery).where(
                    ProcessedDelivery.platform == i.platform,
                    ProcessedDelivery.delivery_id == (i.delivery_id or "")[:200],
                )
            )


class ConcernHooks:
    """Implemented by the concerns flow (chatbot.services.concerns) and plugged into the Bot."""

    def claims(self, i: Interaction) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    async def handle(self, i: Interaction, staff: Staff | None) -> list[Effect]:  # pragma: no cover
        raise NotImplementedError

    async def open_for_booking(self, b: Booking, staff: Staff) -> list[Effect]:  # pragma: no cover
        raise NotImplementedError

    async def sweep(self) -> int:  # pragma: no cover
        raise NotImplementedError


def _int(value: str) -> int:
    """A button's record id; one that can't be an id becomes -1, which matches no row, so the
    service answers as for any call that no longer exists."""
    found = record_id(value)
    return -1 if found is None else found
