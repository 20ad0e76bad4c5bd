"""The one table of what the bot answers: each concept registers its handlers and sweeps here.

A handler is keyed by the interaction's kind and a name: the command word for commands and
typed messages, the action id for buttons, the form id for submissions, the picker kind for
option searches. Flags on the registration tell the router what the handler needs, so the
router (not each handler) decides on transactions and roster checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from chatbot.effects import Effect
from chatbot.interaction import Interaction
from chatbot.policy import Policy
from chatbot.storage.models import Staff
from chatbot.ui import Message
from chatbot.uow import Unit, Units

RouteKind = Literal["command", "action", "submit", "options", "install", "message", "home"]


@dataclass(frozen=True)
class Turn:
    """One interaction as a handler sees it: who acted, and the command's arguments."""

    interaction: Interaction
    actor: Staff | None  # None: not on the staff roster
    actor_label: str  # who acted, for records: the roster email, else what the platform said
    args: str = ""  # a command's text after the command word

    @property
    def staff(self) -> Staff:
        """The actor, for handlers registered with ``staff_only`` (the router checked)."""
        assert self.actor is not None, "handler registered without staff_only"
        return self.actor


Handler = Callable[[Unit, Turn], Awaitable[list[Effect]]]
Failure = Callable[[Policy, Turn], list[Effect]]  # what to answer when the unit could not commit
Sweep = Callable[[Units], Awaitable[int]]


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    name: str
    handler: Handler
    staff_only: bool = True  # refuse people who are not on the staff roster
    writes: bool = True  # a write unit with the delivery's dedupe row; else a read-only one
    fresh_actor: bool = False  # decide on the roster as it is now, never a cached match
    on_failure: Failure | None = None  # else the failure propagates to the adapter
    help: str = ""  # commands: one line for /help


@dataclass
class Registry:
    routes: dict[tuple[RouteKind, str], Route] = field(default_factory=dict)
    sweeps: dict[str, Sweep] = field(default_factory=dict)
    home: Callable[[Unit, Turn], Awaitable[Message]] | None = None  # redrawn after its clicks

    def add(
        self,
        kind: RouteKind,
        name: str,
        handler: Handler,
        *,
        staff_only: bool = True,
        writes: bool = True,
        fresh_actor: bool = False,
        on_failure: Failure | None = None,
        help: str = "",
    ) -> None:
        key = (kind, name)
        if key in self.routes:
            raise ValueError(f"{kind} {name!r} is registered twice")
        self.routes[key] = Route(
            kind, name, handler, staff_only, writes, fresh_actor, on_failure, help
        )

    def command(self, name: str, handler: Handler, **flags: object) -> None:
        """A command, typed as ``/name`` in Slack or ``name`` in a Teams or console chat.
        Commands only read unless they say otherwise."""
        flags.setdefault("writes", False)
        self.add("command", name, handler, **flags)  # type: ignore[arg-type]

    def action(self, name: str, handler: Handler, **flags: object) -> None:
        self.add("action", name, handler, **flags)  # type: ignore[arg-type]

    def submit(self, form_id: str, handler: Handler, **flags: object) -> None:
        self.add("submit", form_id, handler, **flags)  # type: ignore[arg-type]

    def options(self, picker_kind: str, handler: Handler, **flags: object) -> None:
        flags.setdefault("writes", False)
        self.add("options", picker_kind, handler, **flags)  # type: ignore[arg-type]

    def sweep(self, name: str, sweep: Sweep) -> None:
        if name in self.sweeps:
            raise ValueError(f"sweep {name!r} is registered twice")
        self.sweeps[name] = sweep

    def find(self, kind: RouteKind, name: str) -> Route | None:
        return self.routes.get((kind, name))

    def commands(self) -> list[Route]:
        return [r for (kind, _), r in self.routes.items() if kind == "command"]
