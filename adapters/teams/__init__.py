"""Teams adapter (botbuilder): ``POST /api/messages`` on the shared aiohttp server.

A thin translator: ``CloudAdapter`` authenticates each activity, :class:`TeamsHandler` turns it
into an :class:`~chatbot.interaction.Interaction` for ``runtime.bot`` and renders the Effects
as Adaptive Cards; :class:`TeamsMessenger` delivers the outbox. With no ``MicrosoftAppId`` the
endpoint runs in local mode for the Bot Framework Emulator (no authentication).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from aiohttp import web
from botbuilder.core import serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes

from adapters.runtime import Runtime
from adapters.teams.auth import CachingBotFrameworkAuthentication
from adapters.teams.handler import TeamsHandler, tenant_of
from adapters.teams.messenger import (
    AllowedHosts,
    ReferenceStore,
    TeamsDirectory,
    TeamsMessenger,
)
from adapters.teams.outbound import Outbound

log = logging.getLogger("chatbot.teams")

INVOKE_BUDGET_SECONDS = 4.0  # Teams wants invoke responses within 5 s
MESSAGE_BUDGET_SECONDS = 12.0  # and other activities answered within 15 s


@dataclass
class TeamsApp:
    runtime: Runtime
    auth: CachingBotFrameworkAuthentication
    adapter: CloudAdapter
    handler: TeamsHandler
    messenger: TeamsMessenger
    refs: ReferenceStore
    out: Outbound
    local_mode: bool
    background: set[asyncio.Task[object]] = field(default_factory=set)

    async def messages(self, request: web.Request) -> web.Response:
        if "application/json" not in request.headers.get("Content-Type", "").lower():
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

        header = request.headers.get("Authorization", "")
        try:
            auth = await self.auth.authenticate_request(activity, header)
        except Exception as exc:  # PermissionError, bad JWT, unreachable key endpoint...
            log.info("rejected an activity: %s", type(exc).__name__)
            return web.json_response({"error": "unauthorized"}, status=401)

        if not self.local_mode:
            want = self.runtime.settings.teams_tenant_id
            got = tenant_of(activity)
            if not want or got != want:
                log.warning("ignored an activity from another tenant (%s)", got[:40] or "none")
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

    def _finished(self, task: asyncio.Task[object]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Teams activity failed after the response: %r", task.exception())


TEAMS: web.AppKey[TeamsApp] = web.AppKey("teams", TeamsApp)


def build(runtime: Runtime) -> TeamsApp:
    settings = runtime.settings
    local_mode = not settings.teams_configured
    auth = CachingBotFrameworkAuthentication(settings)
    adapter = CloudAdapter(auth)
    refs = ReferenceStore(runtime.core)
    hosts = AllowedHosts(settings.teams_service_url_hosts)
    out = Outbound(auth, settings)
    handler = TeamsHandler(runtime, refs, hosts, out, authenticated=not local_mode)
    messenger = TeamsMessenger(out, refs, settings, hosts)
    return TeamsApp(runtime, auth, adapter, handler, messenger, refs, out, local_mode)


async def _switched_off(request: web.Request) -> web.Response:
    return web.json_response(
        {"error": "Teams is not configured on this server (no MicrosoftAppId)."}, status=503
    )


def mount(app: web.Application, runtime: Runtime) -> None:
    if runtime.settings.production and not runtime.settings.teams_app_id:
        # Never expose the unauthenticated Emulator endpoint on a production server.
        app.router.add_post("/api/messages", _switched_off)
        log.info("Teams: not configured; /api/messages is switched off in production mode.")
        return
    teams = build(runtime)
    app[TEAMS] = teams
    app.router.add_post("/api/messages", teams.messages)

    async def close(_app: web.Application) -> None:
        await teams.out.close()

    app.on_cleanup.append(close)
    runtime.bot.directories["teams"] = TeamsDirectory()
    if teams.local_mode:
        log.warning(
            "Teams: no MicrosoftAppId, so /api/messages runs in Bot Framework Emulator mode: "
            "requests are NOT authenticated and conversation references from them are stored "
            "unverified. Set MicrosoftAppId/MicrosoftAppPassword/MicrosoftAppTenantId for Teams."
        )
        return
    if not runtime.settings.teams_tenant_id:
        log.error("Teams: MicrosoftAppTenantId is not set, so every activity is refused.")
    for role, channel in (
        ("DSL", runtime.settings.teams_dsl_channel),
        ("SLT", runtime.settings.teams_slt_channel),
    ):
        if not channel:
            log.warning(
                "Teams: TEAMS_%s_CHANNEL_ID is not set; %s alerts go to people directly", role, role
            )
    runtime.dispatcher.add(teams.messenger)
    log.info("Teams: /api/messages authenticated for app %s", runtime.settings.teams_app_id)
