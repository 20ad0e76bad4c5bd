"""What adapters hand to the core: one platform-neutral Interaction per user event."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from chatbot.ui import Form

Platform = Literal["slack", "teams", "console"]
InteractionKind = Literal["command", "action", "submit", "message", "install", "options", "home"]
Surface = Literal["chat", "home", "modal"]


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


# A form's value: text, chosen option values, or people picked in a platform's own user picker
# (resolved to the roster through the Directory port by the router, never by the adapter).
SubmittedValue = str | list[str] | UserRef | list[UserRef]


@dataclass(frozen=True)
class ConversationRef:
    platform: Platform
    conversation_id: str
    kind: Literal["personal", "channel", "group"] = "personal"


@dataclass(frozen=True)
class Interaction:
    """One inbound event.

    - ``command`` / ``message``: ``text`` is what the person typed, command word included
      (``/book-call``, ``consent letter``); the core parses it. ``command`` means the platform
      knows it was a command (a Slack slash command); a ``message`` may be anything.
    - ``action``: ``name`` is the button's action id, ``value`` its value; ``message_ref`` is the
      platform reference of the message that carried the button (so it can be updated), and
      ``surface`` says whether it was in a chat, the Home view or a modal.
    - ``submit``: ``name`` is the form id, ``values`` the submitted inputs, ``state`` the form's.
    - ``options``: a picker's search; ``name`` is the input id, ``value`` the input kind
      ("pupils", "pupil" or "staff"), ``text`` the query, ``values`` what is already chosen.
    - ``install`` / ``home``: the app was added somewhere / its Home view was opened.

    ``lists_choices`` is set by surfaces that cannot search as the person types (Teams cards):
    forms sent to them carry their pickers' choices. Such surfaces keep no state either, so
    with a submission or a picker search they send ``form``, the form as they drew it, and the
    core sends it back filled in (with the errors, or with the search's matches).
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
    surface: Surface = "chat"
    lists_choices: bool = False
    form: Form | None = None

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
            for v in value if isinstance(value, list) else [value]:
                yield from (v.user_id, v.tenant, v.email) if isinstance(v, UserRef) else (v,)
        for pair in self.state.items():
            yield from pair
        if self.form is not None:  # a form as a surface sent it back (Teams card data)
            yield from (self.form.id, self.form.title, self.form.intro)
            for inp in self.form.inputs:
                yield from (inp.id, inp.label, inp.hint, inp.placeholder)
                for o in inp.options:
                    yield from (o.value, o.label)
