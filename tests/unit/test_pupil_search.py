"""Picker searches match names whatever their accents and case (issue #11 loose end), on
SQLite and PostgreSQL alike, through the router's options interactions."""

from __future__ import annotations

from chatbot.effects import Options
from chatbot.interaction import Interaction
from chatbot.roster import importer as roster
from chatbot.router import Bot
from chatbot.uow import Units
from tests.conftest import HOST, user


async def search(bot: Bot, kind: str, text: str) -> list[str]:
    ask = Interaction(
        platform="console", kind="options", actor=user(HOST), name=kind, value=kind, text=text
    )
    [found] = await bot.handle(ask)
    assert isinstance(found, Options)
    return [o.label for o in found.options]


async def test_pupil_names_match_without_regard_to_accents_or_case(school: Units, bot: Bot) -> None:
    await roster.import_pupils(
        school,
        "upn,forename,surname,class\n"
        "D123456789012,Chloé,Dubois,Year 3\n"
        "E123456789012,Chloe,Martin,Year 4\n"
        "F123456789012,CHLOË,Łukasz,Year 5\n",
    )
    for query in ("Chloe", "chloé", "CHLOE", " chloë "):
        assert await search(bot, "pupils", query) == [
            "Chloé D (Year 3)",
            "CHLOË Ł (Year 5)",
            "Chloe M (Year 4)",
        ], query
    assert await search(bot, "pupil", "zoe orsted") == ["Zoë Ø (Year 3)"]
    assert await search(bot, "pupil", "ØRSTED-NÚÑEZ") == ["Zoë Ø (Year 3)"]
    assert await search(bot, "pupil", "lukasz") == ["CHLOË Ł (Year 5)"]
    assert await search(bot, "pupil", "year 4") == ["Chloe M (Year 4)", "Noah N (Year 4)"]
    assert await search(bot, "pupil", "c123456789012") == ["Noah N (Year 4)"]
    # LIKE's wildcards are only characters to look for.
    assert await search(bot, "pupil", "%") == []
    assert await search(bot, "pupil", "_") == []


async def test_staff_names_match_without_regard_to_accents(school: Units, bot: Bot) -> None:
    await roster.import_staff(
        school, "email,forename,surname,roles\nrene@school.test,René,Nørgaard,staff\n"
    )
    assert await search(bot, "staff", "rene norgaard") == ["René Nørgaard"]
    assert await search(bot, "staff", "RENÉ") == ["René Nørgaard"]
