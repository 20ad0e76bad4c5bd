"""The outbox: durable notifications and the dispatcher that delivers them.

Services call ``to_staff`` / ``to_role`` / ``update_thread`` inside their transaction, so a
notification exists if and only if the change that caused it was committed. The
:class:`Dispatcher` claims due rows, delivers them through a :class:`Messenger`, and records the
platform's message reference. A failure (exception, 429, outage, crash mid-send) leaves the row
pending with a later ``due_at``: delivery is at-least-once and never silently dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.ports import ChannelUnavailable, Clock, DeliveryError, Messenger, Role, StaffAddress
from chatbot.storage.db import Database
from chatbot.storage.models import OutboxMessage, PlatformIdentity, Staff
from chatbot.ui import Message

log = logging.getLogger("chatbot.outbox")

CLAIM_SECONDS = 120
MAX_BACKOFF_SECONDS = 900


def _add(
    session: AsyncSession, now: datetime, message: Message, thread_key: str | None, **target: Any
) -> OutboxMessage:
    row = OutboxMessage(
        **target, thread_key=thread_key, payload=message.to_json(), created_at=now, due_at=now
    )
    session.add(row)
    return row


def to_staff(
    session: AsyncSession,
    now: datetime,
    staff_id: int,
    message: Message,
    thread_key: str | None = None,
) -> OutboxMessage:
    """A direct message to one member of staff."""
    return _add(session, now, message, thread_key, kind="staff", staff_id=staff_id)


def to_role(
    session: AsyncSession,
    now: datetime,
    role: Role,
    message: Message,
    thread_key: str | None = None,
) -> OutboxMessage:
    """A post in the DSL or SLT channel."""
    return _add(session, now, message, thread_key, kind="role", role=role)


async def update_thread(
    session: AsyncSession, now: datetime, thread_key: str, message: Message
) -> None:
    """Make every message of ``thread_key`` show ``message``: undelivered ones are rewritten
    before they go out, delivered ones are edited in place by an "update" row."""
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.thread_key == thread_key,
            OutboxMessage.kind != "update",
            OutboxMessage.delivered_at.is_(None),
        )
        .values(payload=message.to_json())
    )
    session.add(
        OutboxMessage(
            kind="update",
            thread_key=thread_key,
            payload=message.to_json(),
            created_at=now,
            due_at=now,
        )
    )


def backoff(attempts: int) -> float:
    return float(min(5 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


@dataclass
class DispatchReport:
    delivered: int = 0
    failed: int = 0


class Dispatcher:
    """Delivers due outbox rows. Safe to run in several processes at once: rows are claimed
    with a lease (and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) before they are sent."""

    def __init__(self, db: Database, clock: Clock, messenger: Messenger, batch: int = 50):
        self.db = db
        self.clock = clock
        self.messenger = messenger
        self.batch = batch

    async def run_once(self) -> DispatchReport:
        report = DispatchReport()
        for row_id in await self._claim():
            ok = await self._deliver(row_id)
            if ok:
                report.delivered += 1
            else:
                report.failed += 1
        return report

    async def drain(self, rounds: int = 10) -> DispatchReport:
        """Deliver until nothing due is left (or ``rounds`` passes); for the console and tests."""
        total = DispatchReport()
        for _ in range(rounds):
            r = await self.run_once()
            total.delivered += r.delivered
            total.failed += r.failed
            if r.delivered == 0:
                break
        return total

    async def _claim(self) -> list[int]:
        now = self.clock.now()
        token = now + timedelta(seconds=CLAIM_SECONDS)
        async with self.db.transaction() as s:
            q = (
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.due_at <= now,
                    or_(
                        OutboxMessage.claimed_until.is_(None),
                        OutboxMessage.claimed_until < now,
                    ),
                )
                .order_by(OutboxMessage.id)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            )
            ids = list((await s.execute(q)).scalars())
            if ids:
                await s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids))
                    .values(claimed_until=token)
                )
        return ids

    async def _deliver(self, row_id: int) -> bool:
        async with self.db.transaction() as s:
            row = await s.get(OutboxMessage, row_id)
            if row is None or row.delivered_at is not None:
                return True
            message = Message.from_json(row.payload)
            address = await self._address(s, row) if row.kind == "staff" else None
            targets = await self._update_targets(s, row) if row.kind == "update" else []
        try:
            ref: str | None = None
            if row.kind == "staff":
                assert address is not None
                ref = await self.messenger.send_to_staff(address, message)
            elif row.kind == "role":
                assert row.role in ("dsl", "slt"), "to_role only writes DSL or SLT rows"
                ref = await self.messenger.post_to_role(cast(Role, row.role), message)
            else:
                if targets is None:
                    raise DeliveryError("original_in_flight")
                for target_ref in targets:
                    await self.messenger.update(target_ref, message)
            if row.kind != "update" and not ref:
                raise DeliveryError("no_message_ref")
        except ChannelUnavailable as exc:
            await self._channel_fallback(row_id, exc)
            return False
        except DeliveryError as exc:
            await self._failed(row_id, exc.kind, exc.retry_after)
            return False
        except Exception as exc:  # a messenger bug or network error must not lose the row
            await self._failed(row_id, type(exc).__name__, None)
            return False
        async with self.db.transaction() as s:
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id)
                .values(
                    delivered_at=self.clock.now(),
                    message_ref=ref,
                    platform=self.messenger.platform,
                    claimed_until=None,
                    last_error=None,
                )
            )
        log.info("outbox %s delivered (%s)", row_id, row.kind)
        return True

    async def _address(self, s: AsyncSession, row: OutboxMessage) -> StaffAddress:
        staff = await s.get(Staff, row.staff_id)
        assert staff is not None
        ident = (
            await s.execute(
                select(PlatformIdentity.user_id)
                .where(
                    PlatformIdentity.staff_id == staff.id,
                    PlatformIdentity.platform == self.messenger.platform,
                )
                .order_by(PlatformIdentity.seen_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        return StaffAddress(staff.id, staff.email, staff.name, ident)

    async def _update_targets(self, s: AsyncSession, row: OutboxMessage) -> list[str] | None:
        """Refs of delivered messages in the thread; None while one is still being sent."""
        others = (
            await s.execute(
                select(OutboxMessage).where(
                    OutboxMessage.thread_key == row.thread_key,
                    OutboxMessage.kind != "update",
                    OutboxMessage.id < row.id,
                )
            )
        ).scalars()
        refs: list[str] = []
        now = self.clock.now()
        for o in others:
            if o.delivered_at is None:
                if o.claimed_until is not None and o.claimed_until > now:
                    return None
                continue  # not sent yet: its payload was already rewritten
            if o.message_ref and o.platform == self.messenger.platform:
                refs.append(o.message_ref)
        return refs

    async def _failed(self, row_id: int, kind: str, retry_after: float | None) -> None:
        async with self.db.transaction() as s:
            row = await s.get(OutboxMessage, row_id)
            if row is None:
                return
            row.attempts += 1
            delay = backoff(row.attempts)
            if retry_after is not None:
                delay = max(retry_after, 1.0)
            row.due_at = self.clock.now() + timedelta(seconds=delay)
            row.claimed_until = None
            row.last_error = kind[:200]
        level = logging.WARNING if row.attempts < 5 else logging.ERROR
        log.log(
            level,
            "outbox %s not delivered (%s), attempt %s; retry in %.0fs",
            row_id,
            kind,
            row.attempts,
            delay,
        )

    async def _channel_fallback(self, row_id: int, exc: ChannelUnavailable) -> None:
        """The DSL or SLT channel cannot be reached: say so loudly, send the message to the
        people in that role directly (once), and keep retrying the channel."""
        async with self.db.transaction() as s:
            row = await s.get(OutboxMessage, row_id)
            if row is None:
                return
            log.error(
                "ROLE CHANNEL UNREACHABLE: %s channel (%s); outbox %s sent to people directly",
                row.role,
                exc.kind,
                row_id,
            )
            if row.fallback_sent_at is None:
                roles = ("dsl", "deputy_dsl") if row.role == "dsl" else ("slt",)
                for person in await people_with_roles(s, roles):
                    to_staff(
                        s,
                        self.clock.now(),
                        person.id,
                        Message.from_json(row.payload),
                        thread_key=row.thread_key,
                    )
                row.fallback_sent_at = self.clock.now()
            row.attempts += 1
            row.due_at = self.clock.now() + timedelta(seconds=backoff(row.attempts))
            row.claimed_until = None
            row.last_error = exc.kind[:200]


async def people_with_roles(s: AsyncSession, roles: tuple[str, ...]) -> list[Staff]:
    staff = (await s.execute(select(Staff).where(Staff.active.is_(True)))).scalars()
    return [p for p in staff if p.has_role(*roles)]
