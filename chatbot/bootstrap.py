"""Assembling the core: one place that wires services into the Bot."""

from __future__ import annotations

from chatbot.bot import Bot
from chatbot.core import Core
from chatbot.ports import Directory
from chatbot.services.concerns import ConcernFlow


def build_bot(core: Core, directories: dict[str, Directory] | None = None) -> Bot:
    bot = Bot(core, directories)
    bot.use_concerns(ConcernFlow(core))
    return bot
