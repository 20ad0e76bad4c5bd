"""The bot's own answers: /help, the welcome when it is installed, and anything typed that is
not a command. The list of commands comes from the registry, so it never goes out of date."""

from __future__ import annotations

from chatbot.effects import Effect, Ephemeral, Reply
from chatbot.policy import Policy
from chatbot.registry import Registry, Turn
from chatbot.ui import Context, Message, Section
from chatbot.uow import Unit


def help_message(registry: Registry, p: Policy) -> Message:
    commands = [r for r in registry.commands() if r.help]
    rules = (
        f"School days, {p.hours_text()}; up to {p.max_call_minutes} minutes; "
        f"{p.calls_per_pupil_per_week} call a week per pupil; parental consent in writing; "
        f"a second member of staff; {', '.join(p.platforms)} only."
    )
    return Message(
        "What I can do: " + ", ".join(f"/{r.name}" for r in commands),
        (Section("\n".join(r.help for r in commands)), Context((rules,))),
    )


def register(r: Registry) -> None:
    async def show_help(u: Unit, t: Turn) -> list[Effect]:
        return [Ephemeral(help_message(r, u.policy))]

    async def welcome(u: Unit, t: Turn) -> list[Effect]:
        return [Reply(help_message(r, u.policy))]

    r.command("help", show_help)
    r.add("message", "", welcome, writes=False)  # anything typed that is not a command
    r.add("install", "", welcome, staff_only=False, writes=False)
