"""APScheduler drives the periodic sweeps; the database decides what is due."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger("chatbot.scheduler")

Job = Callable[[], Awaitable[object]]


def _guarded(name: str, job: Job) -> Job:
    async def run() -> object:
        try:
            return await job()
        except Exception:  # a failing sweep is retried next tick; never kill the scheduler
            log.exception("sweep %s failed; it will run again next tick", name)
            return None

    return run


def make_scheduler(jobs: dict[str, tuple[Job, float]]) -> AsyncIOScheduler:
    """``jobs`` maps a name to (coroutine function, interval seconds). One instance of each
    job at a time; missed runs are coalesced into one (the sweeps catch up by themselves)."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    for name, (job, seconds) in jobs.items():
        scheduler.add_job(
            _guarded(name, job),
            "interval",
            seconds=seconds,
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    return scheduler
