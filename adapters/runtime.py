"""Builds a running bot from Settings: database, core, dispatcher, scheduler. Each platform
adapter, when mounted and configured, adds its Messenger to the dispatcher."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from chatbot.app import build_bot
from chatbot.bot import Bot
from chatbot.config import Settings
from chatbot.core import Core
from chatbot.outbox import Dispatcher
from chatbot.policy import load_policy
from chatbot.ports import Clock, SystemClock
from chatbot.scheduler import make_scheduler
from chatbot.storage.db import Database
from chatbot.storage.migrate import upgrade

log = logging.getLogger("chatbot.runtime")


@dataclass
class Runtime:
    settings: Settings
    core: Core
    bot: Bot
    dispatcher: Dispatcher
    extra_jobs: dict[str, tuple[Callable[[], Awaitable[object]], float]] = field(
        default_factory=dict
    )

    def jobs(self) -> dict[str, tuple[Callable[[], Awaitable[object]], float]]:
        s = self.settings
        jobs: dict[str, tuple[Callable[[], Awaitable[object]], float]] = {
            "outbox": (self.dispatcher.drain, s.outbox_interval_seconds),
            "sweeps": (self.bot.sweep, s.sweep_interval_seconds),
        }
        jobs.update(self.extra_jobs)
        return jobs

    def scheduler(self) -> AsyncIOScheduler:
        return make_scheduler(self.jobs())


def runtime_for(core: Core, settings: Settings | None = None) -> Runtime:
    """A Runtime around an existing Core (tests, the console)."""
    return Runtime(settings or Settings(), core, build_bot(core), Dispatcher(core.db, core.clock))


async def build_runtime(
    settings: Settings, clock: Clock | None = None, migrate: bool = True
) -> Runtime:
    policy = load_policy(settings.policy_path)
    db = Database(settings.database_url)
    if migrate:
        await upgrade(db)
    core = Core(db=db, policy=policy, clock=clock or SystemClock())
    return Runtime(settings, core, build_bot(core), Dispatcher(db, core.clock))
