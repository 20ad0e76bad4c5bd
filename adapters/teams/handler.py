"""Teams activities -> Interaction -> ``runtime.bot.handle`` -> replies and cards.

Translation only: which command, form or button it was, and how each Effect looks on Teams.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import Activity, ChannelAccount

from adapters.server import Runtime
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
from chatbot.effects import (
    CloseForm,
    Effect,
    Ephemeral,
    FormErrors,
    OpenForm,
    Options,
    Popup,
    Reply,
    ShowHome,
    UpdateMessage,
)
from chatbot.interaction import ConversationRef, Interaction, UserRef
from chatbot.ui import Form

log = logging.getLogger("chatbot.teams")

MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
TAG = re.compile(r"<[^>]+>")
PUPIL_SEARCH_LIMIT = 50  # the core answers a pupil search with at most this many
QUERY_MAX = 50
REMEMBERED = 10_000  # conversations whose last reference is remembered in memory


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
        # Per conversation: where its last activity came from (see _remember).
        self._last_seen: dict[str, tuple[Any, ...]] = {}

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
        # The reference is built from these fields alone; when they are what this
        # conversation's last activity had, the stored one is current. Building and
        # serialising it again cost about a tenth of a turn.
        seen = (a.service_url, a.channel_id, a.locale, a.from_property, a.recipient, a.conversation)
        if self._last_seen.get(a.conversation.id) == seen:
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
        if len(self._last_seen) >= REMEMBERED:
            self._last_seen.clear()
        self._last_seen[a.conversation.id] = seen

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
            lists_choices=True,  # cards cannot search as the person types
            **kw,
        )

    async def _handle(self, ctx: TurnContext, i: Interaction) -> None:
        effects = await self.runtime.bot.handle(i)
        await self._render(ctx, i, effects)

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
            search = v.get(cards.SEARCH_KEY)
            if isinstance(search, str):  # the Search button of a pupil picker, not the form's
                query = v.get(cards.SEARCH_PREFIX + search)
                await self._search(turn_context, form, values, search[:100], query)
                return
            i = self._interaction(
                a, kind="submit", name=v["form"][:100], values=values, state=state, form=form
            )
            await self._handle(turn_context, i)
            return
        await self._handle(
            turn_context, self._interaction(a, kind="message", text=clean_text(a.text))
        )

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

    async def _render(self, ctx: TurnContext, i: Interaction, effects: list[Effect]) -> None:
        a = ctx.activity
        form = i.form
        for e in effects:
            if isinstance(e, Reply | Ephemeral):
                await self._reply(ctx, message_json(e.message))
            elif isinstance(e, OpenForm):
                card = cards.form_card(e.form)
                await self._private(ctx, card_json(card, e.form.title))
            elif isinstance(e, FormErrors):
                if e.form is None:
                    text = " ".join(e.errors.values()) or "Please check the form."
                    await self._reply(ctx, text_json(text))
                    continue
                card = cards.form_card(e.form, e.errors)
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
            elif isinstance(e, Options | ShowHome):
                continue  # Teams has no Home view; searches are drawn by _search

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
        form: Form | None,
        values: dict[str, Any],
        input_id: str,
        raw_query: Any,
    ) -> None:
        """A pupil picker's Search button: the same card again, with what was entered kept and
        the picker listing the pupils matching the query (both from the core)."""
        inp = next((x for x in form.inputs if x.id == input_id), None) if form else None
        if form is None or inp is None or not cards.searchable(inp):
            text = "That form has changed since it was sent. Please open it again."
            await self._reply(ctx, text_json(text))
            return
        query = " ".join(str(raw_query or "").split())[:QUERY_MAX]
        i = self._interaction(
            ctx.activity,
            kind="options",
            name=inp.id,
            value=inp.kind,
            text=query,
            values=values,
            form=form,
        )
        effects = await self.runtime.bot.handle(i)
        found = next((e.options for e in effects if isinstance(e, Options)), ())
        shown = next((e.form for e in effects if isinstance(e, OpenForm)), None)
        if shown is None:  # not on the roster: the core lists nothing
            text = "I can only search the pupil roster for staff on the school's roster."
            await self._reply(ctx, {"type": "message", "text": text})
            return
        chosen = values.get(inp.id)
        n = len(
            [o for o in found if o.value not in (chosen if isinstance(chosen, list) else [chosen])]
        )
        if not query:
            note = "Type part of a pupil's name, class or UPN, then choose Search."
        elif n == 0:
            note = "No pupils match that search."
        elif n >= PUPIL_SEARCH_LIMIT:
            note = f"Showing the first {n} matches: type more to narrow the search."
        else:
            note = f"{n} {'match' if n == 1 else 'matches'}: choose from {inp.label} above."
        card = cards.form_card(shown, queries={inp.id: query}, notes={inp.id: note})
        if ctx.activity.reply_to_id:
            await self._update(ctx, card_json(card, shown.title))
        else:
            await self._private(ctx, card_json(card, shown.title))
