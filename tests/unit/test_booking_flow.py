"""A booking from /book-call through co-host acceptance to the SLT notice, via the Bot."""

from __future__ import annotations

from chatbot.effects import CloseForm, FormErrors, OpenForm, Reply
from chatbot.outbox import Dispatcher
from chatbot.router import Bot
from tests.conftest import GOOD, action, command, submit
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
