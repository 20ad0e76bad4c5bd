"""Pupil look-ups shared by booking, consent and concerns."""

from __future__ import annotations

from sqlalchemy import bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.search_key import fold, like_pattern
from chatbot.storage.models import Consent, Pupil, short_name
from chatbot.ui import Option

SEARCH_LIMIT = 50  # a picker never shows more than this (Slack allows 100 options)


# Built once (see booking._OVERLAPPING): every booking and consent form runs these.
_ASKED = (Pupil.upn.in_(bindparam("upns", expanding=True)), Pupil.active.is_(True))
_CURRENT = Consent.withdrawn_at.is_(None)  # consent on file: given and not withdrawn
_BY_UPN = select(Pupil).where(*_ASKED)
_WITH_CONSENT = select(Consent.pupil_id).where(
    Consent.pupil_id.in_(bindparam("ids", expanding=True)), _CURRENT
)


def _wanted(upns: list[str]) -> list[str]:
    return list(dict.fromkeys(u.strip().upper() for u in upns if u.strip()))


def _as_asked(found: dict[str, Pupil], wanted: list[str]) -> tuple[list[Pupil], list[str]]:
    """The pupils found, in the order asked for, and the UPNs not found."""
    return [found[u] for u in wanted if u in found], [u[:20] for u in wanted if u not in found]


async def pupils_by_upn(s: AsyncSession, upns: list[str]) -> tuple[list[Pupil], list[str]]:
    """The active pupils with these UPNs, and the UPNs not found (in the order given)."""
    wanted = _wanted(upns)
    if not wanted:
        return [], []
    found = {p.upn: p for p in (await s.execute(_BY_UPN, {"upns": wanted})).scalars()}
    return _as_asked(found, wanted)


# The same pupils, each with whether written consent is on file: one statement for a booking.
_BY_UPN_WITH_CONSENT = select(
    Pupil,
    exists().where(Consent.pupil_id == Pupil.id, _CURRENT).correlate(Pupil).label("consented"),
).where(*_ASKED)


async def pupils_with_consent(
    s: AsyncSession, upns: list[str]
) -> tuple[list[Pupil], list[str], set[int]]:
    """:func:`pupils_by_upn`, and the ids of those with current written consent on file."""
    wanted = _wanted(upns)
    if not wanted:
        return [], [], set()
    found: dict[str, Pupil] = {}
    consented: set[int] = set()
    for pupil, ok in await s.execute(_BY_UPN_WITH_CONSENT, {"upns": wanted}):
        found[pupil.upn] = pupil
        if ok:
            consented.add(pupil.id)
    return *_as_asked(found, wanted), consented


async def with_consent(s: AsyncSession, pupil_ids: list[int]) -> set[int]:
    """Which of these pupils have current written consent on file."""
    if not pupil_ids:
        return set()
    return set((await s.execute(_WITH_CONSENT, {"ids": pupil_ids})).scalars())


# A picker's rows: the columns its labels need, not whole pupils (building fifty ORM objects
# cost more than the query). Built once; a search adds its match to the first.
_LISTED = select(Pupil.upn, Pupil.forename, Pupil.surname, Pupil.class_name).where(
    Pupil.active.is_(True)
)
_IN_ORDER = (Pupil.search_key, Pupil.id)  # as people read names
_FIRST = _LISTED.order_by(*_IN_ORDER).limit(bindparam("limit"))
_MATCHING = (
    _LISTED.where(
        or_(
            Pupil.search_key.like(bindparam("like"), escape="\\"),
            func.lower(Pupil.class_name).like(bindparam("like"), escape="\\"),
            Pupil.upn == bindparam("upn"),
        )
    )
    .order_by(*_IN_ORDER)
    .limit(bindparam("limit"))
)


async def search(s: AsyncSession, query: str, limit: int = SEARCH_LIMIT) -> list[Option]:
    """Pupils matching a name, class or UPN fragment, whatever the accents and case ("Chloe"
    finds "Chloé"); labels use forename + surname initial."""
    q = query.strip()[:50]
    if fold(q):
        rows = await s.execute(
            _MATCHING, {"like": like_pattern(q), "upn": q.upper(), "limit": limit}
        )
    else:
        rows = await s.execute(_FIRST, {"limit": limit})
    return [Option(upn, label(forename, surname, cls)) for upn, forename, surname, cls in rows]


def option(p: Pupil) -> Option:
    """How a pupil appears in a picker: forename, surname initial and class."""
    return Option(p.upn, label(p.forename, p.surname, p.class_name))


def label(forename: str, surname: str, class_name: str | None) -> str:
    name = short_name(forename, surname)
    return f"{name} ({class_name})" if class_name else name


async def labelled(s: AsyncSession, upns: list[str]) -> list[Option]:
    """The chosen pupils as picker options, in the order given (unknown UPNs left out)."""
    found, _ = await pupils_by_upn(s, upns)
    return [option(p) for p in found]
