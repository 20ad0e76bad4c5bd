"""The chase: an alert nobody acknowledges is re-sent, then escalated to each DSL and SLT.

Runs from the scheduler (registered as the ``concerns`` sweep). Each step is claimed by a
conditional UPDATE (``WHERE resent_at IS NULL AND acknowledged_at IS NULL``) in the same
transaction as the outbox rows it writes, so it happens once even after a restart or with
several replicas.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute

from chatbot.concerns.filing import ack_minutes, add_event, send_alert
from chatbot.concerns.records import note_deliveries
from chatbot.storage.db import rows_changed
from chatbot.storage.models import Concern
from chatbot.uow import Units

log = logging.getLogger("chatbot.concerns")


async def _step(
    units: Units, concern_id: int, column: InstrumentedAttribute[Any], stage: str, now: datetime
) -> bool:
    async with units.write() as u:
        s = u.session
        claimed = (
            await rows_changed(
                s,
                update(Concern)
                .where(
                    Concern.id == concern_id,
                    column.is_(None),
                    Concern.acknowledged_at.is_(None),
                    Concern.status == "open",
                )
                .values({column.key: now}),
            )
            == 1
        )
        if not claimed:
            return False
        c = await s.get(Concern, concern_id)
        assert c is not None
        await s.refresh(c)
        sent = await send_alert(u, c, "reminder" if stage == "resent" else "escalation")
        minutes = int((now - c.filed_at).total_seconds() // 60)
        add_event(
            s,
            c,
            now,
            stage,
            None,
            "system",
            detail=f"not acknowledged after {minutes} min; to {', '.join(sent) or 'nobody'}",
        )
        u.audit(
            None,
            f"concern.{stage}",
            "concern",
            c.reference,
            {"minutes": minutes, "recipients": len(sent)},
        )
    log.warning("concern %s %s: not acknowledged after %d min", c.reference, stage, minutes)
    return True


async def chase(units: Units) -> int:
    """Re-send alerts past their acknowledgement time, and escalate those still not
    acknowledged one more period later. Returns how many steps were taken."""
    now = units.now()
    async with units.read() as u:
        waiting = list(
            (
                await u.session.execute(
                    select(
                        Concern.id, Concern.immediate_risk, Concern.ack_due_at, Concern.resent_at
                    )
                    .where(
                        Concern.acknowledged_at.is_(None),
                        Concern.status == "open",
                        Concern.escalated_at.is_(None),
                        Concern.ack_due_at <= now,
                    )
                    .order_by(Concern.ack_due_at)
                    .limit(200)
                )
            ).all()
        )
    done = 0
    for concern_id, urgent, due, resent_at in waiting:
        if resent_at is None:
            done += await _step(units, concern_id, Concern.resent_at, "resent", now)
        # Escalation falls due one more period after the first deadline; when the bot was
        # down past both, the reminder and the escalation go out together.
        if due + timedelta(minutes=ack_minutes(units.policy, urgent)) <= now:
            done += await _step(units, concern_id, Concern.escalated_at, "escalated", now)
    return done


async def sweep(units: Units) -> int:
    done = await chase(units)
    await note_deliveries(units)
    return done
