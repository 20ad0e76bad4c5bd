"""The outbox: durable notifications and the dispatcher that delivers them.

Services call ``to_staff`` / ``to_role`` / ``update_thread`` inside their transaction, so a
notification exists if and only if the change that caused it was committed. The
:class:`Dispatcher` claims due rows, delivers them through the :class:`Messenger` of each
configured platform, and records the platform's message reference. A failure (exception, 429,
outage, crash mid-send) leaves the row pending with a later ``due_at``: delivery is
at-least-once and never silently dropped.

Where things go when Slack and Teams are both configured:

- a direct message goes to the platform the person was last seen on (their most recent
  platform identity), then to the others in turn if that fails;
- a DSL or SLT channel post goes to every platform: the row is given the first platform and
  copied for each other one, so each is retried on its own and never sent twice to a platform
  that already has it;
- an update edits each delivered message of the thread on the platform it was delivered on.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, Update, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from chatbot.ports import ChannelUnavailable, Clock, DeliveryError, Messenger, Role, StaffAddress
from chatbot.storage.db import Database, rows_changed
from chatbot.storage.models import OutboxMessage, PlatformIdentity, Staff
from chatbot.ui import Message

log = logging.getLogger("chatbot.outbox")

# A replica claims a few rows at a time for a short lease, renewed while it sends them: if it
# dies, another replica takes its rows over within LEASE_SECONDS, repeating at most the message
# that was on its way out.
CLAIM_BATCH = 5
LEASE_SECONDS = 15
RENEW_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 900

NO_PLATFORM = "no_platform_configured"
# What to set so a waiting message can go out (named in the log, never in the database).
PLATFORM_SETTINGS = {
    "slack": "SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET or SLACK_APP_TOKEN",
    "teams": "MicrosoftAppId, MicrosoftAppPassword and MicrosoftAppTenantId",
}


# The statements of a delivery, built once: building one cost more than running it, and each
# runs on the session's connection (plain Core), not through the ORM, for the same reason.
_OUTBOX = cast(Table, OutboxMessage.__table__)
_DUE = (  # rows to claim: due, not delivered, not held by a live claim
    select(_OUTBOX.c.id)
    .where(
        _OUTBOX.c.delivered_at.is_(None),
        _OUTBOX.c.due_at <= bindparam("now"),
        or_(_OUTBOX.c.claimed_until.is_(None), _OUTBOX.c.claimed_until < bindparam("now")),
    )
    .order_by(_OUTBOX.c.id)
    .limit(bindparam("batch"))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(claimed_until=bindparam("until"), claimed_by=bindparam("token"))
)
_TAKE = (  # this batch still holds the row: renew its lease and read what to send
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id == bindparam("row_id"),
        _OUTBOX.c.claimed_by == bindparam("token"),
        _OUTBOX.c.delivered_at.is_(None),
    )
    .values(claimed_until=bindparam("until"))
    .returning(
        *(_OUTBOX.c[k] for k in ("kind", "role", "platform", "staff_id", "thread_key")),
        *(_OUTBOX.c[k] for k in ("payload", "created_at")),
    )
)
_SET_PLATFORM = (
    update(_OUTBOX).where(_OUTBOX.c.id == bindparam("row_id")).values(platform=bindparam("to"))
)
_COPY = insert(_OUTBOX)
_ROUTES = (  # the person, and the platforms they were seen on, most recent first
    select(
        Staff.email,
        Staff.forename,
        Staff.surname,
        PlatformIdentity.platform,
        PlatformIdentity.user_id,
    )
    .select_from(Staff)
    .outerjoin(PlatformIdentity, PlatformIdentity.staff_id == Staff.id)
    .where(Staff.id == bindparam("staff_id"))
    .order_by(PlatformIdentity.seen_at.desc(), PlatformIdentity.id.desc())
)
_DONE = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("row_id"))
    .values(
        delivered_at=bindparam("at"),
        message_ref=bindparam("ref"),
        platform=bindparam("via"),
        claimed_until=None,
        claimed_by=None,
        last_error=None,
    )
)


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
    """A post in the DSL or SLT channel, on every configured platform."""
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


def not_configured(platform: str | None) -> DeliveryError:
    return DeliveryError(f"{platform}_not_configured" if platform else NO_PLATFORM)


def setting_hint(kind: str) -> str:
    """For a "not configured" failure, which settings would let the message go out."""
    if kind == NO_PLATFORM:
        slack, teams = PLATFORM_SETTINGS["slack"], PLATFORM_SETTINGS["teams"]
        return f" (set {slack} for Slack, or {teams} for Teams)"
    platform = kind.removesuffix("_not_configured")
    if platform != kind and platform in PLATFORM_SETTINGS:
        return f" (set {PLATFORM_SETTINGS[platform]})"
    return ""


@dataclass
class DispatchReport:
    claimed: int = 0
    delivered: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Delivered:
    platform: str | None  # the platform used ("slack,teams" for an update made on both)
    ref: str | None


Failures = list[tuple[str, DeliveryError]]  # (platform, error) for each platform tried


class Dispatcher:
    """Delivers due outbox rows through one :class:`Messenger` per configured platform.

    Safe to run in several processes at once: rows are claimed in small batches (with ``FOR
    UPDATE SKIP LOCKED`` on PostgreSQL) for a short lease that a background task renews while
    the batch is being sent, and each row's claim is checked again just before it is sent."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *messengers: Messenger,
        batch: int = CLAIM_BATCH,
        lease_seconds: float = LEASE_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
    ):
        self.db = db
        self.clock = clock
        self.messengers: dict[str, Messenger] = {}
        self.batch = batch
        self.lease = timedelta(seconds=lease_seconds)
        self.renew_seconds = renew_seconds
        for m in messengers:
            self.add(m)

    def add(self, messenger: Messenger) -> None:
        """Deliver through ``messenger`` on its platform (in place of any earlier one there).
        Platforms are tried in the order they were added when nothing else decides."""
        self.messengers[messenger.platform] = messenger

    @property
    def platforms(self) -> list[str]:
        return list(self.messengers)

    async def run_once(self) -> DispatchReport:
        """Claim one batch of due rows and deliver it."""
        token = uuid.uuid4().hex
        ids = await self._claim(token)
        report = DispatchReport(claimed=len(ids))
        if not ids:
            return report
        renewal = asyncio.create_task(self._keep_claim(token, ids))
        # A sent row is marked delivered in the transaction that takes the next row (one
        # transaction a message, not two); the batch's last one, or one left when taking the
        # next failed, on its own. A crash in between repeats only that message.
        sent: list[dict[str, Any]] = []
        try:
            for row_id in ids:
                outcome = await self._deliver(row_id, token, sent)
                if outcome is True:
                    report.delivered += 1
                elif outcome is False:
                    report.failed += 1
        finally:
            renewal.cancel()
            if sent:
                async with self.db.connection() as conn:
                    await conn.execute(_DONE, sent)
        return report

    async def drain(self, rounds: int = 100) -> DispatchReport:
        """Deliver batch after batch until nothing due is left (or ``rounds`` batches have
        gone); the scheduler runs this, as do the console and tests."""
        total = DispatchReport()
        for _ in range(rounds):
            r = await self.run_once()
            total.claimed += r.claimed
            total.delivered += r.delivered
            total.failed += r.failed
            if r.claimed == 0:
                break
        return total

    async def _claim(self, token: str) -> list[int]:
        now = self.clock.now()
        async with self.db.transaction() as s:
            conn = await s.connection()
            due = await conn.execute(_DUE, {"now": now, "batch": self.batch})
            ids = list(due.scalars())
            if ids:
                until = now + self.lease
                await conn.execute(_CLAIM, {"ids": ids, "until": until, "token": token})
        return ids

    def _ours(self, token: str, *ids: int) -> Update:
        """An UPDATE that extends this batch's lease on those of ``ids`` it still holds."""
        return (
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.claimed_by == token,
                OutboxMessage.delivered_at.is_(None),
            )
            .values(claimed_until=self.clock.now() + self.lease)
        )

    async def _keep_claim(self, token: str, ids: list[int]) -> None:
        """Renew the batch's lease while it is being sent (cancelled when the batch is done;
        dies with the process, so a dead replica's rows free up within the lease).

        Rows locked at that moment are skipped: they are being sent or rescheduled right
        then (sending renews the row's lease itself), and waiting for their locks could
        deadlock with a channel fallback that locks a copy and its original."""
        while True:
            await asyncio.sleep(self.renew_seconds)
            try:
                async with self.db.transaction() as s:
                    held = (
                        select(OutboxMessage.id)
                        .where(OutboxMessage.id.in_(ids))
                        .order_by(OutboxMessage.id)
                        .with_for_update(skip_locked=True)
                    )
                    free = list((await s.execute(held)).scalars())
                    if free:
                        await rows_changed(s, self._ours(token, *free))
            except Exception as exc:  # the next renewal may work; the lease is the safety net
                log.warning("outbox: could not renew a claim (%s)", type(exc).__name__)

    async def _deliver(self, row_id: int, token: str, sent: list[dict[str, Any]]) -> bool | None:
        """True when delivered, False when it failed (and was rescheduled), None when the row
        is no longer this batch's to send (its lease ran out and another replica took it).
        ``sent`` holds the marks of rows sent but not yet marked delivered: they are written
        with this row's taking, and this row's mark is added to it once it is sent."""
        async with self.db.transaction() as s:
            conn = await s.connection()
            if sent:
                await conn.execute(_DONE, sent)
            until = self.clock.now() + self.lease
            taken = await conn.execute(_TAKE, {"row_id": row_id, "token": token, "until": until})
            row = taken.one_or_none()
            if row is not None:
                message = Message.from_json(row.payload)
                kind, role, platform = row.kind, row.role, row.platform
                if kind == "role" and platform is None and self.messengers:
                    platform = await self._copy_for_each_platform(conn, row_id, row)
                routes = await self._routes(conn, row.staff_id) if kind == "staff" else []
                targets: list[tuple[str, str]] | None = []
                if kind == "update":
                    targets = await self._update_targets(s, row_id, row.thread_key)
        sent.clear()  # committed with the taking
        if row is None:
            return None

        if kind == "staff":
            outcome = await self._to_staff(routes, message, row_id)
        elif kind == "role":
            assert role in ("dsl", "slt"), "to_role only writes DSL or SLT rows"
            outcome = await self._to_role(platform, cast(Role, role), message, row_id)
        else:
            outcome = await self._edit(targets, message)

        if isinstance(outcome, Delivered):
            sent.append(self._delivered(row_id, kind, outcome))
            return True
        platform, error = outcome[0]
        if kind == "role" and isinstance(error, ChannelUnavailable):
            await self._channel_fallback(row_id, token, platform, error)
        else:
            await self._failed(row_id, token, outcome)
        return False

    async def _copy_for_each_platform(
        self, conn: AsyncConnection, row_id: int, row: Row[Any]
    ) -> str:
        """A channel post goes to every platform: this row becomes the first platform's and a
        copy is queued for each other one, so each is retried (and counted) on its own.
        Returns the first platform."""
        first, *others = self.messengers
        await conn.execute(_SET_PLATFORM, {"row_id": row_id, "to": first})
        if others:
            copy = {
                "kind": "role",
                "role": row.role,
                "thread_key": row.thread_key,
                "payload": row.payload,
                "created_at": row.created_at,
                "due_at": self.clock.now(),
                "origin_id": row_id,
                "attempts": 0,
            }
            await conn.execute(_COPY, [{**copy, "platform": p} for p in others])
        return first

    async def _routes(
        self, conn: AsyncConnection, staff_id: int | None
    ) -> list[tuple[Messenger, StaffAddress]]:
        """The platforms to try for a direct message, best first: those the person was seen
        on, most recent first, then every other configured platform."""
        rows = (await conn.execute(_ROUTES, {"staff_id": staff_id})).all()
        assert rows, "a staff row's person exists (foreign key)"
        email, name = rows[0].email, f"{rows[0].forename} {rows[0].surname}"
        latest: dict[str, str] = {}
        for r in rows:
            if r.platform in self.messengers:
                latest.setdefault(r.platform, r.user_id)
        order = [*latest, *(p for p in self.messengers if p not in latest)]
        return [
            (self.messengers[p], StaffAddress(int(staff_id or 0), email, name, latest.get(p)))
            for p in order
        ]

    async def _to_staff(
        self, routes: list[tuple[Messenger, StaffAddress]], message: Message, row_id: int
    ) -> Delivered | Failures:
        failures: Failures = []
        for messenger, address in routes:
            try:
                ref = await messenger.send_to_staff(address, message, outbox_id=row_id)
                return Delivered(messenger.platform, _checked(ref))
            except Exception as exc:  # try the next platform
                failures.append((messenger.platform, _delivery_error(exc)))
        return failures or [("", not_configured(None))]

    async def _to_role(
        self, platform: str | None, role: Role, message: Message, row_id: int
    ) -> Delivered | Failures:
        messenger = self.messengers.get(platform or "")
        if messenger is None:
            return [(platform or "", not_configured(platform))]
        try:
            ref = await messenger.post_to_role(role, message, outbox_id=row_id)
            return Delivered(messenger.platform, _checked(ref))
        except Exception as exc:
            return [(messenger.platform, _delivery_error(exc))]

    async def _edit(
        self, targets: list[tuple[str, str]] | None, message: Message
    ) -> Delivered | Failures:
        """Edit each delivered copy on its own platform. A failure retries the whole row:
        editing a message again to the same content is harmless."""
        if targets is None:
            return [("", DeliveryError("original_in_flight"))]
        for platform, ref in targets:
            messenger = self.messengers.get(platform)
            if messenger is None:
                return [(platform, not_configured(platform))]
            try:
                await messenger.update(ref, message)
            except Exception as exc:
                return [(platform, _delivery_error(exc))]
        return Delivered(",".join(sorted({p for p, _ in targets})) or None, None)

    async def _update_targets(
        self, s: AsyncSession, row_id: int, thread_key: str | None
    ) -> list[tuple[str, str]] | None:
        """(platform, ref) of each delivered message in the thread that was queued before this
        update (a copy counts from its original); None while one is still being sent."""
        others = (
            await s.execute(
                select(OutboxMessage).where(
                    OutboxMessage.thread_key == thread_key,
                    OutboxMessage.kind != "update",
                    func.coalesce(OutboxMessage.origin_id, OutboxMessage.id) < row_id,
                )
            )
        ).scalars()
        targets: list[tuple[str, str]] = []
        now = self.clock.now()
        for o in others:
            if o.delivered_at is None:
                if o.claimed_until is not None and o.claimed_until > now:
                    return None
                continue  # not sent yet: its payload was already rewritten
            if o.message_ref and o.platform:
                targets.append((o.platform, o.message_ref))
        return targets

    def _delivered(self, row_id: int, kind: str, sent: Delivered) -> dict[str, Any]:
        """The row's mark as delivered (see run_once for when it is written)."""
        log.info("outbox %s delivered (%s via %s)", row_id, kind, sent.platform or "nothing")
        return {"row_id": row_id, "at": self.clock.now(), "ref": sent.ref, "via": sent.platform}

    async def _failed(self, row_id: int, token: str, failures: Failures) -> None:
        """Try again later: after the longest Retry-After a platform asked for, else backoff."""
        if len(failures) == 1:
            kind = failures[0][1].kind
        else:
            kind = "; ".join(f"{platform}: {e.kind}" for platform, e in failures)
        waits = [e.retry_after for _, e in failures if e.retry_after is not None]
        async with self.db.transaction() as s:
            row = await s.get(OutboxMessage, row_id)
            if row is None or row.claimed_by != token:
                return
            row.attempts += 1
            delay = max(max(waits), 1.0) if waits else backoff(row.attempts)
            row.due_at = self.clock.now() + timedelta(seconds=delay)
            row.claimed_until = None
            row.claimed_by = None
            row.last_error = kind[:200]
        level = logging.WARNING if row.attempts < 5 else logging.ERROR
        log.log(
            level,
            "outbox %s not delivered (%s), attempt %s; retry in %.0fs%s",
            row_id,
            kind,
            row.attempts,
            delay,
            "".join(dict.fromkeys(setting_hint(e.kind) for _, e in failures)),
        )

    async def _channel_fallback(
        self, row_id: int, token: str, platform: str, exc: ChannelUnavailable
    ) -> None:
        """The DSL or SLT channel cannot be reached: say so loudly, send the message to the
        people in that role directly (once, whichever platform's channel failed first), and
        keep retrying the channel."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            row = await s.get(OutboxMessage, row_id)
            if row is None or row.claimed_by != token:
                return
            # The original row records the fallback for all its copies; the conditional
            # update lets exactly one of them send it, even on two replicas at once.
            first = await rows_changed(
                s,
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == (row.origin_id or row.id),
                    OutboxMessage.fallback_sent_at.is_(None),
                )
                .values(fallback_sent_at=now),
            )
            if first:
                roles = ("dsl", "deputy_dsl") if row.role == "dsl" else ("slt",)
                for person in await people_with_roles(s, roles):
                    to_staff(
                        s, now, person.id, Message.from_json(row.payload), thread_key=row.thread_key
                    )
            row.attempts += 1
            row.due_at = now + timedelta(seconds=backoff(row.attempts))
            row.claimed_until = None
            row.claimed_by = None
            row.last_error = exc.kind[:200]
            role = row.role
        log.error(
            "ROLE CHANNEL UNREACHABLE: %s %s channel (%s); outbox %s %s",
            platform,
            role,
            exc.kind,
            row_id,
            "sent to people directly" if first else "(people were already sent it directly)",
        )


def _checked(ref: str | None) -> str:
    if not ref:
        raise DeliveryError("no_message_ref")
    return ref


def _delivery_error(exc: Exception) -> DeliveryError:
    # A messenger bug or network error must not lose the row: it is retried like any failure.
    return exc if isinstance(exc, DeliveryError) else DeliveryError(type(exc).__name__)


_HOLDING: dict[tuple[str, ...], Any] = {}  # roles -> the statement that finds their holders


async def people_with_roles(s: AsyncSession, roles: tuple[str, ...]) -> list[Staff]:
    """Active staff holding any of ``roles``. The database narrows it down by text (roles are
    stored as "staff;dsl"), so a concern loads the few people concerned, not the whole roster;
    the exact check is done here. The statement is built once per set of roles."""
    q = _HOLDING.get(roles)
    if q is None:
        named = or_(*(Staff.roles.contains(role) for role in roles))
        q = _HOLDING[roles] = select(Staff).where(Staff.active.is_(True), named)
    staff = (await s.execute(q)).scalars()
    return [p for p in staff if p.has_role(*roles)]
