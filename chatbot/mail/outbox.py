"""The mail outbox: emails written with the change that causes them, sent with retries.

Why a table of its own rather than rows in the chat outbox: an email is built once and its
bytes kept (so every attempt carries the same Message-ID), it goes to one family rather than to
a platform, it can be refused for good (an SMTP 5xx or a Graph 400 is reported to the member of
staff who caused it, not retried forever), and it carries a parent's address and sometimes a
passcode, which the chat outbox's code paths never need to see. It is claimed the same way:
small batches, a short lease renewed while sending, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL.

Crashes. Before an email is handed to the mail server its row gets ``send_started_at``,
committed. A replica that dies after its claim but before that point leaves a row that another
replica takes over when the lease ends and sends once. One that dies after handing the email
over but before recording it as sent leaves ``send_started_at`` set: the next attempt first asks
the transport whether that Message-ID already went out (Graph looks in Sent Items). SMTP cannot
tell, so the email is sent again: at most one duplicate per crash in that window (a few
milliseconds), with the same Message-ID, which most mail programs show once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Update, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.mail import MailSetup
from chatbot.mail.compose import Letter, build, new_message_id, plus_address
from chatbot.outbox import backoff
from chatbot.ports import Clock, DeliveryError, Email, OutgoingMail
from chatbot.storage.db import rows_changed
from chatbot.storage.models import MailOut
from chatbot.ui import Context, Message, Section, esc
from chatbot.uow import Units

log = logging.getLogger("chatbot.mail")

CLAIM_BATCH = 5
LEASE_SECONDS = 60  # an SMTP conversation can take a while
RENEW_SECONDS = 15.0
GIVE_UP_AFTER = 12  # failed attempts (about five hours with the backoff) before staff are told

KIND_WORDS = {
    "consent_request": "asking for consent",
    "invite": "with the call invitation",
    "cancellation": "saying the call is cancelled",
    "slt_notice": "to SLT",
}


def queue(
    session: AsyncSession,
    now: datetime,
    setup: MailSetup,
    sender_name: str,
    *,
    kind: str,
    to: tuple[str, ...],
    letter: Letter,
    about: str = "",
    subject: tuple[str, int] | None = None,
    caused_by_id: int | None = None,
    reply_tag: str | None = None,
) -> MailOut:
    """Write one email to the outbox in the caller's transaction, built whole now."""
    assert setup.sending, "queue() only when the school's mail is set up"
    message_id = new_message_id(setup.sender)
    raw = build(
        letter,
        sender=setup.sender,
        sender_name=sender_name,
        to=to,
        message_id=message_id,
        at=now,
        reply_to=plus_address(setup.sender, reply_tag) if reply_tag else None,
    )
    row = MailOut(
        kind=kind,
        message_id=message_id,
        recipients=",".join(to),
        raw=raw,
        about=about[:200],
        subject_type=subject[0] if subject else None,
        subject_id=subject[1] if subject else None,
        caused_by_id=caused_by_id,
        state="pending",
        created_at=now,
        due_at=now,
        attempts=0,
    )
    session.add(row)
    return row


@dataclass
class MailReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0


class MailDispatcher:
    """Sends due emails through one :class:`Email` transport (see the module's notes)."""

    def __init__(
        self,
        units: Units,
        transport: Email,
        *,
        batch: int = CLAIM_BATCH,
        lease_seconds: float = LEASE_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
    ):
        self.units = units
        self.transport = transport
        self.batch = batch
        self.lease = timedelta(seconds=lease_seconds)
        self.renew_seconds = renew_seconds

    @property
    def clock(self) -> Clock:
        return self.units.clock

    async def drain(self, rounds: int = 100) -> MailReport:
        total = MailReport()
        for _ in range(rounds):
            r = await self.run_once()
            total.claimed += r.claimed
            total.sent += r.sent
            total.failed += r.failed
            if r.claimed == 0:
                break
        return total

    async def run_once(self) -> MailReport:
        token = uuid.uuid4().hex
        ids = await self.claim(token)
        report = MailReport(claimed=len(ids))
        if not ids:
            return report
        renewal = asyncio.create_task(self._keep_claim(token, ids))
        try:
            for row_id in ids:
                outcome = await self.deliver(row_id, token)
                if outcome is True:
                    report.sent += 1
                elif outcome is False:
                    report.failed += 1
        finally:
            renewal.cancel()
        return report

    async def claim(self, token: str) -> list[int]:
        now = self.clock.now()
        async with self.units.db.transaction() as s:
            q = (
                select(MailOut.id)
                .where(
                    MailOut.state == "pending",
                    MailOut.due_at <= now,
                    or_(MailOut.claimed_until.is_(None), MailOut.claimed_until < now),
                )
                .order_by(MailOut.id)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            )
            ids = list((await s.execute(q)).scalars())
            if ids:
                await s.execute(
                    update(MailOut)
                    .where(MailOut.id.in_(ids))
                    .values(claimed_until=now + self.lease, claimed_by=token)
                )
        return ids

    def _ours(self, token: str, *ids: int) -> Update:
        return (
            update(MailOut)
            .where(MailOut.id.in_(ids), MailOut.claimed_by == token, MailOut.state == "pending")
            .values(claimed_until=self.clock.now() + self.lease)
        )

    async def _keep_claim(self, token: str, ids: list[int]) -> None:
        while True:
            await asyncio.sleep(self.renew_seconds)
            try:
                async with self.units.db.transaction() as s:
                    await s.execute(self._ours(token, *ids))
            except Exception as exc:  # the lease is the safety net
                log.warning("mail: could not renew a claim (%s)", type(exc).__name__)

    async def deliver(self, row_id: int, token: str) -> bool | None:
        """True when sent, False when it failed (rescheduled or given up), None when the row
        is no longer this batch's (its lease ran out and another replica took it)."""
        async with self.units.db.transaction() as s:
            if not await rows_changed(s, self._ours(token, row_id)):
                return None
            row = await s.get(MailOut, row_id)
            assert row is not None
            mail = OutgoingMail(row.message_id, tuple(row.recipients.split(",")), row.raw)
            maybe_sent = row.send_started_at is not None
            row.send_started_at = self.clock.now()
        if maybe_sent and await self.transport.was_sent(mail.message_id):
            log.info("mail %s was already sent before a restart; not sending again", row_id)
            await self._sent(row_id)
            return True
        try:
            await self.transport.send(mail)
        except DeliveryError as exc:
            await self._failed(row_id, token, exc)
            return False
        except Exception as exc:  # a transport bug or network error: retried like any failure
            await self._failed(row_id, token, DeliveryError(type(exc).__name__))
            return False
        await self._sent(row_id)
        return True

    async def _sent(self, row_id: int) -> None:
        async with self.units.db.transaction() as s:
            await s.execute(
                update(MailOut)
                .where(MailOut.id == row_id)
                .values(
                    state="sent",
                    sent_at=self.clock.now(),
                    claimed_until=None,
                    claimed_by=None,
                    last_error=None,
                )
            )
        log.info("mail %s sent via %s", row_id, self.transport.name)

    async def _failed(self, row_id: int, token: str, exc: DeliveryError) -> None:
        async with self.units.write() as u:
            row = await u.session.get(MailOut, row_id)
            if row is None or row.claimed_by != token or row.state != "pending":
                return
            row.attempts += 1
            row.last_error = exc.kind[:200]
            row.claimed_until = None
            row.claimed_by = None
            row.send_started_at = None  # the transport answered: it did not go out
            if exc.permanent or row.attempts >= GIVE_UP_AFTER:
                row.state = "refused" if exc.permanent else "failed"
                tell_sender(u.session, u.now, row, "refused" if exc.permanent else "failed")
                u.audit(None, f"mail.{row.state}", "mail", row.id, {"kind": row.kind})
                level, retry = logging.ERROR, "not retried"
            else:
                delay = exc.retry_after if exc.retry_after is not None else backoff(row.attempts)
                row.due_at = u.now + timedelta(seconds=max(delay, 1.0))
                level = logging.WARNING
                retry = f"retry in {max(delay, 1.0):.0f}s"
            attempts = row.attempts
        log.log(level, "mail %s not sent (%s), attempt %s; %s", row_id, exc.kind, attempts, retry)


WHY = {
    "refused": "The school's mail server refused it, so it was not delivered",
    "failed": "It could not be sent after many tries (the mail server did not take it)",
    "bounced": "It came back undelivered from the family's mail server",
}
ADVICE = {
    "refused": "Check the parent's email address in the school's records (the roster), then "
    "try again, or contact the family another way.",
    "failed": "Please tell your IT technician (the bot's log says why), and contact the "
    "family another way meanwhile.",
    "bounced": "Check the parent's email address in the school's records (the roster), then "
    "try again, or contact the family another way.",
}


def tell_sender(s: AsyncSession, now: datetime, row: MailOut, what: str) -> None:
    """Tell the member of staff whose action caused the email that it did not arrive."""
    from chatbot.outbox import to_staff

    if row.caused_by_id is None:
        log.error("mail %s %s and no member of staff caused it", row.id, what)
        return
    words = KIND_WORDS.get(row.kind, "")
    about = f" for {row.about}" if row.about else ""
    head = f"An email {words}{about} did not arrive."
    to_staff(
        s,
        now,
        row.caused_by_id,
        Message(
            head,
            (
                Section(f"**{esc(head)}** {WHY[what]}."),
                Section(esc(ADVICE[what])),
                Context((f"Email #{row.id}",)),
            ),
        ),
    )
