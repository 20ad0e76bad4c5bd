"""Exactly one co-host answer wins under concurrent clicks and repeated deliveries."""

from __future__ import annotations

import asyncio
import dataclasses

from sqlalchemy import func, select

from chatbot.effects import CloseForm, Effect
from chatbot.interaction import Interaction
from chatbot.outbox import Dispatcher
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, Booking, BookingPupil, OutboxMessage
from chatbot.uow import Units
from tests.conftest import COHOST, GOOD, HOST, action, submit
from tests.fakes import RecordingMessenger


async def make_booking(bot: Bot) -> int:
    effects = await bot.handle(submit(HOST, "book_call", GOOD))
    assert isinstance(effects[0], CloseForm), effects
    async with bot.units.db.transaction() as s:
        return (await s.execute(select(Booking.id))).scalar_one()


async def audit_actions(core: Units, booking_id: int) -> list[str]:
    async with core.db.transaction() as s:
        rows = await s.execute(
            select(AuditEvent.action)
            .where(AuditEvent.subject_type == "booking", AuditEvent.subject_id == str(booking_id))
            .order_by(AuditEvent.id)
        )
        return list(rows.scalars())


async def status(core: Units, booking_id: int) -> str:
    async with core.db.transaction() as s:
        b = await s.get(Booking, booking_id)
        assert b is not None
        return b.status


def texts(effects: list[Effect]) -> str:
    return " ".join(str(getattr(e, "message", "")) for e in effects)


async def test_twenty_concurrent_accepts_one_winner(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    booking_id = await make_booking(bot)
    await dispatcher.drain()
    messenger.sent.clear()

    results = await asyncio.gather(
        *(
            bot.handle(action(COHOST, "cohost.accept", str(booking_id), message_ref=f"m{n}"))
            for n in range(20)
        )
    )
    thanks = [r for r in results if "Thank you" in texts(r)]
    already = [r for r in results if "Already answered" in texts(r)]
    assert len(thanks) == 1, [texts(r) for r in results]
    assert len(already) == 19
    assert await status(school, booking_id) == "confirmed"
    assert (await audit_actions(school, booking_id)).count("cohost.accept") == 1

    await dispatcher.drain()
    assert len(messenger.to("slt")) == 1
    host_msgs = messenger.to(HOST)
    assert len(host_msgs) == 1 and "accepted" in host_msgs[0].text
    # The request message was edited in place once, to show the outcome.
    updates = [s for s in messenger.sent if s.kind == "update"]
    assert len(updates) == 1 and "accepted" in updates[0].message.text
    # Nothing left to send, and draining again sends nothing new.
    await dispatcher.drain()
    assert len(messenger.to("slt")) == 1


async def test_twenty_concurrent_accepts_first_contact(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    """The co-host's very first interaction with the bot is a burst of clicks on Accept."""
    booking_id = await make_booking(bot)
    results = await asyncio.gather(
        *(bot.handle(action(COHOST, "cohost.accept", str(booking_id))) for _ in range(20)),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    assert sum("Thank you" in texts(r) for r in results) == 1  # type: ignore[arg-type]
    assert await status(school, booking_id) == "confirmed"
    await dispatcher.drain()
    assert len(messenger.to("slt")) == 1


async def test_concurrent_accept_and_decline_one_outcome(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    booking_id = await make_booking(bot)
    await dispatcher.drain()
    messenger.sent.clear()
    clicks = [
        bot.handle(action(COHOST, "cohost.accept" if n % 2 else "cohost.decline", str(booking_id)))
        for n in range(10)
    ]
    results = await asyncio.gather(*clicks)
    assert sum("Thank you" in texts(r) for r in results) == 1
    final = await status(school, booking_id)
    assert final in ("confirmed", "declined")
    answers = [a for a in await audit_actions(school, booking_id) if a.startswith("cohost.")]
    assert answers == ["cohost.accept" if final == "confirmed" else "cohost.decline"]

    await dispatcher.drain()
    host_msgs = messenger.to(HOST)
    assert len(host_msgs) == 1
    async with school.db.transaction() as s:
        active = (await s.execute(select(BookingPupil.active))).scalars().all()
    if final == "confirmed":
        assert len(messenger.to("slt")) == 1 and "accepted" in host_msgs[0].text
        assert active == [True]
    else:
        assert messenger.to("slt") == [] and "can't co-host" in host_msgs[0].text
        assert active == [False]  # the pupil's week is free again


async def test_repeated_delivery_processed_once(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    booking_id = await make_booking(bot)
    click = dataclasses.replace(
        action(COHOST, "cohost.accept", str(booking_id)), delivery_id="Ev0123ABC"
    )
    first = await bot.handle(click)
    assert "Thank you" in texts(first)
    again = await bot.handle(click)
    assert again == []  # a platform retry of the same event is ignored
    assert (await audit_actions(school, booking_id)).count("cohost.accept") == 1
    await dispatcher.drain()
    assert len(messenger.to("slt")) == 1


async def test_repeated_delivery_concurrent(school: Units, bot: Bot) -> None:
    booking_id = await make_booking(bot)
    click = dataclasses.replace(
        action(COHOST, "cohost.decline", str(booking_id)), delivery_id="retry-me"
    )
    results = await asyncio.gather(*(bot.handle(click) for _ in range(5)))
    assert sum(1 for r in results if r) == 1, results
    assert (await audit_actions(school, booking_id)).count("cohost.decline") == 1


async def test_repeated_submit_books_once(school: Units, bot: Bot) -> None:
    """A Slack retry of the booking form's submission must not book the call twice."""
    sub: Interaction = dataclasses.replace(
        submit(HOST, "book_call", GOOD), delivery_id="view-submission-1"
    )
    results = await asyncio.gather(bot.handle(sub), bot.handle(sub))
    assert sorted(len(r) for r in results) == [0, 2]
    async with school.db.transaction() as s:
        assert (await s.execute(select(func.count(Booking.id)))).scalar_one() == 1
        assert (await s.execute(select(func.count(OutboxMessage.id)))).scalar_one() == 1


async def test_only_the_invited_colleague_can_answer(school: Units, bot: Bot) -> None:
    booking_id = await make_booking(bot)
    effects = await bot.handle(action("other@school.test", "cohost.accept", str(booking_id)))
    assert "Only the invited co-host" in texts(effects)
    effects = await bot.handle(action(HOST, "cohost.accept", str(booking_id)))
    assert "Only the invited co-host" in texts(effects)
    assert await status(school, booking_id) == "awaiting_cohost"
    assert await audit_actions(school, booking_id) == ["booking.create"]
