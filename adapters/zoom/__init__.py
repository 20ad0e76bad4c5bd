"""Zoom adapter: the REST client behind the core's Meetings port, and Zoom's webhooks.

With ``ZOOM_ACCOUNT_ID``, ``ZOOM_CLIENT_ID`` and ``ZOOM_CLIENT_SECRET`` set, :func:`mount`
tells the core that confirmed Zoom calls get their meeting from the bot and schedules the
meetings worker (:mod:`chatbot.meetings.worker`) beside the outbox; with
``ZOOM_WEBHOOK_SECRET`` too, ``POST /zoom/events`` records who really joined. Without them
the bot works as before and the start-up log says so.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from aiohttp import web

from adapters.server import Runtime
from adapters.zoom.client import ZoomClient
from adapters.zoom.webhook import ZoomEvents
from chatbot.config import Settings
from chatbot.meetings import worker

log = logging.getLogger("chatbot.zoom")

EVENTS_PATH = "/zoom/events"
ZOOM: web.AppKey[ZoomClient] = web.AppKey("zoom", ZoomClient)
NOT_CONFIGURED = """Zoom is not connected: hosts set up their meetings by hand, as the checklist
says, and POST /zoom/events is switched off. To let the bot create each confirmed call's
meeting with the policy's settings and see who joins, set ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID,
ZOOM_CLIENT_SECRET and ZOOM_WEBHOOK_SECRET (README, "Connecting Zoom"); `chatbot zoom check`
says what is missing."""


def missing(settings: Settings) -> list[str]:
    """The Zoom settings not given, by their environment names."""
    return [
        name
        for name, value in (
            ("ZOOM_ACCOUNT_ID", settings.zoom_account_id),
            ("ZOOM_CLIENT_ID", settings.zoom_client_id),
            ("ZOOM_CLIENT_SECRET", settings.zoom_client_secret),
            ("ZOOM_WEBHOOK_SECRET", settings.zoom_webhook_secret),
        )
        if not value
    ]


async def _switched_off(request: web.Request) -> web.Response:
    return web.json_response({"error": "Zoom is not configured on this server"}, status=503)


def mount(app: web.Application, runtime: Runtime) -> None:
    settings = runtime.settings
    if not settings.zoom_configured:
        if len(missing(settings)) < 4:
            log.warning("Zoom is half configured; missing %s.", ", ".join(missing(settings)))
        log.info(NOT_CONFIGURED)
        app.router.add_post(EVENTS_PATH, _switched_off)
        return
    client = ZoomClient(settings)
    app[ZOOM] = client
    runtime.units.meetings = True
    # Zoom gives each confirmed call its join details, so hosts are not asked for them.
    runtime.units.mail = replace(runtime.units.mail, zoom_supplies_join=True)

    async def work() -> int:
        return await worker.run(runtime.units, client)

    runtime.extra_jobs["zoom"] = (work, settings.outbox_interval_seconds)

    async def close(_app: web.Application) -> None:
        await client.close()

    app.on_cleanup.append(close)
    log.info("Zoom: the bot creates each confirmed Zoom call's meeting (API %s)", client.api)
    if settings.zoom_webhook_secret:
        app.router.add_post(EVENTS_PATH, ZoomEvents(runtime, settings.zoom_webhook_secret).handle)
        log.info("Zoom: events at POST %s (signatures verified)", EVENTS_PATH)
    else:
        app.router.add_post(EVENTS_PATH, _switched_off)
        log.warning(
            "ZOOM_WEBHOOK_SECRET is not set: POST %s is switched off, so the bot can't see who "
            "joins calls (no co-host or overrun alerts, no pre-filled logs).",
            EVENTS_PATH,
        )
