"""What a form's pickers offer, filled in by the core so adapters never have to ask for it.

Every form leaves the core with the names of the pupils it already has chosen (a re-booking,
a concern opened from a call). Surfaces that cannot search as the person types (Teams cards)
also get the first pupils and the staff roster as choices. Staff names go only to people on
the roster; the roster list is kept briefly per person and role, so a burst of forms costs one
query, and nobody is ever shown a list that was made for someone else.
"""

from __future__ import annotations

import time
from dataclasses import replace

from chatbot.interaction import SubmittedValue
from chatbot.roster.identity import staff_options
from chatbot.roster.pupils import labelled, search
from chatbot.storage.models import Staff
from chatbot.ui import Form, Input, Option
from chatbot.uow import Unit

CACHE_SECONDS = 30.0
CACHE_SIZE = 5000
PUPIL_KINDS = ("pupil", "pupils")


class Choices:
    def __init__(self) -> None:
        self._staff: dict[tuple[int, str], tuple[float, tuple[Option, ...]]] = {}

    async def staff(self, u: Unit, actor: Staff | None) -> tuple[Option, ...]:
        """The roster as picker choices, for someone on it; nothing for anyone else."""
        if actor is None or not actor.active:
            return ()
        key = (actor.id, actor.roles)
        hit = self._staff.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        options = tuple(await staff_options(u.session, ""))
        if len(self._staff) >= CACHE_SIZE:
            self._staff.clear()
        self._staff[key] = (time.monotonic() + CACHE_SECONDS, options)
        return options

    async def fill(
        self,
        u: Unit,
        form: Form,
        actor: Staff | None,
        lists: bool,
        found: dict[str, tuple[Option, ...]] | None = None,
    ) -> Form:
        """``form`` with its pickers' choices: chosen pupils always, lists when ``lists``;
        ``found`` gives a picker the matches of a search instead of the first pupils."""
        inputs: list[Input] = []
        for inp in form.inputs:
            if inp.kind in PUPIL_KINDS and actor is not None:
                inp = await self._pupils(u, inp, lists, (found or {}).get(inp.id))
            elif inp.kind == "staff" and lists:
                inp = replace(inp, options=await self.staff(u, actor))
            inputs.append(inp)
        return replace(form, inputs=tuple(inputs))

    @staticmethod
    async def _pupils(
        u: Unit, inp: Input, lists: bool, matches: tuple[Option, ...] | None
    ) -> Input:
        """The chosen pupils (only real ones stay chosen) first, then a search's matches or,
        for a surface that lists choices, the first pupils."""
        chosen = list(await labelled(u.session, _chosen(inp)))
        keep = tuple(o.value for o in chosen)
        if matches is not None or lists:
            listed = matches if matches is not None else tuple(await search(u.session, ""))
            chosen += [o for o in listed if o.value not in keep]
        initial: str | tuple[str, ...] | None = keep
        if inp.kind == "pupil":
            initial = keep[0] if keep else None
        return replace(inp, options=tuple(chosen), initial=initial or None)


def _chosen(inp: Input) -> list[str]:
    if inp.initial is None:
        return []
    return [inp.initial] if isinstance(inp.initial, str) else list(inp.initial)


def with_values(form: Form, values: dict[str, SubmittedValue]) -> Form:
    """``form`` showing what was submitted (people picked stay as the surface sent them)."""
    inputs = []
    for inp in form.inputs:
        v = values.get(inp.id)
        if isinstance(v, str):
            inputs.append(replace(inp, initial=v))
        elif isinstance(v, list) and all(isinstance(x, str) for x in v):
            inputs.append(replace(inp, initial=tuple(str(x) for x in v)))
        else:
            inputs.append(inp)
    return replace(form, inputs=tuple(inputs))
