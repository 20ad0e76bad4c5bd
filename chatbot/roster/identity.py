"""Who is talking: match a platform user to a staff member by email."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.interaction import UserRef
from chatbot.search_key import fold, like_pattern
from chatbot.storage.models import PlatformIdentity, Staff
from chatbot.ui import Option


def normalise_email(email: str) -> str:
    return email.strip().lower()


_BY_EMAIL = select(Staff).where(Staff.email == bindparam("email"))


async def staff_by_email(s: AsyncSession, email: str) -> Staff | None:
    return (await s.execute(_BY_EMAIL, {"email": normalise_email(email)})).scalar_one_or_none()


async def cli_actor(
    s: AsyncSession, as_email: str | None, anonymous: str = "cli"
) -> tuple[Staff | None, str]:
    """Who a CLI command says is acting (its ``--as``): their roster entry if any, and a label
    for the audit trail (``anonymous`` when none was given). The CLI trusts whoever can run it
    on the server; ``--as`` records who they say they are, it does not prove it."""
    email = (as_email or "").strip()
    if not email:
        return None, anonymous
    return await staff_by_email(s, email), email[:200]


async def staff_by_id(s: AsyncSession, staff_id: int) -> Staff | None:
    """The member of staff as the roster has them now (None if they have left)."""
    staff = await s.get(Staff, staff_id, populate_existing=True)
    return _active(staff)


async def _identity(s: AsyncSession, user: UserRef) -> PlatformIdentity | None:
    return (
        await s.execute(
            select(PlatformIdentity).where(
                PlatformIdentity.platform == user.platform,
                PlatformIdentity.tenant == user.tenant,
                PlatformIdentity.user_id == user.user_id,
            )
        )
    ).scalar_one_or_none()


def _active(staff: Staff | None) -> Staff | None:
    return staff if staff is not None and staff.active else None


async def known_staff(s: AsyncSession, user: UserRef) -> tuple[bool, Staff | None, datetime | None]:
    """Read-only fast path. (True, staff, last seen) when ``user`` was already matched to a
    member of staff; (False, None, None) when they are new, unmatched or their email changed."""
    row = (
        await s.execute(
            select(PlatformIdentity.email, Staff, PlatformIdentity.seen_at)
            .join(Staff, Staff.id == PlatformIdentity.staff_id)
            .where(
                PlatformIdentity.platform == user.platform,
                PlatformIdentity.tenant == user.tenant,
                PlatformIdentity.user_id == user.user_id,
            )
        )
    ).first()
    if row is None:
        return False, None, None
    known_email, staff, seen_at = row
    if user.email and normalise_email(user.email) != known_email:
        return False, None, None
    return True, _active(staff), seen_at


async def seen(s: AsyncSession, user: UserRef, now: datetime) -> None:
    """Note that ``user`` was active: direct messages go to the platform last seen."""
    await s.execute(
        update(PlatformIdentity)
        .where(
            PlatformIdentity.platform == user.platform,
            PlatformIdentity.tenant == user.tenant,
            PlatformIdentity.user_id == user.user_id,
        )
        .values(seen_at=now)
    )


async def remember(
    s: AsyncSession, user: UserRef, email: str | None, now: datetime
) -> Staff | None:
    """Match ``user`` to the roster by ``email`` and cache the match (so later messages can
    use their platform id). Returns the active staff member, or None if not on the roster."""
    staff = await staff_by_email(s, email) if email else None
    try:
        async with s.begin_nested():
            ident = await _identity(s, user)
            if ident is None:
                ident = PlatformIdentity(
                    platform=user.platform, tenant=user.tenant, user_id=user.user_id, seen_at=now
                )
                s.add(ident)
            ident.email = normalise_email(email) if email else None
            ident.staff_id = staff.id if staff is not None else None
            ident.seen_at = now
    except IntegrityError:
        pass  # a concurrent first message from the same user recorded it; the match stands
    return _active(staff)


async def staff_options(s: AsyncSession, query: str, limit: int = 100) -> list[Option]:
    """Active staff matching a name (whatever the accents and case) or email fragment, for
    pickers that can't search the platform's own directory. Values are emails (the core's
    convention for staff inputs)."""
    stmt = select(Staff).where(Staff.active.is_(True))
    q = query.strip()[:50]
    if fold(q):
        like = like_pattern(q)
        stmt = stmt.where(
            or_(Staff.search_key.like(like, escape="\\"), Staff.email.like(like, escape="\\"))
        )
    rows = (await s.execute(stmt.order_by(Staff.surname, Staff.forename).limit(limit))).scalars()
    return [Option(p.email, p.name) for p in rows]
