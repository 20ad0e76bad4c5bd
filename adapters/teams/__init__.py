"""Teams adapter (botbuilder): ``POST /api/messages`` on the shared aiohttp server.

A thin translator: ``CloudAdapter`` authenticates each activity, :class:`TeamsHandler` turns it
into an :class:`~chatbot.interaction.Interaction` for ``runtime.bot`` and renders the Effects
as Adaptive Cards; :class:`TeamsMessenger` delivers the outbox.

Three modes (:func:`teams_mode`): authenticated (``MicrosoftAppId`` set); Bot Framework
Emulator mode, unauthenticated, only when asked for with ``chatbot serve --teams-emulator`` on a
loopback address; otherwise switched off (``/api/messages`` answers 503). In every mode an
activity whose ``serviceUrl`` is not an allowed host (:mod:`adapters.teams.hosts`) is refused
before anything is looked up or sent, and other tenants are refused when a tenant is set.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from botbuilder.core import serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes

from adapters.server import Runtime
from adapters.teams.auth import CachingBotFrameworkAuthentication
from adapters.teams.handler import TeamsHandler, tenant_of
from adapters.teams.hosts import AllowedHosts, describe, is_loopback, service_host
from adapters.teams.messenger import ReferenceStore, TeamsDirectory, TeamsMessenger
from adapters.teams.outbound import Outbound
from chatbot.config import Settings

log = logging.getLogger("chatbot.teams")

INVOKE_BUDGET_SECONDS = 4.0  # Teams wants invoke responses within 5 s
MESSAGE_BUDGET_SECONDS = 12.0  # and other activities answered within 15 s


@dataclass(frozen=True)
class TeamsMode:
    name: Literal["authenticated", "emulator", "off"]
    why: str  # for the start-up log and, when off, the 503 answer
    help: str = ""  # what to do about it, for the start-up log only


def teams_mode(settings: Settings) -> TeamsMode:
    """Which mode ``/api/messages`` runs in. Unauthenticated Emulator mode only when asked for
    and only where nobody else can reach it; anything else without an app id is switched off."""
    if settings.teams_app_id:
        return TeamsMode("authenticated", f"for app {settings.teams_app_id}")
    if not settings.teams_emulator:
        return TeamsMode(
            "off",
            "it has no MicrosoftAppId.",
            "Set MicrosoftAppId, MicrosoftAppPassword and MicrosoftAppTenantId for Teams, or run "
            "`chatbot serve --teams-emulator` to test with the Bot Framework Emulator on this "
            "machine.",
        )
    if settings.production:
        return TeamsMode("off", "Emulator mode is never used in production mode.")
    if not _loopback_listen_host(settings.listen_host):
        return TeamsMode(
            "off",
            "Emulator mode only runs on a loopback address.",
            f"--teams-emulator was given but the server listens on {settings.listen_host!r}, "
            "where others could reach the unauthenticated endpoint; use --host 127.0.0.1.",
        )
    return TeamsMode("emulator", f"on {settings.listen_host}")


def _loopback_listen_host(host: str) -> bool:
    return is_loopback(host.strip().lower().removeprefix("[").removesuffix("]"))


@dataclass
class TeamsApp:
    runtime: Runtime
    auth: CachingBotFrameworkAuthentication
    adapter: CloudAdapter
    handler: TeamsHandler
    messenger: TeamsMessenger
    refs: ReferenceStore
    out: Outbound
    hosts: AllowedHosts
    emulator: bool
    background: set[asyncio.Task[object]] = field(default_factory=set)

    async def messages(self, request: web.Request) -> web.Response:
        # The exact type, not a substring: a browser may send "text/plain;x=application/json"
        # to another origin without asking first.
        if request.content_type != "application/json":
            return web.json_response({"error": "expected application/json"}, status=415)
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "expected an activity"}, status=400)
        try:
            activity = Activity().deserialize(body)
        except Exception:
            return web.json_response({"error": "not an activity"}, status=400)
        if not activity.type:
            return web.json_response({"error": "activity has no type"}, status=400)
        if refused := self._refuse(request, activity):
            return refused

        # No header is None, not "": botbuilder's own "no token" refusal with an app id (its
        # other checks fail on "" with an AttributeError) and anonymous in Emulator mode.
        header = request.headers.get("Authorization") or None
        try:
            auth = await self.auth.authenticate_request(activity, header)
        except Exception as exc:  # PermissionError, bad JWT, unreachable key endpoint...
            log.info("rejected an activity: %s", type(exc).__name__)
            return web.json_response({"error": "unauthorized"}, status=401)

        if not self._tenant_allowed(activity):
            log.warning(
                "ignored an activity from another tenant (%s)", tenant_of(activity)[:40] or "none"
            )
            return web.json_response({"error": "tenant not allowed"}, status=403)

        task: asyncio.Task[object] = asyncio.ensure_future(
            self.adapter.process_activity(auth, activity, self.handler.on_turn)
        )
        budget = (
            INVOKE_BUDGET_SECONDS
            if activity.type == ActivityTypes.invoke
            else MESSAGE_BUDGET_SECONDS
        )
        done, _ = await asyncio.wait({task}, timeout=budget)
        if not done:  # answer now; the work finishes in the background
            self.background.add(task)
            task.add_done_callback(self._finished)
            return web.json_response({}, status=200 if activity.type == "invoke" else 202)
        try:
            invoke_response = task.result()
        except Exception:
            log.exception("Teams activity %s failed", activity.type)
            return web.json_response({}, status=200)
        if invoke_response:
            return web.json_response(
                serializer_helper(invoke_response.body), status=invoke_response.status
            )
        return web.Response(status=201)

    def _refuse(self, request: web.Request, activity: Activity) -> web.Response | None:
        """A 4xx, before anything is looked up or sent, for an activity whose service URL the
        bot must not call (Outbound refuses such calls too; this is what the sender sees) or,
        in Emulator mode, that did not come to a loopback name."""
        if service_host(activity.service_url) is None:
            return web.json_response({"error": "the activity has no valid serviceUrl"}, status=400)
        if not self.hosts.allows(activity.service_url):
            log.warning(
                "refused an activity: its service URL host %s is not allowed%s",
                describe(activity.service_url),
                " (Emulator mode: loopback only)" if self.emulator else "",
            )
            return web.json_response({"error": "serviceUrl not allowed"}, status=403)
        if self.emulator and not is_loopback(request.url.host or ""):
            # A web page whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own
            # Host; the Emulator sends localhost or 127.0.0.1.
            log.warning("refused an activity: Emulator mode only answers a loopback Host header")
            return web.json_response({"error": "Host not allowed"}, status=403)
        return None

    def _tenant_allowed(self, activity: Activity) -> bool:
        want = self.runtime.settings.teams_tenant_id
        if not want:  # authenticated without a tenant refuses everyone (logged at start-up)
            return self.emulator
        return tenant_of(activity) == want

    def _finished(self, task: asyncio.Task[object]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Teams activity failed after the response: %r", task.exception())


TEAMS: web.AppKey[TeamsApp] = web.AppKey("teams", TeamsApp)


def build(runtime: Runtime, emulator: bool) -> TeamsApp:
    settings = runtime.settings
    hosts = (
        AllowedHosts.emulator()
        if emulator
        else AllowedHosts.production(settings.teams_service_url_hosts)
    )
    auth = CachingBotFrameworkAuthentication(settings, hosts)
    adapter = CloudAdapter(auth)
    refs = ReferenceStore(runtime.units)
    out = Outbound(auth, settings, hosts)
    handler = TeamsHandler(runtime, refs, hosts, out)
    messenger = TeamsMessenger(out, refs, settings)
    return TeamsApp(runtime, auth, adapter, handler, messenger, refs, out, hosts, emulator)


def _switched_off(why: str) -> Handler:
    message = f"Teams is not configured on this server: {why}"

    async def switched_off(request: web.Request) -> web.Response:
        return web.json_response({"error": message}, status=503)

    return switched_off


def mount(app: web.Application, runtime: Runtime) -> None:
    settings = runtime.settings
    mode = teams_mode(settings)
    if mode.name == "off":
        app.router.add_post("/api/messages", _switched_off(mode.why))
        log_off = log.error if settings.teams_emulator else log.info  # asked for, not given
        log_off("Teams: switched off (/api/messages answers 503): %s %s", mode.why, mode.help)
        return
    teams = build(runtime, emulator=mode.name == "emulator")
    app[TEAMS] = teams
    app.router.add_post("/api/messages", teams.messages)

    async def close(_app: web.Application) -> None:
        await teams.out.close()

    app.on_cleanup.append(close)
    runtime.bot.directories["teams"] = TeamsDirectory(teams.out)
    # In Emulator mode too: the co-host request and the DSL alert reach the Emulator.
    runtime.dispatcher.add(teams.messenger)
    if teams.emulator:
        log.warning(
            "Teams: Bot Framework Emulator mode %s: /api/messages is NOT authenticated, and "
            "replies go only to a Bot Connector on this machine (loopback).",
            mode.why,
        )
        return
    if settings.teams_emulator:
        log.warning("Teams: --teams-emulator is ignored because MicrosoftAppId is set.")
    if not settings.teams_tenant_id:
        log.error("Teams: MicrosoftAppTenantId is not set, so every activity is refused.")
    for role, channel in (
        ("DSL", settings.teams_dsl_channel),
        ("SLT", settings.teams_slt_channel),
    ):
        if not channel:
            log.warning(
                "Teams: TEAMS_%s_CHANNEL_ID is not set; %s alerts go to people directly", role, role
            )
    log.info("Teams: /api/messages authenticated %s", mode.why)
