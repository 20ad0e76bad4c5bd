"""A booking from /book-call through co-host acceptance to the SLT notice, via the Bot."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select

from chatbot.effects import (
    CloseForm,
    Effect,
    Ephemeral,
    FormErrors,
    OpenForm,
    Reply,
    ShowHome,
    UpdateMessage,
)
from chatbot.outbox import Dispatcher
from chatbot.roster import importer as roster
from chatbot.router import Bot
from chatbot.storage.models import Booking
from tests.conftest import COHOST, GOOD, HOST, action, command, submit
from tests.fakes import RecordingMessenger


async def test_full_booking_to_slt(
    school, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    effects = await bot.handle(command("teacher@school.test", "book-call"))
    assert isinstance(effects[0], OpenForm) and effects[0].form.id == "book_call"
    effects = await bot.handle(submit("teacher@school.test", "book_call", GOOD))
    assert isinstance(effects[0], CloseForm), effects
    assert (
        isinstance(effects[1], Reply) and "Waiting for Colin Colleague" in effects[1].message.text
    )
    await dispatcher.drain()
    [req] = messenger.to("colleague@school.test")
    assert [b.action_id for b in req.buttons()] == ["cohost.accept", "cohost.decline"]
    assert messenger.to("slt") == []  # not confirmed yet
    booking_id = req.buttons()[0].value
    effects = await bot.handle(action("colleague@school.test", "cohost.accept", booking_id))
    await dispatcher.drain()
    [slt] = messenger.to("slt")
    assert "Video call booked" in slt.blocks[0].text  # type: ignore[union-attr]
    flat = str(slt.to_json())
    assert "ST" in flat and "Taylor" not in flat  # initials only for SLT
    assert any("accepted" in m.text for m in messenger.to("teacher@school.test"))


async def test_refusal_names_fields(school, bot: Bot) -> None:
    bad = dict(
        GOOD, date="2026-12-05", start="25:00", duration="45", cohost="", platform="Skype", plan=""
    )
    effects = await bot.handle(submit("teacher@school.test", "book_call", bad))
    [err] = effects
    assert isinstance(err, FormErrors)
    assert set(err.errors) >= {"start", "duration", "cohost", "platform", "plan"}, err.errors


async def test_staff_picker_options_come_from_the_core(school, bot: Bot) -> None:
    from chatbot.effects import Options
    from chatbot.interaction import Interaction
    from tests.conftest import user

    ask = Interaction(
        platform="console",
        kind="options",
        actor=user("teacher@school.test"),
        name="cohost",
        value="staff",
        text="col",
    )
    [found] = await bot.handle(ask)
    assert isinstance(found, Options)
    assert [(o.value, o.label) for o in found.options] == [
        ("colleague@school.test", "Colin Colleague")
    ]
    stranger = Interaction(
        platform="console",
        kind="options",
        actor=user("x@elsewhere.test"),
        name="cohost",
        value="staff",
    )
    assert await bot.handle(stranger) == [Options(())]


# ---------------------------------------------------------------- cancelling

SLT = "slt@school.test"


async def _booked(bot: Bot, dispatcher: Dispatcher, confirm: bool) -> str:
    effects = await bot.handle(submit(HOST, "book_call", GOOD))
    assert isinstance(effects[0], CloseForm), effects
    async with bot.units.db.reading() as s:
        booking_id = str((await s.execute(select(func.max(Booking.id)))).scalar_one())
    if confirm:
        await bot.handle(action(COHOST, "cohost.accept", booking_id))
    await dispatcher.drain()
    return booking_id


async def _status(bot: Bot, booking_id: str) -> str:
    async with bot.units.db.reading() as s:
        b = await s.get(Booking, int(booking_id))
        assert b is not None
        return b.status


def _said(effects: list[Effect]) -> str:
    return " ".join(e.message.text for e in effects if isinstance(e, Ephemeral))


async def test_slt_cancelling_names_them_and_tells_the_host(
    school, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    booking_id = await _booked(bot, dispatcher, confirm=True)
    messenger.sent.clear()
    effects = await bot.handle(action(SLT, "booking.cancel_confirm", booking_id))
    assert "Cancelled Call #" in _said(effects)
    assert not any(isinstance(e, UpdateMessage) for e in effects)  # not the SLT's own list
    await dispatcher.drain()
    for who in (HOST, COHOST, "slt"):
        [told] = messenger.to(who)
        assert "Cancelled by Sally Leader (SLT)" in told.text, (who, told.text)
        assert "by the host" not in str(told.to_json())
    [slt] = messenger.to("slt")
    assert "Taylor" not in str(slt.to_json())  # SLT still see initials only
    assert await _status(bot, booking_id) == "cancelled"


async def test_host_cancelling_is_not_told_to_the_host(
    school, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    booking_id = await _booked(bot, dispatcher, confirm=True)
    messenger.sent.clear()
    effects = await bot.handle(action(HOST, "booking.cancel_confirm", booking_id))
    assert any(isinstance(e, UpdateMessage) for e in effects)  # their list, without the call
    await dispatcher.drain()
    assert messenger.to(HOST) == []
    for who in (COHOST, "slt"):
        [told] = messenger.to(who)
        assert "Cancelled by the host" in told.text, told.text


async def test_waiting_cohost_request_says_who_cancelled(
    school, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    booking_id = await _booked(bot, dispatcher, confirm=False)
    await bot.handle(action(SLT, "booking.cancel_confirm", booking_id))
    await dispatcher.drain()
    [closed] = [s.message for s in messenger.sent if s.kind == "update"]
    assert "cancelled by Sally Leader (SLT); nothing to do." in closed.text
    [told] = messenger.to(HOST)
    assert "Cancelled by Sally Leader (SLT)" in told.text
    assert messenger.to("slt") == []  # never announced to SLT, so nothing to call off there
    # A click on a stale copy of the request says the same.
    effects = await bot.handle(action(COHOST, "cohost.accept", booking_id, message_ref="old"))
    assert "Already answered: cancelled by Sally Leader (SLT); nothing to do." in _said(effects)
    [update] = [e for e in effects if isinstance(e, UpdateMessage)]
    assert "cancelled by Sally Leader (SLT)" in update.message.text


async def test_only_the_host_or_slt_may_cancel(
    school, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    await roster.import_staff(
        school, "email,forename,surname,roles\nit@school.test,Ivy,Tech,admin\n"
    )
    booking_id = await _booked(bot, dispatcher, confirm=True)
    messenger.sent.clear()
    for who in ("it@school.test", "other@school.test", COHOST, "dsl@school.test"):
        effects = await bot.handle(action(who, "booking.cancel_confirm", booking_id))
        assert _said(effects) == "Only the host or a member of SLT can cancel this call.", who
        assert await _status(bot, booking_id) == "confirmed"
    await dispatcher.drain()
    assert messenger.sent == []


def _buttons(effects: list[Effect]) -> list[tuple[str, str]]:
    return [
        (b.action_id, b.label)
        for e in effects
        if isinstance(e, UpdateMessage | Ephemeral | ShowHome)
        for b in e.message.buttons()
    ]


async def test_cancel_asks_first_in_the_list_and_keep_changes_nothing(
    school, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    booking_id = await _booked(bot, dispatcher, confirm=True)
    messenger.sent.clear()
    effects = await bot.handle(action(HOST, "booking.cancel", booking_id))
    [asked] = effects
    assert isinstance(asked, UpdateMessage) and "Cancel this call?" in str(asked.message)
    assert _buttons(effects) == [
        ("booking.cancel_confirm", "Yes, cancel the call"),
        ("booking.cancel_keep", "No, keep it"),
    ]
    effects = await bot.handle(action(HOST, "booking.cancel_keep", booking_id))
    assert "still booked" in _said(effects)
    [back] = [e for e in effects if isinstance(e, UpdateMessage)]
    assert ("booking.cancel", "Cancel call") in _buttons([back])  # the list as it was
    await dispatcher.drain()
    assert messenger.sent == [] and await _status(bot, booking_id) == "confirmed"
    effects = await bot.handle(action(HOST, "booking.cancel_confirm", booking_id))
    assert "Cancelled Call #" in _said(effects)
    assert await _status(bot, booking_id) == "cancelled"


async def test_cancel_asks_first_on_the_home_view_and_for_slt(school, bot: Bot) -> None:
    booking_id = await _booked(bot, Dispatcher(bot.units.db, bot.units.clock), confirm=True)
    click = replace(action(HOST, "booking.cancel", booking_id), surface="home")
    [home] = await bot.handle(click)  # one Home view, with the question open
    assert isinstance(home, ShowHome) and "Cancel this call?" in str(home.message)
    [asked] = await bot.handle(action(SLT, "booking.cancel", booking_id))
    assert isinstance(asked, Ephemeral) and "Cancel this call?" in str(asked.message)
    assert _buttons([asked])[0] == ("booking.cancel_confirm", "Yes, cancel the call")
    assert await _status(bot, booking_id) == "confirmed"
    effects = await bot.handle(action("other@school.test", "booking.cancel", booking_id))
    assert _said(effects) == "Only the host or a member of SLT can cancel this call."


async def test_accepting_from_my_calls_redraws_the_list(
    school, bot: Bot, dispatcher: Dispatcher
) -> None:
    booking_id = await _booked(bot, dispatcher, confirm=False)
    other = dict(GOOD, pupils=["B123456789012"], date="2026-12-02")
    await bot.handle(submit(HOST, "book_call", other))
    [listed] = await bot.handle(command(COHOST, "my-calls"))
    assert isinstance(listed, Ephemeral) and "You have 2 call(s)." in listed.message.text
    accept = next(b for b in listed.message.buttons() if b.action_id == "cohost.accept")
    effects = await bot.handle(action(COHOST, "cohost.accept", accept.value))
    [redrawn] = [e for e in effects if isinstance(e, UpdateMessage)]
    assert redrawn.message.text == "You have 2 call(s)."  # the list, not one call's message
    assert str(redrawn.message).count("confirmed") == 1
    assert "Thank you: you accepted" in _said(effects)
    assert await _status(bot, booking_id) == "confirmed"
    # From the co-host request itself, that message is brought up to date as before.
    [request] = [b for b in listed.message.buttons() if b.action_id == "cohost.decline"][1:]
    effects = await bot.handle(action(COHOST, "cohost.decline", request.value.split(":")[-1]))
    [closed] = [e for e in effects if isinstance(e, UpdateMessage)]
    assert "Co-host request from" in str(closed.message)


async def test_a_sentence_ending_with_a_pupils_name_has_one_full_stop(school, bot: Bot) -> None:
    noah = "C123456789012"  # no consent on file
    [err] = await bot.handle(submit(HOST, "book_call", dict(GOOD, pupils=[noah])))
    assert isinstance(err, FormErrors)
    assert "No written parental consent on file for Noah N. Email" in err.errors["pupils"]
    consent = {
        "pupil": noah,
        "parent_email": "parent.noah@home.test",
        "received_date": "2026-11-29",
        "received_time": "18:05",
        "evidence": "<CAF123@mail.home.test> Re: video calls",
    }
    effects = await bot.handle(submit(HOST, "consent", consent))
    assert _said(effects) == "Recorded written consent for Noah N."
    for text in (*err.errors.values(), _said(effects)):
        assert ".." not in text
