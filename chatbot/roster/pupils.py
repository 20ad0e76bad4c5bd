"""Pupil look-ups shared by booking, consent and concerns."""

from __future__ import annotations

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.search_key import fold, like_pattern
from chatbot.storage.models import Consent, Pupil
from chatbot.ui import Option

SEARCH_LIMIT = 50  # a picker never shows more than this (Slack allows 100 options)


# Built once (see booking._OVERLAPPING): every booking and consent form runs these.
_BY_UPN = select(Pupil).where(
    Pupil.upn.in_(bindparam("upns", expanding=True)), Pupil.active.is_(True)
)
_WITH_CONSENT = select(Consent.pupil_id).where(
    Consent.pupil_id.in_(bindparam("ids", expanding=True)), Consent.withdrawn_at.is_(None)
)


async def pupils_by_upn(s: AsyncSession, upns: list[str]) -> tuple[list[Pupil], list[str]]:
    """The active pupils with these UPNs, and the UPNs not found (in the order given)."""
    wanted = list(dict.fromkeys(u.strip().upper() for u in upns if u.strip()))
    if not wanted:
        return [], []
    found = {p.upn: p for p in (await s.execute(_BY_UPN, {"upns": wanted})).scalars()}
    return [found[u] for u in wanted if u in found], [u[:20] for u in wanted if u not in found]


async def with_consent(s: AsyncSession, pupil_ids: list[int]) -> set[int]:
    """Which of these pupils have current written consent on file."""
    if not pupil_ids:
        return set()
    return set((await s.execute(_WITH_CONSENT, {"ids": pupil_ids})).scalars())


async def search(s: AsyncSession, query: str, limit: int = SEARCH_LIMIT) -> list[Option]:
    """Pupils matching a name, class or UPN fragment, whatever the accents and case ("Chloe"
    finds "Chloé"); labels use forename + surname initial."""
    q = query.strip()[:50]
    stmt = select(Pupil).where(Pupil.active.is_(True))
    if fold(q):
        like = like_pattern(q)
        stmt = stmt.where(
            or_(
                Pupil.search_key.like(like, escape="\\"),
                func.lower(Pupil.class_name).like(like, escape="\\"),
                Pupil.upn == q.upper(),
            )
        )
    stmt = stmt.order_by(Pupil.search_key, Pupil.id).limit(limit)  # as people read names
    return [option(p) for p in (await s.execute(stmt)).scalars()]


def option(p: Pupil) -> Option:
    """How a pupil appears in a picker: forename, surname initial and class."""
    return Option(p.upn, f"{p.short_name} ({p.class_name})" if p.class_name else p.short_name)


async def labelled(s: AsyncSession, upns: list[str]) -> list[Option]:
    """The chosen pupils as picker options, in the order given (unknown UPNs left out)."""
    found, _ = await pupils_by_upn(s, upns)
    return [option(p) for p in found]
