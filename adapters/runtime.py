"""Builds a running bot from Settings: database, core, messenger, dispatcher, scheduler."""

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
from chatbot.ports import Clock, DeliveryError, Messenger, Role, StaffAddress, SystemClock
from chatbot.scheduler import make_scheduler
from chatbot.storage.db import Database
from chatbot.storage.migrate import upgrade
from chatbot.ui import Message

log = logging.getLogger("chatbot.runtime")


class NoPlatformMessenger:
    """Used while no platform is configured: every send fails softly, so notifications stay
    in the outbox until Slack or Teams is set up, instead of being marked delivered."""

    platform = "none"

    async def send_to_staff(self, to: StaffAddress, message: Message) -> str:
        raise DeliveryError("no_platform_configured")

    async def post_to_role(self, role: Role, message: Message) -> str:
        raise DeliveryError("no_platform_configured")

    async def update(self, ref: str, message: Message) -> None:
        raise DeliveryError("no_platform_configured")


@dataclass
class Runtime:
    settings: Settings
    core: Core
    bot: Bot
    messenger: Messenger
    dispatcher: Dispatcher
    extra_jobs: dict[str, tuple[Callable[[], Awaitable[object]], float]] = field(
        default_factory=dict
    )

    def jobs(self) -> dict[str, tuple[Callable[[], Awaitable[object]], float]]:
        s = self.settings
        jobs: dict[str, tuple[Callable[[], Awaitable[object]], float]] = {
            "outbox": (self.dispatcher.run_once, s.outbox_interval_seconds),
            "sweeps": (self.bot.sweep, s.sweep_interval_seconds),
        }
        jobs.update(self.extra_jobs)
        return jobs

    def scheduler(self) -> AsyncIOScheduler:
        return make_scheduler(self.jobs())

    def use_messenger(self, messenger: Messenger) -> None:
        self.messenger = messenger
        self.dispatcher.messenger = messenger


def runtime_for(
    core: Core, settings: Settings | None = None, messenger: Messenger | None = None
) -> Runtime:
    """A Runtime around an existing Core (tests, the console)."""
    m: Messenger = messenger or NoPlatformMessenger()
    return Runtime(
        settings or Settings(), core, build_bot(core), m, Dispatcher(core.db, core.clock, m)
    )


async def build_runtime(
    settings: Settings, clock: Clock | None = None, migrate: bool = True
) -> Runtime:
    policy = load_policy(settings.policy_path)
    db = Database(settings.database_url)
    if migrate:
        await upgrade(db)
    core = Core(db=db, policy=policy, clock=clock or SystemClock())
    bot = build_bot(core)
    messenger: Messenger = NoPlatformMessenger()
    return Runtime(settings, core, bot, messenger, Dispatcher(db, core.clock, messenger))
