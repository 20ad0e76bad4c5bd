"""Assembling the core: one place that wires services into the Bot."""

from __future__ import annotations

from chatbot.bot import Bot
from chatbot.core import Core
from chatbot.ports import Directory


def build_bot(core: Core, directories: dict[str, Directory] | None = None) -> Bot:
    bot = Bot(core, directories)
    try:
        from chatbot.services.concerns import ConcernFlow
    except ImportError:  # pragma: no cover - the concerns flow is always shipped
        return bot
    bot.use_concerns(ConcernFlow(core))
    return bot
