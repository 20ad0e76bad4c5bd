"""One aiohttp server: Slack at POST /slack/events, Teams at POST /api/messages,
GET /healthz, and the scheduler that runs the sweeps."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy import text

from adapters.runtime import Runtime

log = logging.getLogger("chatbot.server")

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        async with runtime.core.db.reading() as s:  # never queues for the write lock
            await s.execute(text("SELECT 1"))
    except Exception as exc:  # report, don't crash: the load balancer wants an answer
        return web.json_response({"ok": False, "database": type(exc).__name__}, status=503)
    return web.json_response(
        {
            "ok": True,
            "database": runtime.core.db.dialect,
            "messaging": runtime.dispatcher.platforms,
        }
    )


def build_app(runtime: Runtime, with_scheduler: bool = True) -> web.Application:
    """Mount every adapter on one app. Each adapter's ``mount`` adds its routes and, when the
    platform is configured, adds its Messenger to the outbox's dispatcher."""
    from adapters import slack, teams

    app = web.Application(client_max_size=1024 * 1024)
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    # Slack first: a direct message to someone not yet seen on either platform is tried there
    # first, because Slack can find anyone by email and Teams only people who installed the app.
    slack.mount(app, runtime)
    teams.mount(app, runtime)

    if with_scheduler:

        async def scheduler_ctx(_app: web.Application) -> AsyncIterator[None]:
            scheduler = runtime.scheduler()
            scheduler.start()
            log.info("scheduler started: %s", ", ".join(runtime.jobs()))
            yield
            scheduler.shutdown(wait=False)

        app.cleanup_ctx.append(scheduler_ctx)

    async def close_db(_app: web.Application) -> None:
        await runtime.core.db.dispose()

    app.on_cleanup.append(close_db)
    return app
