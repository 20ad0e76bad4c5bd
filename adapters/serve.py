"""`chatbot serve`: run the aiohttp server until interrupted."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from aiohttp import web

from adapters.runtime import Runtime, build_runtime
from adapters.server import build_app
from chatbot.config import Settings

log = logging.getLogger("chatbot.serve")


async def serve(
    settings: Settings, host: str, port: int, production: bool, teams_emulator: bool = False
) -> int:
    if production:
        if not settings.teams_configured and not settings.slack_enabled:
            log.error(
                "--production needs MicrosoftAppId (Teams), or SLACK_BOT_TOKEN with "
                "SLACK_SIGNING_SECRET or SLACK_APP_TOKEN (Slack). Refusing to start without "
                "authentication."
            )
            return 2
        settings = replace(settings, production=True)
    settings = replace(settings, listen_host=host, teams_emulator=teams_emulator)
    runtime = await build_runtime(settings)
    runner = await start(runtime, port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return 0


async def start(runtime: Runtime, port: int, with_scheduler: bool = True) -> web.AppRunner:
    """The server on ``runtime.settings.listen_host`` (the address Teams decided its mode on)."""
    app = build_app(runtime, with_scheduler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host = runtime.settings.listen_host
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info(
        "listening on http://%s:%s (database: %s, messages via: %s)",
        host,
        runner.addresses[0][1] if runner.addresses else port,
        runtime.core.db.dialect,
        runtime.messenger.platform,
    )
    return runner
