"""Migration 0007 on a database in use: calls from before it are marked as already swept, so
the first sweep after the upgrade messages nobody about calls long past, while a call that has
not started yet still gets every new step."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import column, insert, select, table

from chatbot.bookings.scheduled import run_booking_sweeps
from chatbot.policy import default_policy
from chatbot.ports import FixedClock
from chatbot.storage import migrate
from chatbot.storage.models import Booking, CallLog, OutboxMessage, UTCDateTime
from chatbot.uow import Units
from tests.conftest import MONDAY_8AM, fresh_database


async def test_upgrade_marks_earlier_calls_as_swept(db_url: str) -> None:
    db = await fresh_database(db_url, create=False)
    try:
        await migrate.upgrade(db, "0006")
        now = MONDAY_8AM
        past = now - timedelta(days=7)
        async with db.transaction() as s:
            # The staff table as it was then (later migrations add columns the model has now).
            staff = table(
                "staff", *(column(c) for c in ("id", "email", "forename", "surname", "roles")),
                column("active"), column("created_at", UTCDateTime()),
                column("updated_at", UTCDateTime()),
            )  # fmt: skip
            await s.execute(
                insert(staff).values(
                    id=1, email="t@school.test", forename="T", surname="T", roles="staff",
                    active=True, created_at=past, updated_at=past,
                )
            )  # fmt: skip
            for booking_id, starts in ((1, past), (2, past), (3, now + timedelta(hours=2))):
                await s.execute(
                    insert(Booking.__table__).values(
                        id=booking_id, host_id=1, kind="one_to_one", starts_at=starts,
                        ends_at=starts + timedelta(minutes=20), platform="Zoom", plan="p",
                        status="confirmed", created_at=past,
                        start_check_at=starts if starts < now else None,
                    )
                )  # fmt: skip
            # Call 1 was logged with a worry (and no concern) before the upgrade.
            await s.execute(
                insert(CallLog.__table__).values(
                    booking_id=1, attended="x", actual_minutes=20, summary="s", worrying=True,
                    logged_by_id=1, logged_at=past + timedelta(minutes=30),
                )
            )  # fmt: skip
        await migrate.upgrade(db)

        async with db.transaction() as s:
            rows = {b.id: b for b in (await s.execute(select(Booking))).scalars()}
        assert rows[1].checklist_escalated_at == past and rows[2].checklist_escalated_at == past
        assert rows[1].worry_reminded_at == past + timedelta(minutes=30)
        assert rows[1].worry_reported_at == past + timedelta(minutes=30)
        assert rows[3].checklist_escalated_at is None and rows[3].worry_reminded_at is None

        core = Units(db=db, policy=default_policy(), clock=FixedClock(now))
        await run_booking_sweeps(core)
        async with db.transaction() as s:
            texts = [o.payload["text"] for o in (await s.execute(select(OutboxMessage))).scalars()]
        assert not any("SLT have been told" in t or "no concern" in t for t in texts), texts
    finally:
        await db.dispose()
