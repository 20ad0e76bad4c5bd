"""Zoom on the server: the meetings worker and ``POST /zoom/events`` (see :mod:`adapters.zoom`)."""

from __future__ import annotations

import logging
from dataclasses import replace

from aiohttp import web

from adapters.server import Runtime
from adapters.zoom import EVENTS_PATH, NOT_CONFIGURED, missing
from adapters.zoom.client import ZoomClient
from adapters.zoom.webhook import ZoomEvents
from chatbot.meetings import worker

log = logging.getLogger("chatbot.zoom")

ZOOM: web.AppKey[ZoomClient] = web.AppKey("zoom", ZoomClient)


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
