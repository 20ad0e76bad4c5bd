"""The server: everything `chatbot serve` runs, assembled in one place.

One aiohttp application hosts Slack at ``POST /slack/events``, Teams at ``POST /api/messages``,
Zoom's events at ``POST /zoom/events`` and ``GET /healthz``; APScheduler runs the outbox and
every sweep the concepts registered.
:func:`build_runtime` makes the core (database, policy, router, dispatcher) from Settings and
:func:`build_app` mounts each configured platform on it; tests and benchmarks call the same two
functions, so they run the wiring the server runs.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text

from adapters.email import mail_setup
from adapters.email import mailbox as mail_mailbox
from adapters.email import transport as mail_transport
from chatbot.bootstrap import build_bot
from chatbot.config import Settings
from chatbot.mail.outbox import MailDispatcher
from chatbot.mail.poll import poll_mailbox
from chatbot.outbox import Dispatcher
from chatbot.policy import load_policy
from chatbot.ports import Clock, Mailbox, SystemClock
from chatbot.router import Bot
from chatbot.scheduler import make_scheduler
from chatbot.storage.db import Database
from chatbot.storage.migrate import upgrade
from chatbot.terms.calendar import warn_if_no_term_dates
from chatbot.uow import Units

log = logging.getLogger("chatbot.server")

Job = Callable[[], Awaitable[object]]


@dataclass
class Runtime:
    settings: Settings
    units: Units
    bot: Bot
    dispatcher: Dispatcher  # each configured platform's mount adds its Messenger
    extra_jobs: dict[str, tuple[Job, float]] = field(default_factory=dict)
    mailer: MailDispatcher | None = None  # when the school's mail is set up
    mailbox: Mailbox | None = None  # when replies are read from the Graph mailbox

    async def pump_mail(self) -> None:
        if self.mailer is not None:
            await self.mailer.drain()

    def jobs(self) -> dict[str, tuple[Job, float]]:
        s = self.settings
        jobs: dict[str, tuple[Job, float]] = {
            "outbox": (self.dispatcher.drain, s.outbox_interval_seconds)
        }
        for name, sweep in self.bot.registry.sweeps.items():
            jobs[name] = (lambda sweep=sweep: sweep(self.units), s.sweep_interval_seconds)
        if self.mailer is not None:
            jobs["mail"] = (self.mailer.drain, s.mail_interval_seconds)
        if self.mailbox is not None:
            mailbox = self.mailbox
            jobs["mailbox"] = (
                lambda: poll_mailbox(self.units, mailbox),
                s.graph_poll_minutes * 60,
            )
        jobs.update(self.extra_jobs)
        return jobs

    def scheduler(self) -> AsyncIOScheduler:
        return make_scheduler(self.jobs())


def runtime_for(units: Units, settings: Settings | None = None) -> Runtime:
    """A Runtime around an existing database and policy (tests, benchmarks, the console)."""
    settings = settings or Settings()
    email = mail_transport(settings)
    return Runtime(
        settings,
        units,
        build_bot(units),
        Dispatcher(units.db, units.clock),
        mailer=MailDispatcher(units, email) if email is not None else None,
        mailbox=mail_mailbox(settings, email),
    )


async def build_runtime(
    settings: Settings, clock: Clock | None = None, migrate: bool = True
) -> Runtime:
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    if migrate:
        await upgrade(db)
    units = Units(
        db=db,
        policy=load_policy(settings.policy_path),
        clock=clock or SystemClock(),
        mail=mail_setup(settings),
    )
    return runtime_for(units, settings)


RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        async with runtime.units.db.reading() as s:  # never queues for the write lock
            await s.execute(text("SELECT 1"))
    except Exception as exc:  # report, don't crash: the load balancer wants an answer
        return web.json_response({"ok": False, "database": type(exc).__name__}, status=503)
    return web.json_response(
        {
            "ok": True,
            "database": runtime.units.db.dialect,
            "messaging": runtime.dispatcher.platforms,
        }
    )


def build_app(runtime: Runtime, with_scheduler: bool = True) -> web.Application:
    """Mount every adapter on one app. Each adapter's ``mount`` adds its routes and, when the
    platform is configured, adds its Messenger to the outbox's dispatcher."""
    from adapters import slack, teams
    from adapters.zoom import app as zoom

    app = web.Application(client_max_size=1024 * 1024)
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    # Slack first: a direct message to someone not yet seen on either platform is tried there
    # first, because Slack can find anyone by email and Teams only people who installed the app.
    slack.mount(app, runtime)
    teams.mount(app, runtime)
    zoom.mount(app, runtime)

    if with_scheduler:

        async def scheduler_ctx(_app: web.Application) -> AsyncIterator[None]:
            scheduler = runtime.scheduler()
            scheduler.start()
            log.info("scheduler started: %s", ", ".join(runtime.jobs()))
            yield
            scheduler.shutdown(wait=False)

        app.cleanup_ctx.append(scheduler_ctx)

    async def close_db(_app: web.Application) -> None:
        await runtime.units.db.dispose()

    app.on_cleanup.append(close_db)
    return app


async def serve(
    settings: Settings, host: str, port: int, production: bool, teams_emulator: bool = False
) -> int:
    """`chatbot serve`: run the server until interrupted."""
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
    await warn_if_no_term_dates(runtime.units)  # else calls can be booked in the holidays
    runner = await start(runtime, port)
    settle_heap()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return 0


def settle_heap() -> None:
    """Take what start-up made (modules, the app, SQLAlchemy's compiled statements) out of the
    garbage collector's rounds: it lives as long as the process, and each full collection would
    walk all of it again. On the Teams bench this saved about a sixth of the CPU a request."""
    gc.collect()
    gc.freeze()


async def start(runtime: Runtime, port: int, with_scheduler: bool = True) -> web.AppRunner:
    """The server on ``runtime.settings.listen_host`` (the address Teams decided its mode on)."""
    app = build_app(runtime, with_scheduler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host = runtime.settings.listen_host
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info(
        "listening on http://%s:%s (database: %s, messages via: %s; email via: %s)",
        host,
        runner.addresses[0][1] if runner.addresses else port,
        runtime.units.db.dialect,
        ", ".join(runtime.dispatcher.platforms) or "nothing yet: no platform is configured",
        runtime.mailer.transport.name
        if runtime.mailer
        else "nothing (set SMTP_URL or GRAPH_MAILBOX)",
    )
    return runner
