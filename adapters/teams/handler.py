"""Teams activities -> Interaction -> ``runtime.bot.handle`` -> replies and cards.

Translation only: which command, form or button it was, and how each Effect looks on Teams.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import Activity, ChannelAccount

from adapters.runtime import Runtime
from adapters.teams import cards
from adapters.teams.hosts import AllowedHosts
from adapters.teams.messenger import (
    CURRENT_TURN,
    PLATFORM,
    ReferenceStore,
    card_json,
    message_json,
    text_json,
)
from adapters.teams.outbound import Outbound
from chatbot.bot import COMMANDS
from chatbot.effects import (
    CloseForm,
    Effect,
    Ephemeral,
    FormErrors,
    OpenForm,
    Options,
    Popup,
    Reply,
    UpdateMessage,
)
from chatbot.interaction import ConversationRef, Interaction, SubmittedValue, UserRef
from chatbot.ui import Form, Input, Option

log = logging.getLogger("chatbot.teams")

MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
TAG = re.compile(r"<[^>]+>")
OPTIONS_CACHE_SECONDS = 30.0
PUPIL_SEARCH_LIMIT = 50  # the core answers a pupil search with at most this many
CHOSEN_LOOKUPS = 30  # chosen pupils looked up one by one to keep them on a redrawn card
QUERY_MAX = 50


def tenant_of(activity: Activity) -> str:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = data.get("tenant") if isinstance(data.get("tenant"), dict) else {}
    tid = tenant.get("id") if tenant else None
    if not tid and activity.conversation is not None:
        tid = activity.conversation.tenant_id
    return str(tid or "")


def channel_of(activity: Activity) -> str:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    channel = data.get("channel") if isinstance(data.get("channel"), dict) else {}
    cid = channel.get("id") if channel else None
    if not cid and activity.conversation is not None and activity.conversation.id:
        cid = activity.conversation.id.split(";")[0]
    return str(cid or "")


def clean_text(text: str | None) -> str:
    """Message text without @mentions of the bot or HTML tags."""
    t = MENTION.sub(" ", text or "")
    t = TAG.sub(" ", t).replace("&nbsp;", " ")
    return " ".join(t.split())


def user_of(activity: Activity) -> UserRef:
    sender = activity.from_property or ChannelAccount(id="")
    return UserRef(
        platform=PLATFORM,
        user_id=str(sender.aad_object_id or sender.id or ""),
        tenant=tenant_of(activity),
        display_name=str(sender.name or ""),
    )


def is_personal(activity: Activity) -> bool:
    conv = activity.conversation
    return conv is None or conv.conversation_type in (None, "", "personal")


class TeamsHandler(TeamsActivityHandler):
    def __init__(
        self,
        runtime: Runtime,
        refs: ReferenceStore,
        hosts: AllowedHosts,
        out: Outbound,
    ):
        self.runtime = runtime
        self.out = out
        self.refs = refs
        self.hosts = hosts
        # Picker choices per person (the core decides who may see them), kept a few seconds.
        self._options_cache: dict[
            tuple[str, str, str, str, str], tuple[float, tuple[Option, ...]]
        ] = {}

    # ----- turn plumbing -----

    async def on_turn(self, turn_context: TurnContext) -> None:
        token = CURRENT_TURN.set(turn_context)
        try:
            await self._remember(turn_context.activity)
            await super().on_turn(turn_context)
        finally:
            CURRENT_TURN.reset(token)

    async def _remember(self, a: Activity) -> None:
        """Store where this conversation can be reached later (only called after the request
        was authenticated, or in Emulator mode where there is no authentication at all)."""
        if a.conversation is None or not a.conversation.id or not a.service_url:
            return
        if not self.hosts.allows(a.service_url):
            log.warning(
                "not storing a conversation reference for service URL host %s "
                "(not allowed; see TEAMS_SERVICE_URL_HOSTS)",
                (a.service_url or "")[:100],
            )
            return
        ref: dict[str, Any] = TurnContext.get_conversation_reference(a).serialize()
        ref.pop("activityId", None)  # proactive sends start new messages; keeps rows stable
        ctype = a.conversation.conversation_type
        if is_personal(a):
            user = user_of(a)
            if user.user_id:
                await self.refs.save(f"user:{user.user_id}", ref)
        elif ctype == "channel":
            channel = channel_of(a)
            if channel:
                chan_ref = dict(ref, conversation=dict(ref.get("conversation") or {}, id=channel))
                await self.refs.save(f"channel:{channel}", chan_ref)
        await self.refs.save(f"conv:{a.conversation.id.split(';')[0]}", ref)

    def _interaction(self, a: Activity, **kw: Any) -> Interaction:
        conv = a.conversation
        kind = (
            "personal"
            if is_personal(a)
            else (
                "channel" if conv is not None and conv.conversation_type == "channel" else "group"
            )
        )
        return Interaction(
            platform=PLATFORM,
            actor=user_of(a),
            delivery_id=a.id or None,
            conversation=ConversationRef(PLATFORM, str(conv.id if conv else ""), kind),  # type: ignore[arg-type]
            **kw,
        )

    async def _handle(
        self,
        ctx: TurnContext,
        i: Interaction,
        form: Form | None = None,
        values: dict[str, SubmittedValue] | None = None,
    ) -> None:
        effects = await self.runtime.bot.handle(i)
        await self._render(ctx, i, effects, form, values or {})

    # ----- inbound -----

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        a = turn_context.activity
        v = a.value
        if isinstance(v, dict) and isinstance(v.get("action"), str):
            ref = f"{a.conversation.id}|{a.reply_to_id}" if a.reply_to_id else None
            await self._handle(
                turn_context,
                self._interaction(
                    a,
                    kind="action",
                    name=v["action"][:100],
                    value=str(v.get("value", ""))[:200],
                    message_ref=ref,
                ),
            )
            return
        if isinstance(v, dict) and isinstance(v.get("form"), str):
            raw_state = v.get("state") if isinstance(v.get("state"), dict) else {}
            state = {str(k)[:100]: str(x)[:500] for k, x in raw_state.items()}
            form = cards.form_from_spec(v.get("spec"), state)
            values = cards.submitted_values(v, form)
            i = self._interaction(
                a, kind="submit", name=v["form"][:100], values=values, state=state
            )
            search = v.get(cards.SEARCH_KEY)
            if isinstance(search, str):  # the Search button of a pupil picker, not the form's
                query = v.get(cards.SEARCH_PREFIX + search)
                await self._search(turn_context, i, form, values, search[:100], query)
                return
            await self._handle(turn_context, i, form, values)
            return
        text = clean_text(a.text)
        word, _, rest = text.partition(" ")
        name = word.lstrip("/").lower()
        if name in COMMANDS:
            i = self._interaction(a, kind="command", name=name, text=rest.strip())
        else:
            i = self._interaction(a, kind="message", text=text)
        await self._handle(turn_context, i)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._handle(turn_context, self._interaction(turn_context.activity, kind="install"))

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        a = turn_context.activity
        added = [m for m in (a.members_added or []) if a.recipient and m.id == a.recipient.id]
        # Teams also sends installationUpdate, which says hello; the Emulator only sends this.
        if added and a.channel_id != "msteams":
            await self._handle(turn_context, self._interaction(a, kind="install"))

    # ----- outbound -----

    async def _reply(self, ctx: TurnContext, activity: dict[str, Any]) -> str:
        a = ctx.activity
        activity = dict(
            activity,
            channelId=a.channel_id,
            replyToId=a.id,
            conversation={"id": a.conversation.id},
            recipient={"id": a.from_property.id},
            **{"from": {"id": a.recipient.id, "name": a.recipient.name}},
        )
        return await self.out.send(a.service_url, a.conversation.id, activity, reply_to=a.id)

    async def _render(
        self,
        ctx: TurnContext,
        i: Interaction,
        effects: list[Effect],
        form: Form | None,
        values: dict[str, SubmittedValue],
    ) -> None:
        a = ctx.activity
        for e in effects:
            if isinstance(e, Reply | Ephemeral):
                await self._reply(ctx, message_json(e.message))
            elif isinstance(e, OpenForm):
                card = cards.form_card(e.form, await self._options(i, e.form))
                await self._private(ctx, card_json(card, e.form.title))
            elif isinstance(e, FormErrors):
                shown = e.form or form
                if shown is None:
                    text = " ".join(e.errors.values()) or "Please check the form."
                    await self._reply(ctx, text_json(text))
                    continue
                options = await self._options(i, shown, values)
                card = cards.form_card(shown, options, e.errors, _listed(shown, options, values))
                await self._private(ctx, card_json(card, "Please check the form"))
            elif isinstance(e, CloseForm):
                if a.reply_to_id and form is not None:
                    await self._update(
                        ctx,
                        card_json(cards.closed_card(form.title, "Sent. Thank you."), form.title),
                    )
            elif isinstance(e, UpdateMessage):
                if a.reply_to_id:
                    await self._update(ctx, message_json(e.message))
                else:
                    await self._reply(ctx, message_json(e.message))
            elif isinstance(e, Popup):
                await self._private(ctx, message_json(e.message, e.title))
            elif isinstance(e, Options):
                continue

    async def _update(self, ctx: TurnContext, activity: dict[str, Any]) -> None:
        a = ctx.activity
        await self.out.update(
            a.service_url,
            a.conversation.id,
            a.reply_to_id,
            dict(activity, conversation={"id": a.conversation.id}),
        )

    async def _private(self, ctx: TurnContext, activity: dict[str, Any]) -> None:
        """Send to the actor only: here if this is their personal chat, else in their
        personal chat with the bot (started if need be)."""
        a = ctx.activity
        if is_personal(a):
            await self._reply(ctx, activity)
            return
        user = user_of(a)
        ref = await self.refs.get(f"user:{user.user_id}")
        if ref is not None and ref.get("serviceUrl") == a.service_url:
            conversation_id = str(ref["conversation"]["id"])
        else:
            tenant = tenant_of(a)
            params: dict[str, Any] = {
                "bot": {"id": a.recipient.id},
                "members": [{"id": a.from_property.id}],
                "isGroup": False,
            }
            if tenant:
                params["tenantId"] = tenant
                params["channelData"] = {"tenant": {"id": tenant}}
            created = await self.out.call("POST", a.service_url, "/v3/conversations", params)
            conversation_id = str(created.get("id") or "")
        await self.out.send(a.service_url, conversation_id, activity)

    async def _search(
        self,
        ctx: TurnContext,
        i: Interaction,
        form: Form | None,
        values: dict[str, SubmittedValue],
        input_id: str,
        raw_query: Any,
    ) -> None:
        """A pupil picker's Search button: the same card again, with what was entered kept and
        the picker listing the pupils matching the query. Nothing is submitted to the core."""
        inp = next((x for x in form.inputs if x.id == input_id), None) if form else None
        if form is None or inp is None or not cards.searchable(inp):
            text = "That form has changed since it was sent. Please open it again."
            await self._reply(ctx, text_json(text))
            return
        query = " ".join(str(raw_query or "").split())[:QUERY_MAX]
        found: dict[str, tuple[Option, ...]] = {}
        if not query:
            note = "Type part of a pupil's name, class or UPN, then choose Search."
        else:
            found[inp.id] = await self._pupil_options(i, inp, query)
            n = len(found[inp.id])
            if n == 0:
                note = "No pupils match that search."
            elif n >= PUPIL_SEARCH_LIMIT:
                note = f"Showing the first {n} matches: type more to narrow the search."
            else:
                note = f"{n} {'match' if n == 1 else 'matches'}: choose from {inp.label} above."
        options = await self._options(i, form, values, found)
        card = cards.form_card(
            form,
            options,
            values=_listed(form, options, values),
            queries={inp.id: query},
            notes={inp.id: note},
        )
        if ctx.activity.reply_to_id:
            await self._update(ctx, card_json(card, form.title))
        else:
            await self._private(ctx, card_json(card, form.title))

    async def _options(
        self,
        i: Interaction,
        form: Form,
        values: dict[str, SubmittedValue] | None = None,
        found: dict[str, tuple[Option, ...]] | None = None,
    ) -> dict[str, tuple[Option, ...]]:
        """Choices for the form's staff and pupil pickers. A pupil picker lists the core's first
        pupils, or ``found`` (a search's matches) for it, plus the pupils already chosen in
        ``values`` so that a card drawn again keeps them selected."""
        values = values or {}
        found = found or {}
        out: dict[str, tuple[Option, ...]] = {}
        for inp in form.inputs:
            if inp.options:
                continue
            if inp.kind == "staff":
                out[inp.id] = await self._roster_staff(i)
            elif inp.kind in cards.PUPIL_KINDS:
                listed = found[inp.id] if inp.id in found else await self._pupil_options(i, inp)
                out[inp.id] = await self._with_chosen(i, inp, listed, values.get(inp.id))
        return out

    async def _with_chosen(
        self, i: Interaction, inp: Input, listed: tuple[Option, ...], value: SubmittedValue | None
    ) -> tuple[Option, ...]:
        """``listed`` with the chosen pupils it lacks put first, each asked of the core by
        UPN (so only pupils the core knows, with the core's labels)."""
        chosen = [value] if isinstance(value, str) else list(value or [])
        have = {o.value for o in listed}
        missing = list(dict.fromkeys(c for c in chosen if c and c not in have))
        extra: list[Option] = []
        for upn in missing[:CHOSEN_LOOKUPS]:
            matches = await self._pupil_options(i, inp, upn[:QUERY_MAX])
            extra.extend(o for o in matches if o.value == upn)
        return (*extra, *listed) if extra else listed

    async def _pupil_options(
        self, i: Interaction, inp: Input, query: str = ""
    ) -> tuple[Option, ...]:
        """A pupil picker's choices for ``query`` (its first pupils when empty)."""
        return await self._core_options(i, inp.id, inp.kind, query)

    async def _roster_staff(self, i: Interaction) -> tuple[Option, ...]:
        """The roster as choices for a staff picker."""
        return await self._core_options(i, "staff", "staff")

    async def _core_options(
        self, i: Interaction, name: str, kind: str, query: str = ""
    ) -> tuple[Option, ...]:
        """Choices asked of the core (which answers only staff on the roster), kept for a few
        seconds per person so a burst of forms does not repeat the query. Never shared between
        people: someone off the roster must not see what a colleague was shown."""
        key = (i.actor.tenant, i.actor.user_id, name, kind, query)
        now = time.monotonic()
        hit = self._options_cache.get(key) if i.actor.user_id else None
        if hit and now - hit[0] < OPTIONS_CACHE_SECONDS:
            return hit[1]
        effects = await self.runtime.bot.handle(
            Interaction(
                platform=PLATFORM,
                kind="options",
                actor=i.actor,
                name=name,
                value=kind,
                text=query,
                conversation=i.conversation,
            )
        )
        options = next((e.options for e in effects if isinstance(e, Options)), ())
        if len(self._options_cache) > 5000:
            self._options_cache.clear()
        self._options_cache[key] = (now, options)
        return options


def _listed(
    form: Form, options: dict[str, tuple[Option, ...]], values: dict[str, SubmittedValue]
) -> dict[str, SubmittedValue]:
    """``values`` without chosen pupils that are not among their picker's choices (a card
    cannot show them, and they are not pupils the core knows)."""
    out = dict(values)
    for inp in form.inputs:
        if not cards.searchable(inp) or inp.id not in out:
            continue
        listed = {o.value for o in options.get(inp.id, ())}
        v = out[inp.id]
        out[inp.id] = (
            [x for x in v if x in listed] if isinstance(v, list) else (v if v in listed else "")
        )
    return out
