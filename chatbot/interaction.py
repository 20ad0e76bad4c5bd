"""What adapters hand to the core: one platform-neutral Interaction per user event."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

Platform = Literal["slack", "teams", "console"]
InteractionKind = Literal["command", "action", "submit", "message", "install", "options"]
SubmittedValue = str | list[str]


def readable(text: str) -> bool:
    """False for text holding a lone UTF-16 surrogate (``"\\ud800"`` in a JSON payload): no
    database driver or JSON encoder takes one. (A whole emoji is a surrogate *pair* in JSON,
    and decodes to one ordinary character.)"""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class UserRef:
    """A person as a platform knows them. ``email`` is filled in when the adapter knows it."""

    platform: Platform
    user_id: str
    tenant: str = ""
    email: str | None = None
    display_name: str = ""


@dataclass(frozen=True)
class ConversationRef:
    platform: Platform
    conversation_id: str
    kind: Literal["personal", "channel", "group"] = "personal"


@dataclass(frozen=True)
class Interaction:
    """One inbound event.

    - ``command``: ``name`` is the command without the slash (``book-call``), ``text`` its args.
    - ``action``: ``name`` is the button's action id, ``value`` its value; ``message_ref`` is the
      platform reference of the message that carried the button (so it can be updated).
    - ``submit``: ``name`` is the form id, ``values`` the submitted inputs, ``state`` the form's.
    - ``options``: dynamic options for a picker; ``name`` is the input id, ``value`` the input
      kind ("pupils", "pupil" or "staff"), ``text`` the query.
    - ``message`` / ``install``: free text in a chat, or the app was added somewhere.
    """

    platform: Platform
    kind: InteractionKind
    actor: UserRef
    name: str = ""
    text: str = ""
    value: str = ""
    values: dict[str, SubmittedValue] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)
    conversation: ConversationRef | None = None
    message_ref: str | None = None
    delivery_id: str | None = None

    def readable(self) -> bool:
        """False if any text in it holds a lone UTF-16 surrogate (see :func:`readable`)."""
        return all(readable(t) for t in self._texts() if isinstance(t, str))

    def _texts(self) -> Iterator[object]:
        a = self.actor
        yield from (a.user_id, a.tenant, a.email, a.display_name, self.name, self.text)
        yield from (self.value, self.message_ref, self.delivery_id)
        if self.conversation is not None:
            yield self.conversation.conversation_id
        for key, value in self.values.items():
            yield key
            yield from (value if isinstance(value, list) else [value])
        for pair in self.state.items():
            yield from pair
