"""Proactive delivery on Teams, conversation references in the database, and the Directory.

Teams only lets a bot message a person or channel it has a *conversation reference* for (the
service URL and conversation id it learnt from an earlier activity). They are stored in the
``conversation_reference`` table, so the outbox can still reach people after a restart:

- ``user:<aadObjectId>``: the personal chat with that person (what ``send_to_staff`` uses);
- ``channel:<channel id>``: a team channel (``TEAMS_DSL_CHANNEL_ID`` / ``TEAMS_SLT_CHANNEL_ID``);
- ``conv:<conversation id>``: any conversation, so a later ``update`` finds its service URL.

Message refs handed back to the outbox are ``"<conversation id>|<activity id>"``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, TypeVar

import aiohttp
from botbuilder.core import TurnContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from adapters.teams.cards import message_card
from adapters.teams.hosts import ServiceUrlRefused
from adapters.teams.outbound import ConnectorError, Outbound
from chatbot.config import Settings
from chatbot.interaction import UserRef
from chatbot.ports import ChannelUnavailable, DeliveryError, Role, StaffAddress
from chatbot.storage.models import ConversationReference
from chatbot.ui import Message, no_controls
from chatbot.uow import Units

log = logging.getLogger("chatbot.teams")

PLATFORM = "teams"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
RETRYABLE = (408, 412, 500, 502, 503, 504)
T = TypeVar("T")

# The turn being processed, so the Directory can ask Teams for the sender's profile.
CURRENT_TURN: ContextVar[TurnContext | None] = ContextVar("teams_turn", default=None)


def message_json(message: Message, title: str = "") -> dict[str, Any]:
    """A neutral Message as a Teams message activity: an Adaptive Card, or plain text if it has
    no blocks. ``summary`` carries the plain fallback for notifications."""
    if not message.blocks and not title:
        return text_json(message.text)
    return card_json(message_card(message, title), message.text)


def text_json(text: str) -> dict[str, Any]:
    """A text-only activity. Teams reads a message's ``text`` as markdown unless told
    ``textFormat: plain``, and the text may quote people."""
    return {"type": "message", "text": no_controls(text), "textFormat": "plain"}


def card_json(card: dict[str, Any], summary: str = "") -> dict[str, Any]:
    """A card activity. Its ``summary`` (the notification text) is plain text too."""
    act: dict[str, Any] = {
        "type": "message",
        "textFormat": "plain",
        "attachments": [{"contentType": CARD_TYPE, "content": card}],
    }
    if summary:
        act["summary"] = no_controls(summary)[:200]
    return act


def split_ref(ref: str) -> tuple[str, str]:
    conversation_id, _, activity_id = ref.rpartition("|")
    return conversation_id, activity_id


class ReferenceStore:
    """Conversation references in the database, with a small cache so an unchanged reference
    is not rewritten on every activity."""

    def __init__(self, units: Units):
        self.units = units
        self._written: dict[str, str] = {}

    async def save(self, key: str, reference: dict[str, Any]) -> None:
        blob = json.dumps(reference, sort_keys=True)
        if self._written.get(key) == blob:
            return
        for _attempt in range(2):
            try:
                async with self.units.db.transaction() as s:
                    row = (
                        await s.execute(
                            select(ConversationReference).where(
                                ConversationReference.platform == PLATFORM,
                                ConversationReference.key == key[:300],
                            )
                        )
                    ).scalar_one_or_none()
                    if row is None:
                        s.add(
                            ConversationReference(
                                platform=PLATFORM,
                                key=key[:300],
                                reference=reference,
                                updated_at=self.units.now(),
                            )
                        )
                    else:
                        row.reference = reference
                        row.updated_at = self.units.now()
                break
            except IntegrityError:  # another request stored it first: update that row
                continue
        self._written[key] = blob

    async def get(self, key: str) -> dict[str, Any] | None:
        async with self.units.db.reading() as s:
            row = (
                await s.execute(
                    select(ConversationReference.reference).where(
                        ConversationReference.platform == PLATFORM,
                        ConversationReference.key == key[:300],
                    )
                )
            ).scalar_one_or_none()
        return dict(row) if row else None

    async def any_service_url(self) -> str | None:
        async with self.units.db.reading() as s:
            rows = (
                await s.execute(
                    select(ConversationReference.reference)
                    .where(ConversationReference.platform == PLATFORM)
                    .order_by(ConversationReference.updated_at.desc())
                    .limit(20)
                )
            ).scalars()
            for r in rows:
                if isinstance(r, dict) and r.get("serviceUrl"):
                    return str(r["serviceUrl"])
        return None

    async def service_url_for(self, conversation_id: str) -> str | None:
        for key in (f"conv:{conversation_id}", f"conv:{conversation_id.split(';')[0]}"):
            ref = await self.get(key)
            if ref and ref.get("serviceUrl"):
                return str(ref["serviceUrl"])
        return await self.any_service_url()


def _retry_after(raw: str | None) -> float:
    try:
        return max(float(raw), 1.0) if raw is not None else 5.0
    except ValueError:
        return 5.0


async def connector_call(call: Awaitable[T], role: Role | None = None) -> T:
    """Runs one Bot Connector call, turning its failures into :class:`DeliveryError`s the
    outbox understands (429 honours Retry-After; 412/5xx are retried with backoff)."""
    try:
        return await call
    except ServiceUrlRefused:  # logged by Outbound; the reference will not change by itself
        raise DeliveryError("service_url_not_allowed", permanent=True) from None
    except ConnectorError as exc:
        status = exc.status
        if status == 429:
            raise DeliveryError("teams_429", retry_after=_retry_after(exc.retry_after)) from None
        if status in RETRYABLE:
            raise DeliveryError(f"teams_{status}") from None
        if role is not None and status in (403, 404):
            raise ChannelUnavailable(f"teams_channel_{status}") from None
        raise DeliveryError(f"teams_{status}") from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise DeliveryError(f"connector_unreachable:{type(exc).__name__}") from None


class TeamsMessenger:
    """The outbox's way onto Teams: personal chats from stored references, role channels from
    ``TEAMS_DSL_CHANNEL_ID`` / ``TEAMS_SLT_CHANNEL_ID``.

    The outbox id is not sent: Teams documents no activity field for an app's own data that it
    promises to keep and ignore, so a repeat on Teams is not marked."""

    platform = PLATFORM

    def __init__(self, out: Outbound, refs: ReferenceStore, settings: Settings):
        self.out = out
        self.refs = refs
        self.settings = settings

    def _check(self, service_url: Any) -> str:
        """A stored service URL (``Outbound`` decides whether it may be called)."""
        if not service_url:
            raise DeliveryError("no_service_url")
        return str(service_url)

    async def send_to_staff(
        self, to: StaffAddress, message: Message, *, outbox_id: int | None = None
    ) -> str:
        ref = await self.refs.get(f"user:{to.platform_user_id}") if to.platform_user_id else None
        if ref is None:
            log.warning(
                "staff %s has no Teams chat with the bot yet: they need to install the "
                "app (or message it once) before it can reach them",
                to.staff_id,
            )
            raise DeliveryError("no_conversation_reference")
        conversation_id = str(ref["conversation"]["id"])
        service_url = self._check(ref.get("serviceUrl"))
        activity_id = await connector_call(
            self.out.send(service_url, conversation_id, message_json(message))
        )
        return f"{conversation_id}|{activity_id}"

    async def post_to_role(
        self, role: Role, message: Message, *, outbox_id: int | None = None
    ) -> str:
        s = self.settings
        channel = s.teams_dsl_channel if role == "dsl" else s.teams_slt_channel
        if not channel:
            raise ChannelUnavailable("channel_not_configured")
        activity = message_json(message)
        ref = await self.refs.get(f"channel:{channel}")
        if ref is not None:
            service_url = self._check(ref.get("serviceUrl"))
            activity_id = await connector_call(self.out.send(service_url, channel, activity), role)
            return f"{channel}|{activity_id}"
        # Never heard from that channel: start a new thread in it, if we know a service URL.
        service_url = await self.refs.any_service_url()
        if not service_url:
            raise ChannelUnavailable("no_channel_reference")
        params: dict[str, Any] = {
            "isGroup": True,
            "channelData": {"channel": {"id": channel}},
            "activity": activity,
        }
        if s.teams_tenant_id:
            params["tenantId"] = s.teams_tenant_id
            params["channelData"]["tenant"] = {"id": s.teams_tenant_id}
        created = await connector_call(
            self.out.call("POST", self._check(service_url), "/v3/conversations", params), role
        )
        return f"{created.get('id', channel)}|{created.get('activityId', '')}"

    async def update(self, ref: str, message: Message) -> None:
        conversation_id, activity_id = split_ref(ref)
        if not conversation_id or not activity_id:
            raise DeliveryError("bad_message_ref", permanent=True)
        service_url = self._check(await self.refs.service_url_for(conversation_id))
        await connector_call(
            self.out.update(service_url, conversation_id, activity_id, message_json(message))
        )


class TeamsDirectory:
    """Email of the person sending the current activity, from their Teams profile."""

    def __init__(self, out: Outbound):
        self.out = out

    async def email_for(self, user: UserRef) -> str | None:
        ctx = CURRENT_TURN.get()
        if ctx is None or user.platform != PLATFORM:
            return None
        sender = ctx.activity.from_property
        member_id = user.user_id
        if sender is not None and user.user_id in (sender.aad_object_id, sender.id):
            member_id = sender.id
        a = ctx.activity
        conversation_id = a.conversation.id if a.conversation is not None else ""
        if not member_id or not conversation_id:
            return None
        try:
            member = await self.out.member(a.service_url, conversation_id, member_id)
        except Exception as exc:  # an unknown user is told plainly by the core
            log.warning("could not read the Teams profile of the sender (%s)", type(exc).__name__)
            return None
        email = member.get("email") or member.get("userPrincipalName")
        return str(email) if isinstance(email, str) and "@" in email else None
