"""`chatbot serve`: run the aiohttp server until interrupted."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from aiohttp import web

from adapters.runtime import build_runtime
from adapters.server import build_app
from chatbot.config import Settings

log = logging.getLogger("chatbot.serve")


async def serve(settings: Settings, host: str, port: int, production: bool) -> int:
    if production:
        if not settings.teams_configured and not settings.slack_enabled:
            log.error(
                "--production needs MicrosoftAppId (Teams), or SLACK_BOT_TOKEN with "
                "SLACK_SIGNING_SECRET or SLACK_APP_TOKEN (Slack). Refusing to start without "
                "authentication."
            )
            return 2
        settings = replace(settings, production=True)
    runtime = await build_runtime(settings)
    app = build_app(runtime)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info(
        "listening on http://%s:%s (database: %s, messages via: %s)",
        host,
        port,
        runtime.core.db.dialect,
        ", ".join(runtime.dispatcher.platforms) or "nothing yet: no platform is configured",
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return 0
