"""Who is talking: match a platform user to a staff member by email."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.interaction import UserRef
from chatbot.ports import Directory
from chatbot.storage.models import PlatformIdentity, Staff


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def staff_by_email(s: AsyncSession, email: str) -> Staff | None:
    return (
        await s.execute(select(Staff).where(Staff.email == normalise_email(email)))
    ).scalar_one_or_none()


async def resolve_staff(
    s: AsyncSession, user: UserRef, now: datetime, directory: Directory | None = None
) -> Staff | None:
    """The active staff member behind ``user``, or None if they are not on the roster.

    The first contact looks the user's email up (from the interaction, else the platform
    directory) and caches the match, so later messages to them can use their platform id.
    """
    ident = (
        await s.execute(
            select(PlatformIdentity).where(
                PlatformIdentity.platform == user.platform,
                PlatformIdentity.tenant == user.tenant,
                PlatformIdentity.user_id == user.user_id,
            )
        )
    ).scalar_one_or_none()
    email = user.email
    if ident is not None and ident.staff_id is not None and not email:
        staff = await s.get(Staff, ident.staff_id)
        return staff if staff is not None and staff.active else None
    if not email and directory is not None:
        email = await directory.email_for(user)
    if not email:
        return None
    staff = await staff_by_email(s, email)
    if ident is None:
        ident = PlatformIdentity(
            platform=user.platform, tenant=user.tenant, user_id=user.user_id, seen_at=now
        )
        s.add(ident)
    ident.email = normalise_email(email)
    ident.staff_id = staff.id if staff is not None else None
    ident.seen_at = now
    await s.flush()
    return staff if staff is not None and staff.active else None
