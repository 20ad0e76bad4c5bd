"""Periodic sweeps: find due work in the database and do each step exactly once.

Each step is claimed by setting its timestamp column with a conditional UPDATE
(``WHERE id = :id AND <column> IS NULL``) in the same transaction as the outbox rows it
writes. So a reminder that fell due while the process was down is sent once after the
restart, and two replicas sweeping together never both send it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from chatbot.bookings import calllog, checklist, notices
from chatbot.bookings.checklist import ticked_keys
from chatbot.bookings.service import release_pupils
from chatbot.mail import invites
from chatbot.meetings import service as meetings
from chatbot.policy import ChecklistItem
from chatbot.storage.db import rows_changed
from chatbot.storage.models import Booking, CallLog, Staff
from chatbot.uow import Unit, Units

log = logging.getLogger("chatbot.bookings.scheduled")

Step = Callable[[Unit, Booking], Awaitable[None]]


async def _claim(
    s: AsyncSession, b: Booking, column: InstrumentedAttribute[Any], now: datetime
) -> bool:
    stmt = update(Booking).where(Booking.id == b.id, column.is_(None)).values({column.key: now})
    return await rows_changed(s, stmt) == 1


async def _run(
    units: Units, column: InstrumentedAttribute[Any], where: list[Any], step: Step, name: str
) -> int:
    async with units.read() as u:
        ids = list(
            (
                await u.session.execute(
                    select(Booking.id)
                    .where(column.is_(None), *where)
                    .order_by(Booking.starts_at)
                    .limit(200)
                )
            ).scalars()
        )
    done = 0
    for booking_id in ids:
        async with units.write() as u:
            b = await u.session.get(Booking, booking_id)
            if b is None or not await _claim(u.session, b, column, u.now):
                continue
            await u.session.refresh(b)
            await step(u, b)
            done += 1
    if done:
        log.info("sweep %s: %d booking(s)", name, done)
    return done


async def _people(s: AsyncSession, b: Booking) -> tuple[Staff, Staff | None]:
    host = await s.get(Staff, b.host_id)
    assert host is not None
    cohost = await s.get(Staff, b.cohost_id) if b.cohost_id else None
    return host, cohost


async def _lapse(u: Unit, b: Booking) -> None:
    if b.status != "awaiting_cohost":
        return
    zone = u.zone
    b.status = "lapsed"
    await release_pupils(u.session, b)
    await meetings.booking_changed(u, b)
    host, cohost = await _people(u.session, b)
    u.audit(None, "booking.lapse", "booking", b.id, {"reason": "cohost_no_answer"})
    u.to_staff(host.id, notices.lapsed(b, host, cohost, zone, False))
    u.tell_slt(notices.lapsed(b, host, cohost, zone, True), thread_key=f"slt:{b.id}")
    await invites.call_off(u, b)
    if cohost is not None:
        await u.update_thread(
            f"cohost:{b.id}",
            notices.cohost_request_closed(
                b, host, cohost, zone, "no answer in time; the call is not going ahead."
            ),
        )


async def _checklist(u: Unit, b: Booking) -> None:
    if b.status != "confirmed" or b.ends_at <= u.now:
        return
    u.to_staff(b.host_id, await checklist.message(u, b), thread_key=f"checklist:{b.id}")


async def _unticked(u: Unit, b: Booking) -> list[ChecklistItem]:
    done = await ticked_keys(u.session, b.id)
    return [i for i in u.policy.checklist if i.key not in done]


async def _start_check(u: Unit, b: Booking) -> None:
    if b.status != "confirmed" or b.ends_at <= u.now:
        return
    missing = await _unticked(u, b)
    if missing:
        u.audit(
            None,
            "checklist.incomplete_at_start",
            "booking",
            b.id,
            {"missing": [i.key for i in missing]},
        )
        u.to_staff(b.host_id, notices.unticked_at_start(b, u.policy, missing))


async def _escalate_checklist(u: Unit, b: Booking) -> None:
    """Checks still unticked a few minutes into the call: SLT are told, and the host too."""
    if b.status != "confirmed":
        return
    missing = await _unticked(u, b)
    if not missing:
        return
    minutes = u.policy.checklist_slt_after_minutes
    host, cohost = await _people(u.session, b)
    u.audit(
        None, "checklist.unticked_reported", "booking", b.id, {"missing": [i.key for i in missing]}
    )
    u.to_role("slt", notices.unticked_for_slt(b, host, cohost, u.zone, missing, minutes))
    u.to_staff(b.host_id, notices.unticked_reported_to_host(b, missing, minutes))


async def _worry_remind(u: Unit, b: Booking) -> None:
    if await calllog.worry_open(u.session, b):
        u.audit(None, "calllog.worry_reminded", "booking", b.id)
        u.to_staff(b.host_id, notices.worry_reminder(b, u.zone))


async def _worry_report(u: Unit, b: Booking) -> None:
    """Tell the DSL that a log's worry has no concern: the call and host only, not the log."""
    if await calllog.worry_open(u.session, b):
        host, _ = await _people(u.session, b)
        u.audit(None, "calllog.worry_unfiled_reported", "booking", b.id)
        minutes = u.policy.worry_dsl_after_minutes
        u.to_role("dsl", notices.worry_unfiled_for_dsl(b, host, u.zone, minutes))


async def _logged(s: AsyncSession, b: Booking) -> bool:
    return (
        await s.execute(select(CallLog.id).where(CallLog.booking_id == b.id))
    ).first() is not None


async def _log_request(u: Unit, b: Booking) -> None:
    if not await _logged(u.session, b):
        u.to_staff(b.host_id, notices.log_request(b, u.zone))


async def _log_nudge(u: Unit, b: Booking) -> None:
    if not await _logged(u.session, b):
        u.to_staff(b.host_id, notices.log_request(b, u.zone, nudge=True))


async def _log_report(u: Unit, b: Booking) -> None:
    if not await _logged(u.session, b):
        host, cohost = await _people(u.session, b)
        u.audit(None, "calllog.missing_reported", "booking", b.id)
        u.tell_slt(notices.log_missing_for_slt(b, host, cohost, u.zone))


async def run_booking_sweeps(units: Units) -> int:
    """Every booking step that is due now. Returns how many steps ran."""
    p = units.policy
    now = units.now()
    confirmed = Booking.status == "confirmed"
    ended = Booking.ends_at <= now
    # (claim column, what makes the step due, the step, its name for the log)
    steps: list[tuple[InstrumentedAttribute[Any], list[Any], Step, str]] = [
        (
            Booking.cohost_lapse_noted_at,
            [
                Booking.status == "awaiting_cohost",
                Booking.starts_at <= now + timedelta(minutes=p.cohost_answer_by_minutes),
            ],
            _lapse,
            "cohost_lapse",
        ),
        (
            Booking.checklist_sent_at,
            [
                confirmed,
                Booking.starts_at <= now + timedelta(minutes=p.checklist_lead_minutes),
                Booking.ends_at > now,
            ],
            _checklist,
            "checklist",
        ),
        (
            Booking.start_check_at,
            [confirmed, Booking.starts_at <= now, Booking.ends_at > now],
            _start_check,
            "start_check",
        ),
        (
            Booking.checklist_escalated_at,
            [
                confirmed,
                Booking.starts_at <= now - timedelta(minutes=p.checklist_slt_after_minutes),
            ],
            _escalate_checklist,
            "checklist_escalation",
        ),
        (Booking.log_requested_at, [confirmed, ended], _log_request, "log_request"),
        (
            Booking.log_nudged_at,
            [confirmed, Booking.ends_at <= now - timedelta(minutes=p.log_nudge_after_minutes)],
            _log_nudge,
            "log_nudge",
        ),
        (
            Booking.log_reported_at,
            [confirmed, Booking.ends_at <= now - timedelta(minutes=p.log_report_after_minutes)],
            _log_report,
            "log_report",
        ),
        (
            Booking.worry_reminded_at,
            calllog.worry_unfiled(now - timedelta(minutes=p.worry_reminder_after_minutes)),
            _worry_remind,
            "worry_reminder",
        ),
        (
            Booking.worry_reported_at,
            calllog.worry_unfiled(now - timedelta(minutes=p.worry_dsl_after_minutes)),
            _worry_report,
            "worry_report",
        ),
    ]
    total = 0
    for column, due, step, name in steps:
        total += await _run(units, column, due, step, name)
    return total
