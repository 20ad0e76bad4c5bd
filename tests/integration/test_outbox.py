"""The outbox delays and never loses: failures, outages, 429s, restarts, crashed dispatchers,
missing role channels, and message updates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from chatbot.effects import CloseForm
from chatbot.outbox import LEASE_SECONDS, MAX_BACKOFF_SECONDS, Dispatcher
from chatbot.ports import FixedClock, Role, StaffAddress
from chatbot.roster.identity import staff_by_email
from chatbot.router import Bot
from chatbot.storage.db import Database
from chatbot.storage.models import OutboxMessage
from chatbot.ui import Message
from chatbot.uow import Units
from tests.conftest import COHOST, GOOD, HOST, action, open_database, submit
from tests.fakes import RecordingMessenger


async def make_booking(bot: Bot) -> int:
    effects = await bot.handle(submit(HOST, "book_call", GOOD))
    assert isinstance(effects[0], CloseForm), effects
    async with bot.units.db.transaction() as s:
        [row] = (await s.execute(select(OutboxMessage))).scalars().all()
        assert row.thread_key is not None
        return int(row.thread_key.split(":")[1])


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.transaction() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def only_row(db: Database) -> OutboxMessage:
    [row] = await rows(db)
    return row


async def test_failure_delays_then_delivers_once(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    messenger: RecordingMessenger,
    dispatcher: Dispatcher,
) -> None:
    await make_booking(bot)
    messenger.fail_next = 1
    report = await dispatcher.drain()
    assert (report.delivered, report.failed) == (0, 1)
    row = await only_row(school.db)
    assert row.delivered_at is None and row.attempts == 1
    assert row.last_error == "server_error"
    assert row.due_at == clock.now() + timedelta(seconds=5)
    assert row.claimed_until is None
    assert messenger.sent == []

    # Not due yet: nothing is tried.
    clock.advance(seconds=4)
    assert (await dispatcher.drain()).failed == 0 and messenger.sent == []
    clock.advance(seconds=1)
    await dispatcher.drain()
    assert len(messenger.to(COHOST)) == 1
    row = await only_row(school.db)
    assert row.delivered_at == clock.now() and row.message_ref == "msg-1"
    assert row.platform == "console" and row.last_error is None

    clock.advance(hours=1)
    await dispatcher.drain()
    assert len(messenger.sent) == 1  # delivered once, never again


async def test_outage_backs_off_and_recovers(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    messenger: RecordingMessenger,
    dispatcher: Dispatcher,
) -> None:
    await make_booking(bot)
    messenger.down = True
    delays = []
    for _ in range(10):
        await dispatcher.run_once()
        row = await only_row(school.db)
        assert row.delivered_at is None and row.last_error == "platform_down"
        delays.append((row.due_at - clock.now()).total_seconds())
        clock.set(row.due_at)
    assert delays[:5] == [5, 10, 20, 40, 80]
    assert delays == sorted(delays) and max(delays) == MAX_BACKOFF_SECONDS
    assert (await only_row(school.db)).attempts == 10
    assert messenger.sent == []

    messenger.down = False
    await dispatcher.drain()
    assert len(messenger.to(COHOST)) == 1
    assert (await only_row(school.db)).delivered_at is not None


async def test_retry_after_honoured(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    messenger: RecordingMessenger,
    dispatcher: Dispatcher,
) -> None:
    await make_booking(bot)
    messenger.fail_next = 1
    messenger.retry_after = 42
    await dispatcher.drain()
    row = await only_row(school.db)
    assert row.due_at == clock.now() + timedelta(seconds=42)
    clock.advance(seconds=41)
    await dispatcher.drain()
    assert messenger.sent == []
    clock.advance(seconds=1)
    await dispatcher.drain()
    assert len(messenger.to(COHOST)) == 1


async def test_pending_rows_delivered_after_restart(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    db_url: str,
) -> None:
    booking_id = await make_booking(bot)
    down = RecordingMessenger(down=True)
    await Dispatcher(school.db, clock, down).drain()
    await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    await Dispatcher(school.db, clock, down).drain()
    assert down.sent == []
    await school.db.dispose()  # the process stops

    clock.advance(minutes=30)
    db2 = open_database(db_url)  # ... and starts again: new engine, new dispatcher, new messenger
    try:
        fresh = RecordingMessenger()
        await Dispatcher(db2, clock, fresh).drain()
        assert len(fresh.to(COHOST)) == 1  # the request (already showing the answer)
        assert "accepted" in fresh.to(COHOST)[0].text
        assert len(fresh.to(HOST)) == 1
        assert len(fresh.to("slt")) == 1
        assert all(r.delivered_at is not None for r in await rows(db2))
        await Dispatcher(db2, clock, fresh).drain()
        assert len(fresh.to("slt")) == 1
    finally:
        await db2.dispose()


class Crash(BaseException):
    """The process dies in the middle of sending (not an ordinary delivery error)."""


class CrashingMessenger(RecordingMessenger):
    async def send_to_staff(
        self, to: StaffAddress, message: Message, *, outbox_id: int | None = None
    ) -> str:
        raise Crash()


async def test_row_of_crashed_dispatcher_redelivered_after_lease(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    messenger: RecordingMessenger,
    dispatcher: Dispatcher,
) -> None:
    await make_booking(bot)
    crashing = Dispatcher(school.db, clock, CrashingMessenger())
    try:
        await crashing.run_once()
    except Crash:
        pass
    else:  # pragma: no cover
        raise AssertionError("the crashing messenger was not used")
    row = await only_row(school.db)
    assert row.delivered_at is None
    assert row.claimed_until == clock.now() + timedelta(seconds=LEASE_SECONDS)

    # Another replica leaves the claimed row alone while the lease lasts...
    clock.advance(seconds=LEASE_SECONDS - 1)
    await dispatcher.drain()
    assert messenger.sent == []
    # ... and delivers it once the lease has expired.
    clock.advance(seconds=2)
    await dispatcher.drain()
    assert len(messenger.to(COHOST)) == 1
    await dispatcher.drain()
    assert len(messenger.sent) == 1


class SecondCrashes(RecordingMessenger):
    """Sends the first message, then the process dies while sending the second (a kill:
    before it dies it notes what the database already says was delivered)."""

    db: Database | None = None
    recorded_before_crash: list[int] = []

    async def send_to_staff(
        self, to: StaffAddress, message: Message, *, outbox_id: int | None = None
    ) -> str:
        if self.sent:
            assert self.db is not None
            done = [r.id for r in await rows(self.db) if r.delivered_at is not None]
            self.recorded_before_crash = done
            raise Crash()
        return await super().send_to_staff(to, message, outbox_id=outbox_id)


async def test_a_sent_message_stays_sent_when_the_process_dies_on_the_next(
    school: Units, clock: FixedClock, messenger: RecordingMessenger, dispatcher: Dispatcher
) -> None:
    """A sent message is marked delivered together with the taking of the next one in its
    batch: a crash while that next one is sent repeats only it."""
    async with school.write() as u:
        host = await staff_by_email(u.session, HOST)
        assert host is not None
        for n in (1, 2):
            u.to_staff(host.id, Message(f"Note {n}"))
    crashing = SecondCrashes()
    crashing.db = school.db
    with pytest.raises(Crash):
        await Dispatcher(school.db, clock, crashing).run_once()
    assert [m.message.text for m in crashing.sent] == ["Note 1"]
    first, second = await rows(school.db)
    # Recorded before the second was sent, so a kill (no clean-up at all) loses nothing more.
    assert crashing.recorded_before_crash == [first.id]
    assert first.delivered_at is not None and first.message_ref == crashing.sent[0].ref
    assert second.delivered_at is None

    clock.advance(seconds=LEASE_SECONDS + 1)  # the dead batch's lease runs out
    await dispatcher.drain()
    assert [m.message.text for m in messenger.sent] == ["Note 2"]


async def test_the_last_message_of_a_batch_is_marked_too(
    school: Units, clock: FixedClock, messenger: RecordingMessenger, dispatcher: Dispatcher
) -> None:
    async with school.write() as u:
        host = await staff_by_email(u.session, HOST)
        assert host is not None
        for n in range(7):  # more than one batch
            u.to_staff(host.id, Message(f"Note {n}"))
    report = await dispatcher.drain()
    assert report.delivered == 7
    assert all(r.delivered_at is not None and r.message_ref for r in await rows(school.db))
    assert await dispatcher.drain() == type(report)()  # nothing left to send


async def test_two_dispatchers_deliver_once(
    school: Units, bot: Bot, clock: FixedClock, messenger: RecordingMessenger
) -> None:
    import asyncio

    booking_id = await make_booking(bot)
    await Dispatcher(school.db, clock, messenger).drain()
    await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    await asyncio.gather(*(Dispatcher(school.db, clock, messenger).drain() for _ in range(4)))
    assert len(messenger.to("slt")) == 1 and len(messenger.to(HOST)) == 1
    assert len([s for s in messenger.sent if s.kind == "update"]) == 1


async def test_missing_role_channel_falls_back_to_people_once(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    messenger: RecordingMessenger,
    dispatcher: Dispatcher,
) -> None:
    booking_id = await make_booking(bot)
    await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    messenger.missing_roles = {"slt"}
    await dispatcher.drain()
    # Everyone with the SLT role got the notice directly, exactly once.
    for person in ("slt@school.test", "head@school.test"):
        got = messenger.to(person)
        assert len(got) == 1 and "Video call booked" in got[0].text, person
    assert messenger.to("slt") == []
    [role_row] = [r for r in await rows(school.db) if r.kind == "role"]
    assert role_row.delivered_at is None and role_row.fallback_sent_at == clock.now()
    assert role_row.attempts == 1 and role_row.last_error == "channel_not_found"

    # Still missing: the channel post keeps being retried, the people are not messaged again.
    for _ in range(3):
        clock.advance(minutes=20)
        await dispatcher.drain()
    assert len(messenger.to("slt@school.test")) == 1
    assert len(messenger.to("head@school.test")) == 1
    [role_row] = [r for r in await rows(school.db) if r.kind == "role"]
    assert role_row.attempts == 4 and role_row.delivered_at is None

    # The channel is fixed: the post goes there once.
    messenger.missing_roles = set()
    clock.advance(minutes=20)
    await dispatcher.drain()
    assert len(messenger.to("slt")) == 1
    await dispatcher.drain()
    assert len(messenger.to("slt")) == 1


async def test_update_thread_edits_delivered_copies(
    school: Units, bot: Bot, messenger: RecordingMessenger, dispatcher: Dispatcher
) -> None:
    booking_id = await make_booking(bot)
    await dispatcher.drain()
    [request] = [s for s in messenger.sent if s.kind == "staff"]
    assert [b.action_id for b in request.message.buttons()] == ["cohost.accept", "cohost.decline"]
    await bot.handle(action(COHOST, "cohost.decline", str(booking_id)))
    await dispatcher.drain()
    [edit] = [s for s in messenger.sent if s.kind == "update"]
    assert edit.to == request.ref
    assert "declined" in edit.message.text
    assert edit.message.buttons() == []  # no buttons left to click
    await dispatcher.drain()
    assert len([s for s in messenger.sent if s.kind == "update"]) == 1


async def test_update_before_delivery_rewrites_pending_message(
    school: Units, bot: Bot, messenger: RecordingMessenger, dispatcher: Dispatcher
) -> None:
    booking_id = await make_booking(bot)
    # The co-host answers from /my-calls before the request message was ever delivered.
    await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    await dispatcher.drain()
    [request] = messenger.to(COHOST)
    assert "accepted" in request.text and request.buttons() == []
    # At most a harmless re-edit to the same text; never the stale request with buttons.
    for edit in [s for s in messenger.sent if s.kind == "update"]:
        assert "accepted" in edit.message.text and edit.message.buttons() == []
    assert all(r.delivered_at is not None for r in await rows(school.db))


async def test_update_failure_retried(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    messenger: RecordingMessenger,
    dispatcher: Dispatcher,
) -> None:
    booking_id = await make_booking(bot)
    await dispatcher.drain()
    await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    messenger.down = True
    await dispatcher.drain()
    assert [s for s in messenger.sent if s.kind == "update"] == []
    messenger.down = False
    clock.advance(minutes=5)
    await dispatcher.drain()
    assert len([s for s in messenger.sent if s.kind == "update"]) == 1
    assert len(messenger.to("slt")) == 1


class ExplodingMessenger(RecordingMessenger):
    """A messenger with a bug: an unexpected exception must not lose the row either."""

    async def post_to_role(
        self, role: Role, message: Message, *, outbox_id: int | None = None
    ) -> str:
        raise RuntimeError("boom")


async def test_unexpected_exception_keeps_row(school: Units, bot: Bot, clock: FixedClock) -> None:
    booking_id = await make_booking(bot)
    await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    await Dispatcher(school.db, clock, ExplodingMessenger()).drain()
    [role_row] = [r for r in await rows(school.db) if r.kind == "role"]
    assert role_row.delivered_at is None and role_row.last_error == "RuntimeError"
    clock.advance(minutes=1)
    good = RecordingMessenger()
    await Dispatcher(school.db, clock, good).drain()
    assert len(good.to("slt")) == 1
