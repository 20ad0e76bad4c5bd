"""The full record of one concern, for a referral: only a DSL or deputy may export it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from chatbot.concerns import notices as cn
from chatbot.concerns.access import by_reference, may_see, refuse
from chatbot.concerns.filing import chronology_entry
from chatbot.concerns.records import details_facts, note_deliveries
from chatbot.concerns.retention import concern_retention
from chatbot.roster.identity import staff_by_email
from chatbot.storage.models import ConcernEvent
from chatbot.uow import Units

log = logging.getLogger("chatbot.concerns")


@dataclass
class Export:
    ok: bool
    text: str  # the record, or why it was refused


async def export(units: Units, reference: str, as_email: str, destination: str) -> Export:
    await note_deliveries(units)
    async with units.write() as u:
        s, now = u.session, u.now
        who = await staff_by_email(s, as_email)
        c = await by_reference(s, reference)
        if c is None:
            return Export(False, f"No concern with reference {reference[:30]!r}.")
        if not may_see(who, c, u.policy.head_teacher_email):
            refuse(u, c, who, as_email[:200], "export")
            return Export(
                False,
                "Only a DSL or deputy DSL on the roster (or the head teacher, for a concern "
                "about a member of staff) can export a concern; this attempt has been recorded.",
            )
        s.add(chronology_entry(c, now, "exported", who, as_email, detail=destination[:200]))
        u.audit(who, "concern.export", "concern", c.reference, {"destination": destination[:200]})
        await s.flush()
        events = list(
            (
                await s.execute(
                    select(ConcernEvent)
                    .where(ConcernEvent.concern_id == c.id)
                    .order_by(ConcernEvent.at, ConcernEvent.id)
                )
            ).scalars()
        )
        keep = await concern_retention(u, c)
        keep_text = keep.isoformat() if keep else "no pupil date of birth on file: review by hand"
        assert who is not None
        record = cn.export_text(
            c,
            await details_facts(u, c),
            events,
            u.zone,
            keep_text,
            who.name,
            now,
            u.policy.school_name,
        )
    log.info("concern %s exported", c.reference)
    return Export(True, record)
