"""What the core hands back to the adapter for the person who is interacting right now.

Messages for anyone else (co-host requests, SLT notices, DSL alerts) never travel as effects:
they are outbox rows, committed with the change that caused them and delivered by the
dispatcher through a :class:`chatbot.ports.Messenger`, so a platform outage delays them and
never loses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatbot.ui import Form, Message, Option, Section, esc


@dataclass(frozen=True)
class Reply:
    """A message in the conversation the user is in (a DM with the bot for commands)."""

    message: Message


@dataclass(frozen=True)
class Ephemeral:
    """A message only the actor sees (Slack ephemeral; Teams/console: a normal reply)."""

    message: Message


@dataclass(frozen=True)
class OpenForm:
    form: Form


@dataclass(frozen=True)
class FormErrors:
    """Field id -> plain-English message; the form stays open and nothing was written."""

    errors: dict[str, str]
    form: Form | None = None


@dataclass(frozen=True)
class CloseForm:
    pass


@dataclass(frozen=True)
class UpdateMessage:
    """Replace the message whose button was clicked (``Interaction.message_ref``)."""

    message: Message


@dataclass(frozen=True)
class Popup:
    """A read-only view shown only to the actor (Slack modal, Teams card, console text);
    used for need-to-know details such as a concern's narrative."""

    title: str
    message: Message


@dataclass(frozen=True)
class ShowHome:
    """The actor's Home view (Slack's App Home tab), drawn afresh."""

    message: Message


@dataclass(frozen=True)
class Options:
    """Answer to an ``options`` interaction (a picker's search)."""

    options: tuple[Option, ...] = field(default_factory=tuple)


Effect = (
    Reply
    | Ephemeral
    | OpenForm
    | FormErrors
    | CloseForm
    | UpdateMessage
    | Popup
    | ShowHome
    | Options
)


def say(text: str) -> list[Effect]:
    """A short private answer to the person acting, as plain text (it may quote people, so it
    is never read as markup)."""
    return [Ephemeral(Message(text, (Section(esc(text)),)))]
