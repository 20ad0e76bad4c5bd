"""Slack adapter (slack-bolt AsyncApp): Slack payloads -> Interaction -> Bot -> Effects -> Web API.

A thin translator. No business rule lives here: the core decides, this module only renders.

- HTTP at ``POST /slack/events`` (commands, interactivity, options and events on one URL).
  Every request's signature is checked on the raw bytes before anything parses them (wrong,
  missing or stale: 401), then its payload's shape (not what Slack sends: 400); see
  :mod:`adapters.slack.inbound`. Either way nothing is processed.
- Socket Mode when ``SLACK_APP_TOKEN`` is set (no public URL needed); envelopes get the same
  shape check, and one that fails it is acknowledged and dropped.
- Every interaction is handed to the core *before* the ack (``process_before_response``), so a
  safeguarding submission is committed before Slack is told it arrived and field errors can go
  back as ``response_action: errors``. Follow-up Web API calls for the same user (opening a
  modal, a direct message, editing the clicked message) run right after the ack.
- ``Interaction.delivery_id`` (the event id, or the trigger id of a command, click or submission)
  makes the core ignore a delivery it has already processed (``X-Slack-Retry-Num`` retries).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from adapters.server import Runtime
from adapters.slack.blocks import (
    action_name,
    errors_payload,
    form_view,
    home_view,
    message_payload,
    options_payload,
    popup_view,
    view_state,
    view_values,
)
from adapters.slack.inbound import Refused, check_payload, is_ssl_check, signed_text
from adapters.slack.messenger import SlackDirectory, SlackMessenger, web_client
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
from chatbot.interaction import ConversationRef, Interaction, SubmittedValue, UserRef
from chatbot.ui import Form, Message, Section, esc

log = logging.getLogger("chatbot.slack")

EVENTS_PATH = "/slack/events"
SORRY = "Sorry, something went wrong on our side. Please try again in a minute."
NOT_CONFIGURED = """Slack is not configured, so POST /slack/events is switched off.
To connect Slack:
  1. Create the app from manifest/slack.yaml (chatbot manifest slack --url https://YOUR-HOST).
  2. Install it to the workspace and set SLACK_BOT_TOKEN (xoxb-..., OAuth & Permissions).
  3. Set SLACK_SIGNING_SECRET (Basic Information) for HTTP, or SLACK_APP_TOKEN (xapp-...,
     connections:write) to use Socket Mode without a public URL.
  4. Set SLACK_DSL_CHANNEL_ID and SLACK_SLT_CHANNEL_ID and /invite the bot to both channels."""


def _missing(settings: Any) -> list[str]:
    missing = []
    if not settings.slack_bot_token:
        missing.append("SLACK_BOT_TOKEN")
    if not (settings.slack_signing_secret or settings.slack_app_token):
        missing.append("SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)")
    return missing


@dataclass(frozen=True)
class Origin:
    """Where an interaction came from: what the effects may be rendered onto."""

    user_id: str
    team_id: str
    trigger_id: str | None = None
    response_url: str | None = None
    channel_id: str | None = None
    message_ts: str | None = None
    ephemeral: bool = False
    view: dict[str, Any] | None = None  # the modal or Home view the click came from


class SlackAdapter:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.settings = runtime.settings
        self.client = web_client(self.settings)
        self.messenger = SlackMessenger(self.client, self.settings)
        self.directory = SlackDirectory(self.client)
        self.session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._socket: Any = None
        self._socket_task: asyncio.Task[None] | None = None
        secret = self.settings.slack_signing_secret
        self.verifier = SignatureVerifier(secret) if secret else None
        self.app = AsyncApp(
            client=self.client,
            signing_secret=secret or "",
            process_before_response=True,
            # handle_http checks every signature before bolt sees the request (bolt's own
            # check would parse the body first, and raise on hostile headers): once is enough.
            request_verification_enabled=False,
            logger=logging.getLogger("chatbot.slack.bolt"),
        )
        self.app.command(re.compile(r"^/.+"))(self.on_command)
        self.app.view(re.compile(r".*"))(self.on_submit)
        self.app.action(re.compile(r".*"))(self.on_action)
        self.app.options(re.compile(r".*"))(self.on_options)
        self.app.event("app_home_opened")(self.on_home_opened)

    @property
    def bot(self) -> Any:
        return self.runtime.bot

    # ----- lifecycle -----

    async def start(self, _app: web.Application | None = None) -> None:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            self.client.session = self.session
        if self.settings.slack_app_token and self._socket is None:
            self._socket = CheckedSocketModeHandler(self.app, self.settings.slack_app_token)
            # Connect in the background: the client keeps retrying until Slack answers, and the
            # server (Teams, /healthz, the outbox) must not wait for it.
            self._socket_task = asyncio.get_running_loop().create_task(self._connect_socket())

    async def _connect_socket(self) -> None:
        try:
            await self._socket.connect_async()
            log.info("Slack Socket Mode connected")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("Slack Socket Mode could not connect: %s", _describe(exc))

    async def stop(self, _app: web.Application | None = None) -> None:
        await self.wait_idle(timeout=5)
        if self._socket is not None:
            try:
                await asyncio.wait_for(self._socket.close_async(), timeout=5)
            except Exception:  # pragma: no cover - best effort on shutdown
                log.warning("Socket Mode did not close cleanly")
            if self._socket_task is not None:
                self._socket_task.cancel()
                await asyncio.gather(self._socket_task, return_exceptions=True)
            self._socket = None
            self._socket_task = None
        if self.session is not None:
            await self.session.close()
            self.session = None
            self.client.session = None

    async def wait_idle(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait for follow-up Web API calls already started (tests, shutdown)."""
        while self._tasks:
            pending = list(self._tasks)
            done, not_done = await asyncio.wait(pending, timeout=timeout)
            if not_done:
                log.warning("%s Slack follow-up call(s) still running", len(not_done))
                return

    async def handle_http(self, request: web.Request) -> web.Response:
        try:
            raw = await request.read()  # at most the server's client_max_size, else 413
        except web.RequestPayloadError:  # a body that can't be read (a broken gzip encoding)
            # Answer and hang up: left to itself aiohttp would read on after the answer, fail
            # again and log that as an unhandled error.
            request.content.feed_eof()
            refused = web.json_response({"error": "unreadable body"}, status=400)
            refused.force_close()
            return refused
        if is_ssl_check(raw):
            return web.Response(status=200)
        assert self.verifier is not None  # mounted only with a signing secret
        text = signed_text(self.verifier, request.headers, raw)
        if text is None:
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            # Bolt parses the body here (and reads ids out of it for its context), so what is
            # checked below is exactly what it routes.
            bolt_request = AsyncBoltRequest(
                body=text,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
            )
            check_payload(bolt_request.body)
        except Exception as exc:  # not JSON, not an object, or a field of the wrong shape
            log.warning("refused a signed Slack request: %s", _refusal(exc))
            return web.json_response({"error": "malformed request"}, status=400)
        bolt_response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    def _later(self, steps: list[Callable[[], Awaitable[None]]]) -> None:
        if not steps:
            return

        async def run() -> None:
            for step in steps:
                try:
                    await step()
                except Exception as exc:
                    log.error("Slack follow-up call failed: %s", _describe(exc))

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- inbound -----

    @staticmethod
    def _user(user_id: str, team_id: str, name: str = "") -> UserRef:
        return UserRef(platform="slack", user_id=user_id, tenant=team_id or "", display_name=name)

    @staticmethod
    def _conversation(channel_id: str | None) -> ConversationRef | None:
        if not channel_id:
            return None
        kind = "personal" if channel_id.startswith("D") else "channel"
        return ConversationRef("slack", channel_id, kind)  # type: ignore[arg-type]

    async def on_command(self, ack: Any, body: dict[str, Any]) -> None:
        origin = Origin(
            user_id=body.get("user_id", ""),
            team_id=body.get("team_id", ""),
            trigger_id=body.get("trigger_id"),
            response_url=body.get("response_url"),
            channel_id=body.get("channel_id"),
        )
        interaction = Interaction(
            platform="slack",
            kind="command",
            actor=self._user(origin.user_id, origin.team_id, body.get("user_name", "")),
            text=f"{body.get('command', '')} {body.get('text', '')}"[:3000],
            conversation=self._conversation(origin.channel_id),
            # No delivery id: a command only opens a form or shows a list (nothing is written),
            # and Slack does not retry slash commands, so no dedupe write is spent on them.
        )
        try:
            effects = await self.bot.handle(interaction)
        except Exception:
            log.exception("a slash command failed")
            await ack(text=SORRY)
            return
        ack_body: dict[str, Any] = {}
        steps: list[Callable[[], Awaitable[None]]] = []
        for effect in effects:
            if isinstance(effect, Ephemeral) and not ack_body:
                # The command's own response is private to the user: no channel membership needed.
                ack_body = {"response_type": "ephemeral", **message_payload(effect.message)}
            else:
                steps.extend(self._render(effect, origin))
        await ack(**ack_body)
        self._later(steps)

    async def on_submit(self, ack: Any, body: dict[str, Any]) -> None:
        view = body.get("view") or {}
        user = body.get("user") or {}
        team_id = (body.get("team") or {}).get("id") or user.get("team_id", "")
        origin = Origin(user_id=user.get("id", ""), team_id=team_id, view=view)
        values, pickers = view_values(view)
        for input_id in pickers:
            values[input_id] = self._picked(values[input_id], team_id)
        interaction = Interaction(
            platform="slack",
            kind="submit",
            actor=self._user(origin.user_id, team_id, user.get("username") or user.get("name", "")),
            name=str(view.get("callback_id", "")),
            values=values,
            state=view_state(view),
            delivery_id=f"trigger:{body['trigger_id']}",  # always there: see inbound.PAYLOADS
        )
        # No try/except: if the core fails, bolt answers 500 and the modal stays open with
        # the user's text in it, rather than closing as if the report had been saved.
        effects = await self.bot.handle(interaction)
        ack_body: dict[str, Any] | None = None
        steps: list[Callable[[], Awaitable[None]]] = []
        for effect in effects:
            if ack_body is None and isinstance(effect, FormErrors):
                ack_body = {
                    "response_action": "errors",
                    "errors": errors_payload(effect.errors, view),
                }
            elif ack_body is None and isinstance(effect, OpenForm):
                ack_body = {"response_action": "update", "view": self._form_view(effect.form)}
            elif ack_body is None and isinstance(effect, Popup):
                ack_body = {
                    "response_action": "update",
                    "view": popup_view(effect.title, effect.message),
                }
            elif ack_body is None and isinstance(effect, CloseForm):
                ack_body = {}
            else:
                steps.extend(self._render(effect, origin))
        await ack(**(ack_body or {}))
        self._later(steps)

    async def on_action(self, ack: Any, body: dict[str, Any]) -> None:
        actions = body.get("actions") or []
        if not actions:
            await ack()
            return
        act = actions[0]
        user = body.get("user") or {}
        team_id = (body.get("team") or {}).get("id") or user.get("team_id", "")
        container = body.get("container") or {}
        channel_id = container.get("channel_id") or (body.get("channel") or {}).get("id")
        message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        view = body.get("view") if container.get("type") == "view" else None
        origin = Origin(
            user_id=user.get("id", ""),
            team_id=team_id,
            trigger_id=body.get("trigger_id"),
            response_url=body.get("response_url"),
            channel_id=channel_id,
            message_ts=message_ts,
            ephemeral=bool(container.get("is_ephemeral")),
            view=view,
        )
        if view is not None:
            ref = f"view:{view.get('id', '')}"
        elif channel_id and message_ts:
            ref = f"{channel_id}:{message_ts}"
        else:
            ref = None
        value = act.get("value")
        if value is None:
            value = (act.get("selected_option") or {}).get("value", "")
        interaction = Interaction(
            platform="slack",
            kind="action",
            actor=self._user(origin.user_id, team_id, user.get("username") or user.get("name", "")),
            name=action_name(str(act.get("action_id", ""))),
            value=str(value),
            conversation=self._conversation(channel_id),
            message_ref=ref,
            delivery_id=f"trigger:{origin.trigger_id}" if origin.trigger_id else None,
            surface=_surface(view),
        )
        try:
            effects = await self.bot.handle(interaction)
        except Exception:
            log.exception("action %s failed", interaction.name[:40])
            await ack()
            if origin.response_url:
                self._later([lambda: self._respond(origin.response_url or "", _say(SORRY))])
            return
        await ack()
        steps: list[Callable[[], Awaitable[None]]] = []
        for effect in effects:
            steps.extend(self._render(effect, origin))
        self._later(steps)

    async def on_options(self, ack: Any, body: dict[str, Any]) -> None:
        user = body.get("user") or {}
        team_id = (body.get("team") or {}).get("id") or user.get("team_id", "")
        interaction = Interaction(
            platform="slack",
            kind="options",
            actor=self._user(user.get("id", ""), team_id),
            name=str(body.get("block_id") or ""),  # the input's id
            value=_picker_kind(str(body.get("action_id") or "")),
            text=str(body.get("value", ""))[:100],
        )
        try:
            effects = await self.bot.handle(interaction)
        except Exception:
            log.exception("options lookup failed")
            effects = []
        found = next((e for e in effects if isinstance(e, Options)), Options(()))
        await ack(options=options_payload(found.options))

    async def on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("tab") != "home":
            return
        user_id = str(event.get("user", ""))
        effects = await self.bot.handle(
            Interaction(
                platform="slack",
                kind="home",
                actor=self._user(user_id, str(body.get("team_id", ""))),
                delivery_id=f"event:{body['event_id']}" if body.get("event_id") else None,
            )
        )
        origin = Origin(user_id=user_id, team_id=str(body.get("team_id", "")))
        self._later([step for e in effects for step in self._render(e, origin)])

    # ----- helpers for inbound -----

    @staticmethod
    def _picked(value: SubmittedValue, team_id: str) -> SubmittedValue:
        """A users picker's Slack user id(s) as people: the router asks Slack who they are."""
        if isinstance(value, list):
            return [UserRef("slack", str(v), team_id) for v in value if v]
        return UserRef("slack", str(value), team_id) if value else ""

    # ----- outbound: effects -> Web API calls -----

    def _render(self, effect: Effect, o: Origin) -> list[Callable[[], Awaitable[None]]]:
        """Web API calls for one effect, to run after the ack (in order)."""
        if isinstance(effect, Reply):
            return [lambda: self._dm(o.user_id, effect.message)]
        if isinstance(effect, Ephemeral):
            return [lambda: self._ephemeral(o, effect.message)]
        if isinstance(effect, OpenForm):
            return [lambda: self._open_form(o, effect.form)]
        if isinstance(effect, Popup):
            return [lambda: self._open_view(o, popup_view(effect.title, effect.message))]
        if isinstance(effect, UpdateMessage):
            return [lambda: self._update(o, effect.message)]
        if isinstance(effect, ShowHome):
            return [lambda: self._publish_home(o.user_id, effect.message)]
        if isinstance(effect, FormErrors):
            text = " ".join(effect.errors.values()) or "That could not be saved."
            return [lambda: self._ephemeral(o, _say(text))]
        if isinstance(effect, CloseForm | Options):
            return []
        log.warning("no Slack rendering for %s", type(effect).__name__)  # pragma: no cover
        return []  # pragma: no cover

    async def _dm(self, user_id: str, message: Message) -> None:
        # chat:write can post to a user id: Slack delivers it in the app's DM (Messages tab).
        await self.client.chat_postMessage(
            channel=user_id, unfurl_links=False, unfurl_media=False, **message_payload(message)
        )

    async def _ephemeral(self, o: Origin, message: Message) -> None:
        if o.response_url:
            await self._respond(o.response_url, message)
        elif o.channel_id and not o.channel_id.startswith("D"):
            await self.client.chat_postEphemeral(
                channel=o.channel_id, user=o.user_id, **message_payload(message)
            )
        else:
            await self._dm(o.user_id, message)

    async def _respond(self, url: str, message: Message, replace: bool = False) -> None:
        body: dict[str, Any] = {**message_payload(message)}
        if replace:
            body["replace_original"] = True
        else:
            body["response_type"] = "ephemeral"
            body["replace_original"] = False
        if self.session is None or self.session.closed:
            await self.start()
        assert self.session is not None
        async with self.session.post(url, json=body) as resp:
            if resp.status >= 300:
                log.warning("response_url answered HTTP %s", resp.status)

    def _form_view(self, form: Form) -> dict[str, Any]:
        # With Slack and Teams both in use, a colleague may not be in this Slack workspace.
        return form_view(form, roster_pickers=len(self.runtime.dispatcher.platforms) > 1)

    async def _open_form(self, o: Origin, form: Form) -> None:
        await self._open_view(o, self._form_view(form))

    async def _open_view(self, o: Origin, view: dict[str, Any]) -> None:
        if not o.trigger_id:
            log.warning("cannot open a modal without a trigger id")
            return
        if o.view is not None and o.view.get("type") == "modal":
            await self.client.views_push(trigger_id=o.trigger_id, view=view)
        else:
            await self.client.views_open(trigger_id=o.trigger_id, view=view)

    async def _update(self, o: Origin, message: Message) -> None:
        if o.view is not None and o.view.get("type") == "home":
            return  # the core sends the Home view afresh (ShowHome) after a click on it
        if o.view is not None:
            title = ((o.view.get("title") or {}).get("text")) or "Details"
            await self.client.views_update(
                view_id=o.view.get("id"), view=popup_view(title, message)
            )
        elif o.ephemeral and o.response_url:
            await self._respond(o.response_url, message, replace=True)
        elif o.channel_id and o.message_ts:
            await self.client.chat_update(
                channel=o.channel_id, ts=o.message_ts, **message_payload(message)
            )
        elif o.response_url:
            await self._respond(o.response_url, message, replace=True)
        else:
            await self._dm(o.user_id, message)

    async def _publish_home(self, user_id: str, message: Message) -> None:
        await self.client.views_publish(user_id=user_id, view=home_view(message))


def _picker_kind(action_id: str) -> str:
    """External selects carry their picker's kind as action id (see blocks._element)."""
    kind = action_name(action_id)
    return kind if kind in ("pupils", "pupil", "staff") else "pupils"


def _surface(view: dict[str, Any] | None) -> Literal["chat", "home", "modal"]:
    if view is None:
        return "chat"
    return "home" if view.get("type") == "home" else "modal"


class CheckedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, with the same payload check as ``POST /slack/events``.

    An envelope that fails it is acknowledged (so Slack does not send it again) and dropped."""

    def __init__(self, app: AsyncApp, app_token: str):
        super().__init__(app, app_token)
        # slack_sdk raises (and logs a traceback) turning an envelope whose payload is not an
        # object into a request; make it an empty object, which the check below refuses.
        self.client.message_listeners.insert(0, _payload_as_object)

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        try:
            check_payload(req.payload)
        except Refused as exc:
            log.warning("refused a Slack Socket Mode envelope: %s", exc)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        await super().handle(client, req)


async def _payload_as_object(_client: Any, message: dict[str, Any], _raw: str | None) -> None:
    if "payload" in message and not isinstance(message["payload"], dict):
        message["payload"] = {}


def _refusal(exc: Exception) -> str:
    """Why a request was refused, for the log: the field's path, never its contents."""
    return str(exc) if isinstance(exc, Refused) else f"unreadable payload ({type(exc).__name__})"


def _say(text: str) -> Message:
    """A message from plain text (field errors, apologies), never read as markup."""
    return Message(text, (Section(esc(text)),))


def _describe(exc: Exception) -> str:
    data = getattr(getattr(exc, "response", None), "data", None)
    if isinstance(data, dict) and data.get("error"):
        return f"{type(exc).__name__}: {data['error']}"
    return type(exc).__name__


SLACK: web.AppKey[SlackAdapter] = web.AppKey("slack", SlackAdapter)


async def _not_configured(request: web.Request) -> web.Response:
    return web.json_response(
        {"ok": False, "error": "slack_not_configured", "help": NOT_CONFIGURED}, status=503
    )


def mount(app: web.Application, runtime: Runtime) -> None:
    """Add ``POST /slack/events`` (and Socket Mode) and let the outbox deliver on Slack."""
    settings = runtime.settings
    if not settings.slack_enabled:
        if settings.slack_bot_token or settings.slack_signing_secret or settings.slack_app_token:
            log.warning(
                "Slack is half configured; missing %s.\n%s",
                ", ".join(_missing(settings)),
                NOT_CONFIGURED,
            )
        else:
            log.info(NOT_CONFIGURED)
        app.router.add_post(EVENTS_PATH, _not_configured)
        return
    adapter = SlackAdapter(runtime)
    app[SLACK] = adapter
    runtime.dispatcher.add(adapter.messenger)
    runtime.bot.directories["slack"] = adapter.directory
    if settings.slack_signing_secret:
        app.router.add_post(EVENTS_PATH, adapter.handle_http)
        log.info("Slack: HTTP requests at POST %s (signatures verified)", EVENTS_PATH)
    else:
        app.router.add_post(EVENTS_PATH, _not_configured)
    if settings.slack_app_token:
        log.info("Slack: Socket Mode (SLACK_APP_TOKEN is set)")
    for role, channel in (("DSL", settings.slack_dsl_channel), ("SLT", settings.slack_slt_channel)):
        if not channel:
            log.warning(
                "SLACK_%s_CHANNEL_ID is not set: %s alerts go to people directly", role, role
            )
    app.on_startup.append(adapter.start)
    app.on_cleanup.append(adapter.stop)
