"""The composition root: one registry, filled by each concept, behind one router."""

from __future__ import annotations

from chatbot import help
from chatbot.bookings import handlers as bookings
from chatbot.concerns import handlers as concerns
from chatbot.consent import handlers as consent
from chatbot.mail import handlers as mail
from chatbot.meetings import handlers as meetings
from chatbot.ports import Directory
from chatbot.registry import Registry
from chatbot.roster import handlers as roster
from chatbot.router import Bot
from chatbot.uow import Units


def build_registry() -> Registry:
    registry = Registry()
    for concept in (bookings, consent, mail, concerns, roster, meetings, help):
        concept.register(registry)
    return registry


def build_bot(units: Units, directories: dict[str, Directory] | None = None) -> Bot:
    return Bot(units, build_registry(), directories)
