"""A real `chatbot serve` process, connected to the loopback Zoom, is killed with SIGKILL after
Zoom has made a call's meeting and before the bot stored Zoom's answer. Another worker, once
the dead one's lease has run out, finds that meeting by the marker it carries and adopts it:
one meeting at Zoom, the host told once. (On PostgreSQL the process uses this test process's
schema through DATABASE_URL's options.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from adapters.zoom.client import ZoomClient
from chatbot.bootstrap import build_bot
from chatbot.config import Settings
from chatbot.consent import service as consent
from chatbot.meetings import worker
from chatbot.policy import default_policy
from chatbot.ports import FixedClock
from chatbot.roster import importer as roster
from chatbot.storage.migrate import upgrade
from chatbot.storage.models import AuditEvent, Booking, Meeting
from chatbot.uow import Units
from tests.adapters.test_replica_crash import replica_url
from tests.adapters.test_serve import free_port
from tests.adapters.test_zoom_setup import zoom_env
from tests.adapters.zoom_support import staff_users
from tests.conftest import COHOST, GOOD, HOST, PUPILS_CSV, STAFF_CSV, action, fresh_database, submit
from tests.doubles.zoom import FakeZoom


def next_school_day(units: Units, after: datetime) -> datetime:
    day = after.astimezone(units.policy.zone).date() + timedelta(days=2)
    while not units.policy.is_school_day(day):
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=units.policy.zone)


async def confirmed_call(db_url: str) -> tuple[Units, int]:
    """A migrated database with the school and one confirmed call, booked at the real time
    (the server process runs on the real clock), its meeting queued for Zoom."""
    db = await fresh_database(db_url, create=False)
    await upgrade(db)
    now = datetime.now(UTC).replace(microsecond=0)
    units = Units(db=db, policy=default_policy(), clock=FixedClock(now), meetings=True)
    await roster.import_staff(units, STAFF_CSV)
    await roster.import_pupils(units, PUPILS_CSV)
    async with units.write() as u:
        await consent.grant(
            u,
            upn="A123456789012",
            parent_email="parent.sam@home.test",
            received_at=now,
            evidence_kind="message_id",
            evidence="<abc@home.test> Re: video calls",
            actor=None,
        )
    start = next_school_day(units, now)
    bot = build_bot(units)
    values = {**GOOD, "date": start.date().isoformat(), "start": "10:00"}
    assert "CloseForm" in str(await bot.handle(submit(HOST, "book_call", values)))
    async with db.reading() as s:
        booking_id = int((await s.execute(select(Booking.id))).scalar_one())
    assert "Thank you" in str(await bot.handle(action(COHOST, "cohost.accept", str(booking_id))))
    return units, booking_id


async def test_serve_killed_between_zoom_create_and_store_makes_no_second_meeting(
    db_url: str, tmp_path: Path
) -> None:
    units, booking_id = await confirmed_call(db_url)
    zoom = FakeZoom(users=staff_users())
    await zoom.start()
    released = zoom.hold("POST")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "Microsoft", "TEAMS_", "CHATBOT_", "ZOOM_", "DATABASE_URL"))
    }
    env.update(
        zoom_env(zoom),
        DATABASE_URL=replica_url(db_url),
        CHATBOT_OUTBOX_INTERVAL_SECONDS="0.2",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - the server is its own process
            [sys.executable, "-m", "adapters.cli", "serve", "--host", "127.0.0.1"]
            + ["--port", str(free_port())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            await asyncio.wait_for(zoom.reached["POST"].wait(), 30)
        except TimeoutError:
            raise AssertionError(log.read_text(errors="replace")[-3000:]) from None
        assert len(zoom.meetings) == 1  # Zoom made it; its answer is on the way
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        released.set()
    async with units.db.reading() as s:
        row = (await s.execute(select(Meeting))).scalar_one()
    assert row.state == "creating" and row.zoom_id is None and row.claimed_by is not None

    # Another worker, once the dead process's lease has run out.
    assert row.claimed_until is not None
    later = Units(
        units.db, units.policy, FixedClock(row.claimed_until + timedelta(seconds=1)), meetings=True
    )
    client = ZoomClient(Settings(**zoom.settings()))
    try:
        assert await worker.run(later, client) == 1
    finally:
        await client.close()
        await zoom.stop()
    assert len(zoom.meetings) == 1
    assert len(zoom.called("POST", "/meetings")) == 1
    [meeting] = zoom.meetings.values()
    async with units.db.reading() as s:
        row = (await s.execute(select(Meeting))).scalar_one()
        actions = list((await s.execute(select(AuditEvent.action))).scalars())
    assert row.state == "ready" and row.zoom_id == str(meeting["id"])
    assert row.join_url == meeting["join_url"] and row.booking_id == booking_id
    assert "meeting.adopt" in actions and "meeting.create" not in actions
    served = log.read_text(errors="replace")
    assert "zoom" in served.lower() and meeting["password"] not in served
    await units.db.dispose()
