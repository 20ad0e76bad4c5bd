"""Shared helpers for the concern tests (this module holds no tests itself)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from chatbot.effects import Effect
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, Concern, ConcernEvent, OutboxMessage
from chatbot.uow import Units
from tests.conftest import submit

# Monday 30 November 2026, 10:00 London: inside school hours.
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
NARRATIVE = "Zebra-marker-7741: the pupil said an adult online asked them to keep a secret."


def good(**over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "pupil": "A123456789012",
        "category": "online_abuse",
        "staff": "",
        "risk": "no",
        "when_date": "2026-11-30",
        "when_time": "07:30",
        "narrative": NARRATIVE,
    }
    values.update(over)
    return values


async def file_concern(
    bot: Bot, email: str = "teacher@school.test", state: dict[str, str] | None = None, **over: Any
) -> list[Effect]:
    return await bot.handle(submit(email, "concern", good(**over), state))


async def concerns(core: Units) -> list[Concern]:
    async with core.db.transaction() as s:
        return list((await s.execute(select(Concern).order_by(Concern.id))).scalars())


async def outbox_rows(core: Units) -> list[OutboxMessage]:
    async with core.db.transaction() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def audits(core: Units, action: str) -> list[AuditEvent]:
    async with core.db.transaction() as s:
        return list(
            (
                await s.execute(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            ).scalars()
        )


async def events(core: Units, concern_id: int) -> list[str]:
    async with core.db.transaction() as s:
        return list(
            (
                await s.execute(
                    select(ConcernEvent.kind)
                    .where(ConcernEvent.concern_id == concern_id)
                    .order_by(ConcernEvent.at, ConcernEvent.id)
                )
            ).scalars()
        )


async def count(core: Units, model: Any) -> int:
    async with core.db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())
