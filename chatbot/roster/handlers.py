"""What the roster answers: the searches behind pupil and staff pickers."""

from __future__ import annotations

from chatbot.effects import Effect, Options
from chatbot.fields import many
from chatbot.registry import Registry, Turn
from chatbot.roster import pupils
from chatbot.roster.identity import staff_options
from chatbot.uow import Unit


async def pupil_search(u: Unit, t: Turn) -> list[Effect]:
    """Matches for the query, after the pupils already chosen (so a redrawn picker keeps
    them); only staff on the roster get answers (the router refuses anyone else)."""
    upns = many(t.interaction.values, t.interaction.name)[:30]
    first = await pupils.labelled(u.session, upns) if upns else []
    have = {o.value for o in first}
    found = [o for o in await pupils.search(u.session, t.interaction.text) if o.value not in have]
    return [Options((*first, *found))]


async def staff_search(u: Unit, t: Turn) -> list[Effect]:
    return [Options(tuple(await staff_options(u.session, t.interaction.text)))]


def register(r: Registry) -> None:
    r.options("pupils", pupil_search)
    r.options("pupil", pupil_search)
    r.options("staff", staff_search)
