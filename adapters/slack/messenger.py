"""The Slack side of the core's ports: Messenger (used by the outbox) and Directory.

Retries belong to the outbox, so the Web API client has no retry handlers and every failure is
turned into a :class:`DeliveryError` (429 carries ``Retry-After``) or, for a role channel the
bot cannot post to, :class:`ChannelUnavailable` (the outbox then messages the people directly).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Generic, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import message_payload
from chatbot.config import Settings
from chatbot.interaction import UserRef
from chatbot.ports import ChannelUnavailable, DeliveryError, Role, StaffAddress
from chatbot.ui import Message

log = logging.getLogger("chatbot.slack")

DEFAULT_API_URL = "https://slack.com/api/"
# Message metadata naming the outbox row a message came from (posting it needs no extra scope).
METADATA_EVENT = "safe_video_outbox"
CHANNEL_ERRORS = {"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived"}
# Errors that no retry will fix (the outbox still keeps the row and logs it loudly).
PERMANENT_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "invalid_blocks",
    "msg_too_long",
    "users_not_found",
    "user_not_found",
    "message_not_found",
    "cant_update_message",
}


K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Answers from Slack's user directory, kept for a while: a busy morning of bookings would
    otherwise ask users.info about the same colleagues again and again, costing time in the
    3-second ack and counting against Slack's rate limits. Only successful answers are kept."""

    def __init__(self, seconds: float, size: int = 10_000):
        self.seconds = seconds
        self.size = size
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self.size:
            self._items.clear()  # crude, but bounded; a cold cache only costs look-ups
        self._items[key] = (time.monotonic() + self.seconds, value)

    def drop(self, key: K) -> None:
        self._items.pop(key, None)


DIRECTORY_SECONDS = 300.0


def web_client(settings: Settings, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    base = settings.slack_api_url or DEFAULT_API_URL
    if not base.endswith("/"):
        base += "/"
    # retry_handlers=[]: the outbox owns retries and backoff.
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=base,
        timeout=10,
        session=session,
        retry_handlers=[],
    )


def slack_error(exc: SlackApiError) -> str:
    data = exc.response.data if exc.response is not None else None
    if isinstance(data, dict):
        return str(data.get("error") or "unknown_error")
    return "unknown_error"


def delivery_error(exc: Exception, channel_errors: bool = False) -> DeliveryError:
    """Map a Web API failure to the core's DeliveryError."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code if exc.response is not None else 0
        if status == 429:
            headers = exc.response.headers or {}
            raw = headers.get("Retry-After") or headers.get("retry-after")
            try:
                retry_after = float(raw) if raw is not None else 30.0
            except (TypeError, ValueError):
                retry_after = 30.0
            return DeliveryError("rate_limited", retry_after=retry_after)
        if status >= 500:
            return DeliveryError(f"http_{status}")
        code = slack_error(exc)
        if channel_errors and code in CHANNEL_ERRORS:
            return ChannelUnavailable(code)
        return DeliveryError(code, permanent=code in PERMANENT_ERRORS)
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | SlackClientError | OSError):
        return DeliveryError(f"network:{type(exc).__name__}")
    return DeliveryError(type(exc).__name__)


class SlackMessenger:
    """Implements :class:`chatbot.ports.Messenger` with chat.postMessage / chat.update.

    Message refs are ``"<channel id>:<ts>"`` so a message can be edited in place later. Each
    message carries its outbox id in Slack message metadata."""

    platform = "slack"

    def __init__(self, client: AsyncWebClient, settings: Settings):
        self.client = client
        self.channels: dict[str, str] = {
            "dsl": settings.slack_dsl_channel,
            "slt": settings.slack_slt_channel,
        }
        self._user_ids: TTLCache[str, str] = TTLCache(DIRECTORY_SECONDS)

    async def _post(self, channel: str, message: Message, role: bool, outbox_id: int | None) -> str:
        extra: dict[str, Any] = {}
        if outbox_id is not None:
            # Hidden from people; lets anyone reading the channel's history (with the
            # metadata.message:read scope) recognise a message sent twice after a crash.
            extra["metadata"] = {
                "event_type": METADATA_EVENT,
                "event_payload": {"outbox_id": outbox_id},
            }
        try:
            resp = await self.client.chat_postMessage(
                channel=channel,
                unfurl_links=False,
                unfurl_media=False,
                **message_payload(message),
                **extra,
            )
        except Exception as exc:
            raise delivery_error(exc, channel_errors=role) from exc
        return f"{resp['channel']}:{resp['ts']}"

    async def user_id_for(self, email: str) -> str:
        key = email.lower()
        cached = self._user_ids.get(key)
        if cached is not None:
            return cached
        try:
            resp = await self.client.users_lookupByEmail(email=email)
        except Exception as exc:
            raise delivery_error(exc) from exc
        user_id = str(resp["user"]["id"])
        self._user_ids.put(key, user_id)
        return user_id

    async def send_to_staff(
        self, to: StaffAddress, message: Message, *, outbox_id: int | None = None
    ) -> str:
        looked_up = not to.platform_user_id
        user_id = to.platform_user_id or await self.user_id_for(to.email)
        # Posting to a user id delivers to the app's direct-message channel with them.
        try:
            return await self._post(user_id, message, role=False, outbox_id=outbox_id)
        except DeliveryError:
            if looked_up:
                self._user_ids.drop(to.email.lower())  # look them up afresh on the retry
            raise

    async def post_to_role(
        self, role: Role, message: Message, *, outbox_id: int | None = None
    ) -> str:
        channel = self.channels.get(role) or ""
        if not channel:
            raise ChannelUnavailable("channel_not_configured")
        try:
            return await self._post(channel, message, role=True, outbox_id=outbox_id)
        except ChannelUnavailable as exc:
            log.error(
                "SLACK %s CHANNEL %s UNREACHABLE (%s): invite the bot or fix SLACK_%s_CHANNEL_ID",
                role.upper(),
                channel,
                exc.kind,
                role.upper(),
            )
            raise

    async def update(self, ref: str, message: Message) -> None:
        channel, _, ts = ref.partition(":")
        if not channel or not ts:
            raise DeliveryError("bad_message_ref", permanent=True)
        try:
            await self.client.chat_update(channel=channel, ts=ts, **message_payload(message))
        except Exception as exc:
            raise delivery_error(exc) from exc


class SlackDirectory:
    """Implements :class:`chatbot.ports.Directory`: a Slack user's email via users.info
    (needs the ``users:read`` and ``users:read.email`` scopes)."""

    def __init__(self, client: AsyncWebClient):
        self.client = client
        self._profiles: TTLCache[str, dict[str, Any]] = TTLCache(DIRECTORY_SECONDS)

    async def profile(self, user_id: str) -> dict[str, Any] | None:
        cached = self._profiles.get(user_id)
        if cached is not None:
            return cached
        try:
            resp = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("users.info failed for a Slack user: %s", slack_error(exc))
            return None
        except Exception as exc:  # network: treat as unknown for now, never crash a request
            log.warning("users.info failed: %s", type(exc).__name__)
            return None
        user = resp.get("user") or {}
        if not isinstance(user, dict):
            return None
        self._profiles.put(user_id, user)
        return user

    async def email_for(self, user: UserRef) -> str | None:
        if user.email:
            return user.email
        info = await self.profile(user.user_id)
        if not info or info.get("deleted") or info.get("is_bot"):
            return None
        email = (info.get("profile") or {}).get("email")
        return str(email) if email else None
