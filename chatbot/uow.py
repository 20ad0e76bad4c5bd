"""Units of work: one database transaction, the school's policy, and the moment it runs at.

The router opens one unit per interaction and each sweep opens one per step; the concept
services work inside the unit they are given and never open transactions of their own. What a
unit writes besides the ORM changes (audit rows, outbox notifications) is collected and
inserted with two Core statements just before the commit, because the ORM's unit-of-work
flush was the most expensive part of a booking. So a change, its audit trail and the messages
it causes are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.mail import MailSetup
from chatbot.policy import Policy
from chatbot.ports import Clock, Role, SystemClock
from chatbot.storage.db import Database
from chatbot.storage.models import AuditEvent, OutboxMessage, Staff
from chatbot.ui import Message

# Plain Core inserts on the tables, built once: going through the ORM entity (or building the
# statement each time) cost more than SQLite takes to store the rows.
INSERT_AUDIT = insert(cast(Table, AuditEvent.__table__))
INSERT_OUTBOX = insert(cast(Table, OutboxMessage.__table__))
_OUTBOX = cast(Table, OutboxMessage.__table__)
REWRITE_THREAD = (  # messages of a thread not sent yet: their new content
    update(_OUTBOX)
    .where(
        _OUTBOX.c.thread_key == bindparam("thread"),
        _OUTBOX.c.kind != "update",
        _OUTBOX.c.delivered_at.is_(None),
    )
    .values(payload=bindparam("new"))
)


@dataclass
class Units:
    """Opens units of work on the school's database, under its policy and clock."""

    db: Database
    policy: Policy
    clock: Clock = field(default_factory=SystemClock)
    mail: MailSetup = field(default_factory=MailSetup)  # the school's mail, if set up
    # A Meetings adapter (Zoom) is connected: confirmed calls get their meeting from the bot.
    meetings: bool = False

    def now(self) -> datetime:
        return self.clock.now()

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.policy.zone)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Unit]:
        """A unit that may change things: committed when the block ends, rolled back (with
        everything it queued) if the block raises."""
        async with self.db.transaction() as session:
            unit = Unit(
                session,
                self.policy,
                self.now(),
                serial=self.db.serial_writers,
                mail=self.mail,
                meetings=self.meetings,
            )
            yield unit
            await unit.flush()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Unit]:
        """A read-only unit: on SQLite it never waits for the write lock. Queuing audit rows
        or messages in it is a programming error."""
        async with self.db.reading() as session:
            unit = Unit(
                session,
                self.policy,
                self.now(),
                read_only=True,
                mail=self.mail,
                meetings=self.meetings,
            )
            yield unit
            if unit.pending:
                raise RuntimeError("a read-only unit of work queued writes")


@dataclass
class Unit:
    session: AsyncSession
    policy: Policy
    now: datetime
    read_only: bool = False
    serial: bool = False  # write units run one at a time (SQLite): no row locks needed
    mail: MailSetup = field(default_factory=MailSetup)
    meetings: bool = False  # see Units.meetings
    _audit: list[dict[str, Any]] = field(default_factory=list)
    _outbox: list[dict[str, Any]] = field(default_factory=list)

    @property
    def zone(self) -> ZoneInfo:
        return self.policy.zone

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.policy.zone)

    @property
    def pending(self) -> bool:
        return bool(self._audit or self._outbox)

    # ----- the audit trail

    def audit(
        self,
        actor: Staff | str | None,
        action: str,
        subject_type: str,
        subject_id: object,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Queue an append-only audit row. ``detail`` holds ids and codes, never narratives:
        concern text and parent emails stay in their own tables."""
        if isinstance(actor, Staff):
            actor_id: int | None = actor.id
            label = actor.email
        else:
            actor_id = None
            label = actor or "system"
        self._audit.append(
            {
                "at": at or self.now,
                "actor_id": actor_id,
                "actor_label": label[:200],
                "action": action,
                "subject_type": subject_type,
                "subject_id": str(subject_id)[:50],
                "detail": detail or {},
            }
        )

    # ----- notifications (delivered by the outbox dispatcher after the commit)

    def to_staff(self, staff_id: int, message: Message, thread_key: str | None = None) -> None:
        """A direct message to one member of staff."""
        self._queue(message, thread_key, kind="staff", staff_id=staff_id, role=None)

    def to_role(self, role: Role, message: Message, thread_key: str | None = None) -> None:
        """A post in the DSL or SLT channel."""
        self._queue(message, thread_key, kind="role", staff_id=None, role=role)

    def tell_slt(self, message: Message, thread_key: str | None = None) -> None:
        """Tell SLT about a call, the way the policy's ``slt_notices`` says: in the SLT
        channel, by email to SLT_EMAIL, or both. Without SLT_EMAIL the channel is used."""
        by_email = (
            self.policy.slt_notices != "channel" and self.mail.sending and bool(self.mail.slt)
        )
        if by_email:
            from chatbot.mail.slt import queue_slt_email

            queue_slt_email(self, message)
        if not by_email or self.policy.slt_notices != "email":
            self.to_role("slt", message, thread_key=thread_key)

    async def update_thread(self, thread_key: str, message: Message) -> None:
        """Make every message of ``thread_key`` show ``message``: ones not yet sent are
        rewritten before they go out, sent ones are edited in place by an "update" row."""
        payload = message.to_json()
        for row in self._outbox:
            if row["thread_key"] == thread_key and row["kind"] != "update":
                row["payload"] = payload
        await self.session.execute(REWRITE_THREAD, {"thread": thread_key, "new": payload})
        self._queue(message, thread_key, kind="update", staff_id=None, role=None)

    def _queue(self, message: Message, thread_key: str | None, **target: Any) -> None:
        self._outbox.append(
            {
                **target,
                "thread_key": thread_key,
                "payload": message.to_json(),
                "created_at": self.now,
                "due_at": self.now,
                "attempts": 0,
            }
        )

    async def flush(self) -> None:
        """Insert what was queued (called by :meth:`Units.write` before the commit)."""
        if self.read_only and self.pending:
            raise RuntimeError("a read-only unit of work queued writes")
        if self._audit:
            await self.session.execute(INSERT_AUDIT, self._audit)
            self._audit = []
        if self._outbox:
            await self.session.execute(INSERT_OUTBOX, self._outbox)
            self._outbox = []
