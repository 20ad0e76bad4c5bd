"""Withdrawing consent stops the pupil's calls still to come, in the same unit: cancelled, or
held when the school's policy says so (issue #11, consent 1), through the Bot."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from chatbot.bootstrap import build_bot
from chatbot.effects import CloseForm, Effect, Ephemeral, Reply, UpdateMessage
from chatbot.outbox import Dispatcher
from chatbot.policy import default_policy
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, Booking, BookingPupil
from chatbot.uow import Units
from tests.conftest import COHOST, GOOD, HOST, action, submit
from tests.fakes import RecordingMessenger

SLT = "slt@school.test"
SAM = "A123456789012"
ZOE = "B123456789012"
NEXT_WEEK = dict(GOOD, date="2026-12-08", cohost="other@school.test")
CONSENT_AGAIN = {
    "pupil": SAM,
    "parent_email": "parent.sam@home.test",
    "received_date": "2026-11-30",
    "received_time": "07:30",
    "evidence": "<again@home.test> Re: video calls after all",
}


def said(effects: list[Effect]) -> str:
    return " ".join(e.message.text for e in effects if isinstance(e, Ephemeral))


async def book(bot: Bot, values: dict[str, object]) -> int:
    effects = await bot.handle(submit(HOST, "book_call", values))
    assert isinstance(effects[0], CloseForm), effects
    async with bot.units.db.reading() as s:
        return int((await s.execute(select(Booking.id).order_by(Booking.id.desc()))).first()[0])


async def booking(bot: Bot, booking_id: int) -> Booking:
    async with bot.units.db.reading() as s:
        b = await s.get(Booking, booking_id)
        assert b is not None
        return b


async def slots_taken(bot: Bot, booking_id: int) -> list[bool]:
    async with bot.units.db.reading() as s:
        rows = await s.execute(
            select(BookingPupil.active).where(BookingPupil.booking_id == booking_id)
        )
        return list(rows.scalars())


async def test_withdrawal_cancels_every_call_still_to_come_and_says_why(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    """The issue's case: a co-host accepted a call for a pupil whose consent had gone, and
    SLT were told "booked". Now withdrawal calls it off first, and the late accept is told."""
    waiting = await book(bot, GOOD)  # Colin has not answered yet
    confirmed = await book(bot, NEXT_WEEK)
    await bot.handle(action("other@school.test", "cohost.accept", str(confirmed)))
    group = await book(bot, dict(GOOD, pupils=[ZOE], date="2026-12-02"))  # Zoë only: untouched
    await dispatcher.drain()
    messenger.sent.clear()

    effects = await bot.handle(submit(SLT, "consent_withdraw", {"pupil": SAM}))
    assert isinstance(effects[0], CloseForm), effects
    reply = said(effects)
    assert "2 call(s) cancelled" in reply and f"Call #{waiting}" in reply, reply
    assert f"Call #{confirmed}" in reply and "host, co-host and SLT have been told" in reply
    for b in (waiting, confirmed):
        assert (await booking(bot, b)).status == "cancelled"
        assert await slots_taken(bot, b) == [False]  # the weekly slots are free again
    assert (await booking(bot, group)).status == "awaiting_cohost"

    await dispatcher.drain()
    why = "because written parental consent for Sam T was withdrawn"
    host_told = [m.text for m in messenger.to(HOST)]
    assert len(host_told) == 2 and all(why in t for t in host_told), host_told
    [other_told] = messenger.to("other@school.test")
    assert why in other_told.text and "Cancelled by Sally Leader" in other_told.text
    [closed] = [s.message for s in messenger.sent if s.kind == "update"]
    assert f"cancelled by Sally Leader {why}; nothing to do." in closed.text
    slt_told = messenger.to("slt")
    assert len(slt_told) == 2  # both calls, though only one had been announced
    for m in slt_told:
        flat = str(m.to_json())
        assert "consent for ST was withdrawn" in flat and "Sam" not in flat, flat

    # Colin accepts late, from the request he still has: nothing is booked, SLT hear nothing.
    messenger.sent.clear()
    effects = await bot.handle(action(COHOST, "cohost.accept", str(waiting), message_ref="old"))
    late = said(effects)
    assert "cancelled by Sally Leader because written parental consent for a pupil" in late
    assert (await booking(bot, waiting)).status == "cancelled"
    await dispatcher.drain()
    assert messenger.to("slt") == []
    async with bot.units.db.reading() as s:
        reasons = (
            await s.execute(
                select(AuditEvent.detail).where(
                    AuditEvent.action == "booking.cancel", AuditEvent.subject_id == str(waiting)
                )
            )
        ).scalars()
        assert [d["reason"] for d in reasons] == ["consent_withdrawn"]


async def test_withdrawal_by_the_host_leaves_no_message_to_themselves(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    """The CLI withdraws for nobody in particular: colleagues hear it was the school office."""
    from chatbot.consent import service as consent

    waiting = await book(bot, GOOD)
    await dispatcher.drain()
    messenger.sent.clear()
    async with school.write() as u:
        w = await consent.withdraw(u, SAM, None, "cli", cli=True)
    assert w.error is None and [b.id for b in w.calls] == [waiting]
    await dispatcher.drain()
    [told] = messenger.to(HOST)
    assert "Cancelled by the school office because written parental consent" in told.text


def holding(db, clock: FixedClock) -> Bot:  # type: ignore[no-untyped-def]
    policy = replace(default_policy(), consent_on_withdrawal="hold")
    return build_bot(Units(db=db, policy=policy, clock=clock))


async def test_hold_keeps_the_call_but_it_cannot_be_accepted_or_started(
    school: Units, db, clock: FixedClock, messenger: RecordingMessenger
) -> None:
    bot = holding(db, clock)
    dispatcher = Dispatcher(db, clock, messenger)
    waiting = await book(bot, GOOD)
    confirmed = await book(bot, NEXT_WEEK)
    await bot.handle(action("other@school.test", "cohost.accept", str(confirmed)))
    await dispatcher.drain()
    messenger.sent.clear()

    effects = await bot.handle(submit(SLT, "consent_withdraw", {"pupil": SAM}))
    assert "2 call(s) put on hold" in said(effects), said(effects)
    for b in (waiting, confirmed):
        held = await booking(bot, b)
        assert held.status in ("awaiting_cohost", "confirmed") and held.held_at is not None
        assert await slots_taken(bot, b) == [True]
    await dispatcher.drain()
    for who in (HOST, "other@school.test", "slt"):
        assert any("is on hold" in m.text for m in messenger.to(who)), who
    [request] = [s.message for s in messenger.sent if s.kind == "update"]
    assert [b.action_id for b in request.buttons()] == ["cohost.decline"]  # no Accept

    effects = await bot.handle(action(COHOST, "cohost.accept", str(waiting)))
    assert "This call is on hold" in said(effects) and "still decline" in said(effects)
    assert (await booking(bot, waiting)).status == "awaiting_cohost"
    [checklist] = await bot.handle(action(HOST, "checklist.open", str(confirmed)))
    assert isinstance(checklist, Reply)
    assert "On hold" in str(checklist.message.to_json())

    # The parents agree again: the holds are lifted and Colin can accept.
    messenger.sent.clear()
    effects = await bot.handle(submit(HOST, "consent", CONSENT_AGAIN))
    assert "2 call(s) on hold for it can go ahead again" in said(effects), effects
    assert (await booking(bot, waiting)).held_at is None
    await dispatcher.drain()
    assert any("Hold lifted" in str(m.to_json()) for m in messenger.to("slt"))
    effects = await bot.handle(action(COHOST, "cohost.accept", str(waiting)))
    assert (await booking(bot, waiting)).status == "confirmed", said(effects)


async def test_a_call_still_on_hold_at_the_cohost_deadline_is_called_off(
    school: Units, db, clock: FixedClock, messenger: RecordingMessenger
) -> None:
    bot = holding(db, clock)
    dispatcher = Dispatcher(db, clock, messenger)
    confirmed = await book(bot, GOOD)
    await bot.handle(action(COHOST, "cohost.accept", str(confirmed)))
    await bot.handle(submit(SLT, "consent_withdraw", {"pupil": SAM}))
    await dispatcher.drain()
    messenger.sent.clear()
    start = (await booking(bot, confirmed)).starts_at
    clock.set(start - timedelta(minutes=31))
    await bot.sweep()
    assert (await booking(bot, confirmed)).status == "confirmed"  # not yet: still on hold
    clock.set(start - timedelta(minutes=30))
    await bot.sweep()
    await bot.sweep()  # once only
    assert (await booking(bot, confirmed)).status == "cancelled"
    await dispatcher.drain()
    [told] = messenger.to(HOST)
    assert "still on hold when the co-host's deadline" in told.text
    assert len(messenger.to("slt")) == 1


async def test_no_calls_to_stop(school: Units, bot: Bot) -> None:
    effects = await bot.handle(submit(SLT, "consent_withdraw", {"pupil": SAM}))
    assert "They had no calls booked" in said(effects)
    assert not any(isinstance(e, UpdateMessage) for e in effects)
