"""The parent information email (/consent letter): built from the school's settings, in the
product's own words, and valid wherever it is shown."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from chatbot.consent.letter import letter_message, letter_text
from chatbot.effects import Ephemeral, FormErrors
from chatbot.policy import default_policy
from chatbot.router import Bot
from chatbot.uow import Units
from tests.conftest import GOOD, HOST, command, submit

POLICY_TEXT = Path(__file__).parents[3] / "shared" / "policy" / "live-video-policy.txt"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def test_letter_follows_the_schools_settings() -> None:
    default = letter_text(default_policy())
    assert "Zoom" in default and "at most 30 minutes" in default and "once a week" in default
    assert "0115 9892744" in default and "reply to this email" in default

    custom = replace(
        default_policy(),
        school_name="Brook Primary",
        platforms=("Microsoft Teams", "Zoom"),
        max_call_minutes=20,
        calls_per_pupil_per_week=2,
        contacts=replace(default_policy().contacts, school_phone="01234 567890"),
    )
    text = letter_text(custom)
    assert "Brook Primary" in text and "Microsoft Teams or Zoom" in text
    assert "at most 20 minutes" in text and "up to 2 times a week" in text
    assert "01234 567890" in text and "0115" not in text


def test_letter_is_in_our_own_words() -> None:
    """No run of eight words is copied from the school's policy document."""
    policy = words(POLICY_TEXT.read_text())
    runs = {tuple(policy[i : i + 8]) for i in range(len(policy) - 7)}
    mine = words(letter_text(default_policy()))
    copied = [
        " ".join(mine[i : i + 8]) for i in range(len(mine) - 7) if tuple(mine[i : i + 8]) in runs
    ]
    assert copied == []


async def test_consent_letter_command(school: Units, bot: Bot) -> None:
    [effect] = await bot.handle(command(HOST, "consent", "letter"))
    assert isinstance(effect, Ephemeral)
    shown = "\n".join(getattr(b, "text", "") for b in effect.message.blocks)
    assert "Dear parent or carer" in shown and "Zoom" in shown
    assert "/consent" in str(effect.message.blocks[-1])  # what to do with the reply


async def test_missing_consent_refusal_points_to_the_letter(school: Units, bot: Bot) -> None:
    [effect] = await bot.handle(submit(HOST, "book_call", {**GOOD, "pupils": ["C123456789012"]}))
    assert isinstance(effect, FormErrors)
    assert "/consent letter" in effect.errors["pupils"]


def test_letter_renders_within_platform_limits() -> None:
    from adapters.slack.blocks import message_payload
    from adapters.teams.cards import message_card
    from tests.adapters.test_slack_render import check_message
    from tests.adapters.test_teams_adapter import CARD_VALIDATOR

    msg = letter_message(default_policy())
    check_message(message_payload(msg), "parent letter")
    card = message_card(msg)
    assert CARD_VALIDATOR is not None
    assert list(CARD_VALIDATOR.iter_errors(card)) == []
