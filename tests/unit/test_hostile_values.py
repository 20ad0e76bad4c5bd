"""Values from outside that can't be what the bot sent: ids too wide for the database, digits
that aren't ASCII, text with a lone surrogate. The core answers politely and changes nothing
(no traceback), whatever the platform."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from chatbot.effects import Effect, Ephemeral, OpenForm
from chatbot.fields import MAX_RECORD_ID, record_id
from chatbot.interaction import UserRef
from chatbot.router import UNREADABLE, Bot
from chatbot.uow import Units
from tests.conftest import HOST, action, command, no_traceback, snapshot, submit
from tests.unit.test_concern_support import concerns, file_concern, good

# Each of these would make the look-up itself fail (too wide for SQLite's or PostgreSQL's
# integer, or more digits than int() reads), or is not an id at all.
NOT_IDS = ("99999999999999999999", str(MAX_RECORD_ID + 1), "9" * 5000, "0", "-1", "²", "١٢", "")
ACTIONS = (
    "cohost.accept",
    "cohost.decline",
    "booking.cancel",
    "booking.cancel_confirm",
    "booking.cancel_keep",
    "booking.rebook",
    "checklist.open",
    "checklist.tick",
    "calllog.open",
    "concern.open",
    "concern.view",
    "concern.ack",
    "concern.note",
    "concern.close",
)


def polite(effects: list[Effect]) -> list[str]:
    assert effects and all(isinstance(e, Ephemeral) for e in effects), effects
    return [e.message.text for e in effects if isinstance(e, Ephemeral)]


async def settled(bot: Bot, *emails: str) -> dict[str, list[tuple[object, ...]]]:
    """The database once these people have been seen (their first message records their
    platform identity), to compare with afterwards."""
    for email in emails:
        await bot.handle(command(email, "help"))
    return await snapshot(bot.units.db)


def test_record_id_takes_only_ids_a_table_can_hold() -> None:
    assert record_id("42") == 42 and record_id(" 7 ") == 7
    assert record_id(str(MAX_RECORD_ID)) == MAX_RECORD_ID
    assert [record_id(v) for v in NOT_IDS] == [None] * len(NOT_IDS)


@pytest.mark.parametrize("name", ACTIONS)
async def test_buttons_with_impossible_ids_are_refused_quietly(
    school: Units, bot: Bot, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = await settled(bot, "dsl@school.test")
    with caplog.at_level(logging.INFO):
        for value in NOT_IDS:
            for v in (value, f"{value}:waiting_room", f"booking:{value}"):
                effects = await bot.handle(action("dsl@school.test", name, v))
                if name == "concern.open":  # the form opens, not linked to any call
                    [form] = effects
                    assert isinstance(form, OpenForm) and "booking_id" not in form.form.state
                else:
                    polite(effects)
    no_traceback(caplog)
    assert await snapshot(school.db) == before


@pytest.mark.parametrize(
    ("form", "key"), [("call_log", "booking_id"), ("concern_note", "concern_id")]
)
async def test_forms_whose_state_names_an_impossible_record_change_nothing(
    school: Units, bot: Bot, form: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = await settled(bot, "dsl@school.test")
    values = {"note": "Spoke to parent.", "attended": "Sam", "minutes": "20", "summary": "Fine"}
    values["worrying"] = "no"
    with caplog.at_level(logging.INFO):
        for value in NOT_IDS:
            await bot.handle(submit("dsl@school.test", form, values, {key: value}))
    no_traceback(caplog)
    assert await snapshot(school.db) == before


async def test_a_concern_naming_an_impossible_booking_is_still_filed(
    school: Units, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    """The link to the call is dropped; the concern itself is never lost."""
    with caplog.at_level(logging.INFO):
        for value in ("99999999999999999999", str(MAX_RECORD_ID + 1), "²"):
            await file_concern(bot, state={"booking_id": value})
    no_traceback(caplog)
    filed = await concerns(school)
    assert len(filed) == 3 and all(c.booking_id is None for c in filed)


async def test_text_with_a_lone_surrogate_is_refused_politely(
    school: Units, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    before = await settled(bot, "teacher@school.test")
    with caplog.at_level(logging.INFO):
        assert polite(await file_concern(bot, narrative="It happened \ud800 here")) == [UNREADABLE]
        assert polite(await file_concern(bot, state={"booking_id": "\udfff"})) == [UNREADABLE]
        assert polite(await bot.handle(action(HOST, "booking.cancel", "1\ud83d"))) == [UNREADABLE]
        # A whole emoji (a surrogate *pair* in UTF-16) is ordinary text.
        assert polite(await bot.handle(action(HOST, "booking.cancel", "1 😀"))) != [UNREADABLE]
    no_traceback(caplog)
    assert await snapshot(school.db) == before


async def test_someone_off_the_roster_with_a_long_platform_name_can_still_report(
    school: Units, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    """Their name labels the concern and its audit row; the audit row's column is narrower."""
    stranger = UserRef(platform="slack", user_id="U0STRANGE", display_name="n" * 250)
    report = submit(HOST, "concern", good())
    with caplog.at_level(logging.INFO):
        await bot.handle(replace(report, actor=stranger))
    no_traceback(caplog)
    [c] = await concerns(school)
    assert c.reporter_label == "n" * 250
