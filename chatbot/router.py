"""The one way in: adapters hand an Interaction to :meth:`Bot.handle` and render the Effects.

The router only routes. For each interaction it finds the handler in the registry, works out
who is acting (the roster match, cached briefly), resolves people picked in a platform's own
user picker through the Directory port, and runs the handler inside one unit of work. In that
unit it first claims the platform's delivery id, so the claim, the change, its audit rows and
its outbox messages commit together or not at all: a retry of a delivery whose first attempt
died before committing is processed, and processed once.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from chatbot.effects import Effect, FormErrors, OpenForm, Options, ShowHome, say
from chatbot.interaction import Interaction, SubmittedValue, UserRef
from chatbot.ports import Directory
from chatbot.registry import Registry, Route, Turn
from chatbot.roster.choices import Choices, with_values
from chatbot.roster.identity import known_staff, remember, seen, staff_by_id
from chatbot.storage.db import insert_ignoring_duplicates
from chatbot.storage.models import ProcessedDelivery, Staff
from chatbot.uow import Unit, Units

log = logging.getLogger("chatbot.router")

RECENT_DELIVERIES = 10_000  # delivery ids (and actors) remembered in memory
ACTOR_SECONDS = 30.0  # how long a roster match is reused before it is looked up again
ATTEMPTS = 5  # a unit that lost a race to a unique key is run again, this many times in all
SEEN_EVERY = timedelta(hours=1)  # how often "last seen on this platform" is brought up to date

UNREADABLE = (
    "Some of that has characters I can't read (a broken emoji, perhaps). "
    "Please type it again without them."
)
NOT_ON_ROSTER = (
    "You're not on the school's staff roster, so I can't book or show calls for you. "
    "Ask your IT technician to add your school email to the roster. "
    "You can still report a safeguarding concern with /concern."
)


def parse_command(text: str) -> tuple[str, str]:
    """``"/consent  letter"`` -> ``("consent", "letter")``: the command word, lower-case and
    without its slash, and the rest of the text."""
    word, _, rest = text.strip().partition(" ")
    return word.lstrip("/").lower()[:40], rest.strip()


class Bot:
    def __init__(
        self,
        units: Units,
        registry: Registry,
        directories: dict[str, Directory] | None = None,
    ):
        self.units = units
        self.registry = registry
        self.directories = directories or {}
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._actors: dict[tuple[str, str, str, str], tuple[float, Staff | None]] = {}
        self.choices = Choices()

    async def sweep(self) -> int:
        """Every registered sweep that has work due; returns how many steps ran."""
        done = 0
        for sweep in self.registry.sweeps.values():
            done += await sweep(self.units)
        return done

    async def handle(self, i: Interaction) -> list[Effect]:
        if not i.readable():  # text no database or JSON encoder takes (a lone surrogate)
            log.info("refused an interaction with unreadable text on %s", i.platform)
            return say(UNREADABLE)
        route, args = self._find(i)
        if route is None:
            return self._unrouted(i)
        key = (i.platform, (i.delivery_id or "")[:200])
        if i.delivery_id:
            # A retry arriving while the first attempt is still running is caught here; one
            # arriving after a restart or on another replica is caught by the database claim.
            if key in self._recent:
                log.info("ignored repeated delivery on %s", i.platform)
                return []
            self._recent[key] = None
            if len(self._recent) > RECENT_DELIVERIES:
                self._recent.popitem(last=False)
        try:
            return await self._run(route, i, args)
        except BaseException:
            self._recent.pop(key, None)  # the attempt failed: let the platform's retry through
            raise

    # ----- routing

    def _find(self, i: Interaction) -> tuple[Route | None, str]:
        reg = self.registry
        if i.kind in ("command", "message"):
            word, args = parse_command(i.text)
            route = reg.find("command", word)
            if route is not None:
                return route, args
            return (reg.find("message", ""), i.text) if i.kind == "message" else (None, word)
        if i.kind in ("install", "home"):
            return reg.find(i.kind, ""), ""
        if i.kind == "options":
            return reg.find("options", i.value), ""
        return reg.find(i.kind, i.name), ""

    def _unrouted(self, i: Interaction) -> list[Effect]:
        if i.kind == "command":
            word, _ = parse_command(i.text)
            known = ", ".join(f"/{r.name}" for r in self.registry.commands() if r.help)
            return say(f"I don't know /{word[:30]}. Try {known}.")
        if i.kind == "action":
            return say("That button is no longer in use.")
        if i.kind == "submit":
            return say("That form is no longer in use.")
        if i.kind == "options":
            return [Options(())]
        return []

    # ----- running a handler

    async def _run(self, route: Route, i: Interaction, args: str) -> list[Effect]:
        actor = await self._identify(i)
        i = await self._resolve_pickers(i)
        turn = Turn(i, actor, label(i, actor), args)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._unit(route, i, actor, turn)
            except IntegrityError:
                # Lost a race for a unique key (a weekly slot, a reference number, a tick):
                # nothing was written; run again and see the winner's row.
                log.warning("%s %s: lost a race, attempt %d", route.kind, route.name, attempt)
                if attempt == ATTEMPTS:
                    return self._failed(route, turn)
            except Exception as exc:
                if route.on_failure is None:
                    raise
                # Never log the exception's text: it may quote what the person wrote.
                log.error("%s %s failed (%s)", route.kind, route.name, type(exc).__name__)
                return self._failed(route, turn)
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, route: Route, turn: Turn) -> list[Effect]:
        if route.on_failure is not None:
            return route.on_failure(self.units.policy, turn)
        raise RuntimeError(f"{route.kind} {route.name} kept losing races")

    async def _unit(
        self, route: Route, i: Interaction, actor: Staff | None, turn: Turn
    ) -> list[Effect]:
        opened = self.units.write() if route.writes else self.units.read()
        async with opened as u:
            if route.writes and i.delivery_id and not await self._claim(u, i):
                log.info("ignored repeated delivery on %s", i.platform)
                return []
            staff = actor
            if route.fresh_actor and staff is not None:
                # Safeguarding decisions use the roster as it is now, never a cached match.
                staff = await staff_by_id(u.session, staff.id)
                turn = replace(turn, actor=staff, actor_label=label(i, staff))
            if route.staff_only and staff is None:
                return [Options(())] if route.kind == "options" else say(NOT_ON_ROSTER)
            effects = [await self._finish(u, e, staff, i) for e in await route.handler(u, turn)]
            if route.kind == "options" and i.form is not None:
                effects.append(await self._redraw(u, i, staff, effects))
            drawn = any(isinstance(e, ShowHome) for e in effects)  # e.g. with a question open
            if i.surface == "home" and self.registry.home is not None and staff is not None:
                if not drawn:
                    effects.append(ShowHome(await self.registry.home(u, turn)))
            return effects

    async def _finish(self, u: Unit, e: Effect, staff: Staff | None, i: Interaction) -> Effect:
        """Forms leave the core with everything needed to draw them (their pickers' choices);
        a surface that keeps no state gets its form back with the errors."""
        if isinstance(e, OpenForm):
            return OpenForm(await self.choices.fill(u, e.form, staff, i.lists_choices))
        if isinstance(e, FormErrors):
            form = e.form or (with_values(i.form, i.values) if i.form is not None else None)
            if form is not None:
                return replace(e, form=await self.choices.fill(u, form, staff, i.lists_choices))
        return e

    async def _redraw(
        self, u: Unit, i: Interaction, staff: Staff | None, effects: list[Effect]
    ) -> Effect:
        """A picker searched on a surface that keeps no state: its form again, as it was
        filled in, with the search's matches in that picker."""
        assert i.form is not None
        found = next((e.options for e in effects if isinstance(e, Options)), ())
        form = with_values(i.form, i.values)
        return OpenForm(await self.choices.fill(u, form, staff, True, {i.name: found}))

    async def _claim(self, u: Unit, i: Interaction) -> bool:
        """Insert the delivery's dedupe row in the unit; False when it is a repeat."""
        assert i.delivery_id is not None
        row = {"platform": i.platform, "delivery_id": i.delivery_id[:200], "at": u.now}
        return await insert_ignoring_duplicates(u.session, ProcessedDelivery, row)

    # ----- who is acting

    async def _identify(self, i: Interaction) -> Staff | None:
        """The roster match for the actor: from memory when recent, else from the database,
        else (first contact) by their email from the platform's directory, remembered."""
        key = (i.platform, i.actor.tenant, i.actor.user_id, (i.actor.email or "").lower())
        hit = self._actors.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self.units.read() as u:
            known, staff, seen_at = await known_staff(u.session, i.actor)
        if known and (seen_at is None or seen_at < self.units.now() - SEEN_EVERY):
            async with self.units.write() as u:  # at most hourly: where to reach them next
                await seen(u.session, i.actor, u.now)
        if not known:
            email = i.actor.email
            directory = self.directories.get(i.platform)
            if not email and directory is not None:
                email = await directory.email_for(i.actor)  # network: outside any transaction
            async with self.units.write() as u:
                staff = await remember(u.session, i.actor, email, u.now)
        if len(self._actors) > RECENT_DELIVERIES:
            self._actors.clear()
        if staff is not None:
            self._actors[key] = (time.monotonic() + ACTOR_SECONDS, staff)
        return staff

    async def _resolve_pickers(self, i: Interaction) -> Interaction:
        """People picked in a platform's own user picker, with the email the platform's
        directory gives for them (None when it has none: the core then says so)."""
        if not any(_has_user(v) for v in i.values.values()):
            return i
        values: dict[str, SubmittedValue] = {}
        for k, v in i.values.items():
            if isinstance(v, UserRef):
                values[k] = await self._with_email(v)
            elif isinstance(v, list) and v and isinstance(v[0], UserRef):
                values[k] = [await self._with_email(x) for x in v if isinstance(x, UserRef)]
            else:
                values[k] = v
        return replace(i, values=values)

    async def _with_email(self, user: UserRef) -> UserRef:
        if user.email:
            return user
        directory = self.directories.get(user.platform)
        email = await directory.email_for(user) if directory is not None else None
        return replace(user, email=email)


def _has_user(v: Any) -> bool:
    return isinstance(v, UserRef) or (
        isinstance(v, list) and any(isinstance(x, UserRef) for x in v)
    )


def label(i: Interaction, staff: Staff | None) -> str:
    """Who acted, for the record: the roster email, else what the platform told us."""
    if staff is not None:
        return staff.email
    return (i.actor.email or i.actor.display_name or f"{i.platform}:{i.actor.user_id}")[:320]
