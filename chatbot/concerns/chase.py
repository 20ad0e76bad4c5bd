"""The chase: an alert nobody acknowledges is re-sent, escalated to each DSL and SLT, and then
sent to them all again on a schedule until someone acknowledges it. It never goes quiet.

Runs from the scheduler (registered as the ``concerns`` sweep). Each step is claimed by a
conditional UPDATE (``WHERE resent_at IS NULL AND acknowledged_at IS NULL``; for repeats,
``WHERE next_chase_at = <the value read>``) in the same transaction as the outbox rows it
writes, so it happens once even after a restart or with several replicas.

Repeats: an urgent concern every ``urgent_repeat_minutes``, day and night (out of school hours
the SLT channel gets it too, as it got the first alert); an ordinary one every
``repeat_minutes`` in school hours only, so a concern left over the weekend is raised again
when school opens rather than at 3 a.m.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, update

from chatbot.concerns.filing import (
    ack_minutes,
    chronology_entry,
    out_of_hours,
    repeat_minutes,
    send_alert,
)
from chatbot.concerns.notices import AlertStage
from chatbot.concerns.records import note_deliveries
from chatbot.policy import Policy
from chatbot.storage.db import rows_changed
from chatbot.storage.models import Concern
from chatbot.uow import Units

log = logging.getLogger("chatbot.concerns")

EVENT = {"reminder": "resent", "escalation": "escalated", "repeat": "repeated"}


def repeat_every(policy: Policy, urgent: bool) -> timedelta:
    return timedelta(minutes=repeat_minutes(policy, urgent))


async def _step(
    units: Units,
    concern_id: int,
    claim: ColumnElement[bool],
    values: dict[str, Any],
    stage: AlertStage,
    now: datetime,
) -> bool:
    """Claim one step (``claim`` must still hold for the row) and queue its alerts."""
    async with units.write() as u:
        s = u.session
        claimed = (
            await rows_changed(
                s,
                update(Concern)
                .where(
                    Concern.id == concern_id,
                    claim,
                    Concern.acknowledged_at.is_(None),
                    Concern.status == "open",
                )
                .values(values),
            )
            == 1
        )
        if not claimed:
            return False
        c = await s.get(Concern, concern_id)
        assert c is not None
        await s.refresh(c)
        sent = await send_alert(u, c, stage)
        minutes = int((now - c.filed_at).total_seconds() // 60)
        event = EVENT[stage]
        s.add(
            chronology_entry(
                c,
                now,
                event,
                None,
                "system",
                detail=f"not acknowledged after {minutes} min; to {', '.join(sent) or 'nobody'}",
            )
        )
        u.audit(
            None,
            f"concern.{event}",
            "concern",
            c.reference,
            {"minutes": minutes, "recipients": len(sent)},
        )
    log.warning("concern %s %s: not acknowledged after %d min", c.reference, event, minutes)
    return True


async def chase(units: Units) -> int:
    """Re-send alerts past their acknowledgement time, escalate those still not acknowledged
    one more period later, and repeat escalated ones when due. Returns how many steps ran."""
    now = units.now()
    policy = units.policy
    waiting = Concern.acknowledged_at.is_(None), Concern.status == "open"
    async with units.read() as u:
        fresh = list(
            (
                await u.session.execute(
                    select(
                        Concern.id, Concern.immediate_risk, Concern.ack_due_at, Concern.resent_at
                    )
                    .where(*waiting, Concern.escalated_at.is_(None), Concern.ack_due_at <= now)
                    .order_by(Concern.ack_due_at)
                    .limit(200)
                )
            ).all()
        )
        escalated = list(
            (
                await u.session.execute(
                    select(Concern.id, Concern.immediate_risk, Concern.next_chase_at)
                    .where(
                        *waiting,
                        Concern.escalated_at.is_not(None),
                        # Empty: escalated before repeats existed, so due now.
                        (Concern.next_chase_at.is_(None) | (Concern.next_chase_at <= now)),
                    )
                    .order_by(Concern.next_chase_at)
                    .limit(200)
                )
            ).all()
        )
    done = 0
    for concern_id, urgent, due, resent_at in fresh:
        if resent_at is None:
            done += await _step(
                units, concern_id, Concern.resent_at.is_(None), {"resent_at": now}, "reminder", now
            )
        # Escalation falls due one more period after the first deadline; when the bot was
        # down past both, the reminder and the escalation go out together.
        if due + timedelta(minutes=ack_minutes(policy, urgent)) <= now:
            values = {"escalated_at": now, "next_chase_at": now + repeat_every(policy, urgent)}
            done += await _step(
                units, concern_id, Concern.escalated_at.is_(None), values, "escalation", now
            )
    for concern_id, urgent, seen in escalated:
        if not urgent and out_of_hours(policy, now):
            continue  # an ordinary concern waits for school hours
        claim = Concern.next_chase_at.is_(None) if seen is None else Concern.next_chase_at == seen
        values = {"next_chase_at": now + repeat_every(policy, urgent)}
        done += await _step(units, concern_id, claim, values, "repeat", now)
    return done


async def sweep(units: Units) -> int:
    done = await chase(units)
    await note_deliveries(units)
    return done
