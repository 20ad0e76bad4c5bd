"""Support for the Zoom tests (no tests here): the real server (adapters.server.build_app, as
`chatbot serve` builds it) with Zoom configured against the loopback FakeZoom, a recording
messenger for what people are told, and webhooks signed exactly as Zoom signs them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from adapters.server import Runtime, build_app, runtime_for
from chatbot.config import Settings
from chatbot.ports import FixedClock
from chatbot.storage.models import Booking, Meeting
from chatbot.uow import Units
from tests.conftest import COHOST, GOOD, HOST, action, submit
from tests.doubles.zoom import COMPLIANT, FakeZoom, webhook_headers
from tests.fakes import RecordingMessenger

EVENTS = "/zoom/events"


@dataclass
class Zoomed:
    url: str
    zoom: FakeZoom
    runtime: Runtime
    messenger: RecordingMessenger
    http: aiohttp.ClientSession
    clock: FixedClock

    async def work(self) -> None:
        """One tick of the server's scheduler: the Zoom worker, the sweeps, the outbox."""
        job, _ = self.runtime.jobs()["zoom"]
        await job()
        await self.runtime.bot.sweep()
        await self.runtime.dispatcher.drain()

    async def book(self, confirm: bool = True, **changes: object) -> int:
        effects = await self.runtime.bot.handle(submit(HOST, "book_call", {**GOOD, **changes}))
        assert "CloseForm" in str(effects), effects
        async with self.runtime.units.db.reading() as s:
            booking_id = (
                await s.execute(select(Booking.id).order_by(Booking.id.desc()).limit(1))
            ).scalar_one()
        if confirm:
            effects = await self.runtime.bot.handle(
                action(COHOST, "cohost.accept", str(booking_id))
            )
            assert "Thank you" in str(effects), effects
        return int(booking_id)

    async def meeting_row(self, booking_id: int) -> Meeting:
        async with self.runtime.units.db.reading() as s:
            m = (
                await s.execute(select(Meeting).where(Meeting.booking_id == booking_id))
            ).scalar_one()
            s.expunge(m)
            return m

    def the_meeting(self) -> dict[str, Any]:
        [meeting] = self.zoom.meetings.values()
        return meeting

    async def post_event(
        self, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None, **sign: Any
    ) -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        h = webhook_headers(raw, **sign) if headers is None else headers
        async with self.http.post(self.url + EVENTS, data=raw, headers=h) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text


def staff_users() -> dict[str, dict[str, Any]]:
    """Every staff member of the test school is a Zoom user with compliant settings."""
    emails = ("teacher", "colleague", "other", "slt", "dsl", "deputy", "head")
    return {f"{e}@school.test": dict(COMPLIANT) for e in emails}


@asynccontextmanager
async def running(core: Units, clock: FixedClock, **settings: Any) -> AsyncIterator[Zoomed]:
    zoom = FakeZoom(users=staff_users())
    await zoom.start()
    runtime = runtime_for(core, Settings(**zoom.settings(**settings)))
    messenger = RecordingMessenger()
    runtime.dispatcher.add(messenger)
    app = build_app(runtime, with_scheduler=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as http:
        try:
            yield Zoomed(f"http://127.0.0.1:{port}", zoom, runtime, messenger, http, clock)
        finally:
            await runner.cleanup()
            await zoom.stop()
