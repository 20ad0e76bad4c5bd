"""What adapters hand to the core: one platform-neutral Interaction per user event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Platform = Literal["slack", "teams", "console"]
InteractionKind = Literal["command", "action", "submit", "message", "install", "options"]
SubmittedValue = str | list[str]


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
