"""/concern end to end through the Bot: filing, store first, delivery, view, acknowledge,
privacy. The database is real (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import pytest

from chatbot.bootstrap import build_bot
from chatbot.concerns import filing as concern_filing
from chatbot.effects import CloseForm, Ephemeral, FormErrors, OpenForm, Popup, Reply, UpdateMessage
from chatbot.outbox import Dispatcher
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, Concern, ConcernEvent, OutboxMessage
from chatbot.uow import Units
from tests.conftest import action, command, submit
from tests.fakes import RecordingMessenger
from tests.unit.test_concern_support import (
    MONDAY_10AM,
    NARRATIVE,
    audits,
    concerns,
    count,
    events,
    file_concern,
    outbox_rows,
)

DSL = "dsl@school.test"
CEOP = "https://www.ceop.police.uk/Safety-Centre/"  # default_policy.toml
TEACHER = "teacher@school.test"


@pytest.fixture(autouse=True)
def in_school_hours(clock: FixedClock) -> None:
    clock.set(MONDAY_10AM)


async def test_command_opens_the_form(school: Units, bot: Bot) -> None:
    [eff] = await bot.handle(command(TEACHER, "concern"))
    assert isinstance(eff, OpenForm) and eff.form.id == "concern"
    kinds = {i.id: i.kind for i in eff.form.inputs}
    assert kinds == {
        "pupil": "pupil",
        "category": "select",
        "staff": "staff",
        "risk": "select",
        "when_date": "date",
        "when_time": "time",
        "narrative": "long_text",
    }
    cats = [o.value for o in eff.form.input("category").options]
    assert cats == [c.key for c in school.policy.concern_categories]
    assert not eff.form.input("pupil").required and not eff.form.input("staff").required


async def test_file_stores_first_then_receipt(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    effects = await file_concern(bot)
    assert isinstance(effects[0], CloseForm)
    assert isinstance(effects[1], Reply)
    receipt = effects[1].message
    # When the receipt comes back the concern and its alert are already committed.
    [c] = await concerns(school)
    assert c.reference == "C-2026-0001" and c.reference in receipt.text
    assert c.narrative == NARRATIVE and not c.immediate_risk and not c.out_of_hours
    [row] = await outbox_rows(school)
    assert row.kind == "role" and row.role == "dsl" and row.thread_key == f"concern:{c.id}"
    assert "999" not in json.dumps(receipt.to_json())
    assert await events(school, c.id) == ["filed"]
    [a] = await audits(school, "concern.file")
    assert a.subject_id == c.reference and a.actor_label == TEACHER

    await dispatcher.drain()
    [alert] = messenger.to("dsl")
    flat = json.dumps(alert.to_json())
    for shown in (c.reference, "Online abuse", "Tess Teacher", "ST"):
        assert shown in flat
    assert [b.action_id for b in alert.buttons()] == ["concern.view", "concern.ack"]
    # The second concern takes the next reference.
    await file_concern(bot)
    assert [x.reference for x in await concerns(school)] == ["C-2026-0001", "C-2026-0002"]


async def test_immediate_risk_receipt(school: Units, bot: Bot) -> None:
    effects = await file_concern(bot, risk="yes")
    [receipt] = [e for e in effects if isinstance(e, Reply)]
    text = json.dumps(receipt.message.to_json())
    assert "call the police on 999" in text
    assert "tell the DSL in person" in text
    assert school.policy.contacts.school_phone in text
    # CEOP is offered, at the address the policy file gives.
    assert f"CEOP, the police's online child protection service: {CEOP}" in text
    other = dataclasses.replace(
        school.policy,
        contacts=dataclasses.replace(school.policy.contacts, ceop_url="https://ceop.example/r"),
    )
    effects = await file_concern(build_bot(dataclasses.replace(school, policy=other)), risk="yes")
    [receipt] = [e for e in effects if isinstance(e, Reply)]
    assert "https://ceop.example/r" in json.dumps(receipt.message.to_json())
    c, _ = await concerns(school)
    assert c.immediate_risk
    assert (
        c.ack_due_at - c.filed_at
    ).total_seconds() == 60 * school.policy.concern_urgent_ack_minutes


async def test_bad_input_gets_field_errors_and_writes_nothing(school: Units, bot: Bot) -> None:
    effects = await file_concern(
        bot, pupil="Z999999999999", narrative="x" * 10_000, when_time="25:99", category="nonsense"
    )
    [err] = effects
    assert isinstance(err, FormErrors)
    assert set(err.errors) == {"pupil", "narrative", "when_time", "category"}, err.errors
    effects = await file_concern(bot, when_date="2026-12-25", narrative="")
    [err] = effects
    assert isinstance(err, FormErrors) and set(err.errors) == {"when_date", "narrative"}
    effects = await file_concern(bot, category="staff_conduct", staff="")
    assert isinstance(effects[0], FormErrors) and "staff" in effects[0].errors
    effects = await file_concern(bot, staff="nobody@school.test")
    assert isinstance(effects[0], FormErrors) and "staff" in effects[0].errors
    assert await count(school, Concern) == 0
    assert await count(school, OutboxMessage) == 0
    assert await count(school, ConcernEvent) == 0
    assert await audits(school, "concern.file") == []


async def test_when_it_happened_must_be_within_a_pupils_lifetime(school: Units, bot: Bot) -> None:
    # Today is 30 November 2026: 25 years back is 30 November 2001.
    for day in ("0001-01-01", "1900-06-01", "2001-11-29"):
        [err] = await file_concern(bot, when_date=day)
        assert isinstance(err, FormErrors), day
        assert err.errors == {"when_date": "That date is more than 25 years ago; check the year."}
    assert await count(school, Concern) == 0
    effects = await file_concern(bot, when_date="2001-11-30")
    assert isinstance(effects[0], CloseForm), effects


async def test_failure_inside_the_transaction_sends_no_receipt(
    school: Units, bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError(f"database trouble while saving {NARRATIVE}")

    monkeypatch.setattr(concern_filing, "send_alert", boom)
    effects = await file_concern(bot)
    assert not any(isinstance(e, Reply | CloseForm) for e in effects)
    [err] = effects
    assert isinstance(err, FormErrors) and "could not be saved" in err.errors["narrative"]
    assert await count(school, Concern) == 0
    assert await count(school, OutboxMessage) == 0
    assert await count(school, ConcernEvent) == 0
    assert NARRATIVE not in caplog.text  # the exception's text is not logged


async def test_outage_then_recovery_and_restart(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    messenger.down = True
    effects = await file_concern(bot)
    assert isinstance(effects[1], Reply)  # stored: the receipt does not wait for the platform
    await dispatcher.drain()
    assert messenger.sent == []
    [row] = await outbox_rows(school)
    assert row.delivered_at is None and row.attempts == 1

    # 429 with Retry-After: the alert waits that long.
    messenger.down, messenger.fail_next, messenger.retry_after = False, 1, 120
    clock.advance(seconds=10)
    await dispatcher.drain()
    assert messenger.sent == []
    clock.advance(seconds=60)
    await dispatcher.drain()
    assert messenger.sent == []  # still inside Retry-After

    # "Restart": new Bot, new Dispatcher and new messenger on the same database.
    fresh = RecordingMessenger()
    core2 = Units(db=school.db, policy=school.policy, clock=clock)
    bot2 = build_bot(core2)
    clock.advance(seconds=61)
    await Dispatcher(school.db, clock, fresh).drain()
    [alert] = fresh.to("dsl")
    [c] = await concerns(school)
    assert c.reference in alert.text
    [row] = await outbox_rows(school)
    assert row.delivered_at is not None and row.message_ref
    # The restarted bot's sweep records the delivery in the chronology.
    await bot2.sweep()
    assert await events(school, c.id) == ["filed", "delivered"]


async def test_view_details_need_to_know(school: Units, bot: Bot, dispatcher: Dispatcher) -> None:
    await file_concern(bot)
    [c] = await concerns(school)
    for who in (TEACHER, "slt@school.test", "head@school.test", "stranger@else.test"):
        [eff] = await bot.handle(action(who, "concern.view", str(c.id)))
        assert isinstance(eff, Ephemeral), who
        assert NARRATIVE not in json.dumps(eff.message.to_json())
        assert "Only the DSL" in eff.message.text
    refused = await audits(school, "concern.view_refused")
    assert [a.actor_label for a in refused] == [
        TEACHER,
        "slt@school.test",
        "head@school.test",
        "stranger@else.test",
    ]
    assert all(a.subject_id == c.reference for a in refused)

    for who in (DSL, "deputy@school.test"):
        [eff] = await bot.handle(action(who, "concern.view", str(c.id)))
        assert isinstance(eff, Popup), who
        flat = json.dumps(eff.message.to_json())
        assert NARRATIVE in flat and "Sam Taylor" in flat
    viewed = await audits(school, "concern.view")
    assert [a.actor_label for a in viewed] == [DSL, "deputy@school.test"]
    kinds = await events(school, c.id)
    assert kinds.count("view_refused") == 4 and kinds.count("viewed") == 2


async def test_acknowledge_updates_every_copy(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    school.clock.set(MONDAY_10AM.replace(hour=7))  # type: ignore[attr-defined]
    await file_concern(bot, when_time="06:30")  # out of hours: DSL and SLT channels
    await dispatcher.drain()
    [c] = await concerns(school)
    assert len(messenger.to("dsl")) == 1 and len(messenger.to("slt")) == 1

    [eff] = await bot.handle(action(TEACHER, "concern.ack", str(c.id)))
    assert isinstance(eff, Ephemeral) and "Only the DSL" in eff.message.text
    assert len(await audits(school, "concern.ack_refused")) == 1

    effects = await bot.handle(action("deputy@school.test", "concern.ack", str(c.id)))
    assert isinstance(effects[0], UpdateMessage)
    assert "Acknowledged by Dan Deputy" in json.dumps(effects[0].message.to_json())
    [c] = await concerns(school)
    assert c.acknowledged_at == school.now() and c.acknowledged_by_label == "Dan Deputy"
    await dispatcher.drain()
    updates = [s for s in messenger.sent if s.kind == "update"]
    assert len(updates) == 2  # the DSL and the SLT copies
    assert all("Acknowledged by Dan Deputy" in json.dumps(u.message.to_json()) for u in updates)
    assert any("acknowledged" in m.text for m in messenger.to(TEACHER))  # the reporter is told
    [a] = await audits(school, "concern.ack")
    assert a.actor_label == "deputy@school.test"

    effects = await bot.handle(action(DSL, "concern.ack", str(c.id)))
    assert "already acknowledged by Dan Deputy" in effects[-1].message.text  # type: ignore[union-attr]
    assert len(await audits(school, "concern.ack")) == 1
    assert (await events(school, c.id)).count("acknowledged") == 1


async def test_notes_and_close(school: Units, bot: Bot) -> None:
    await file_concern(bot)
    [c] = await concerns(school)
    [eff] = await bot.handle(action(TEACHER, "concern.note", str(c.id)))
    assert isinstance(eff, Ephemeral) and "Only the DSL" in eff.message.text
    [eff] = await bot.handle(action(DSL, "concern.note", str(c.id)))
    assert isinstance(eff, OpenForm) and eff.form.id == "concern_note"
    await bot.handle(submit(DSL, "concern_note", {"note": "Rang parent."}, eff.form.state))
    [eff] = await bot.handle(action(DSL, "concern.close", str(c.id)))
    assert isinstance(eff, OpenForm) and eff.form.id == "concern_close"
    await bot.handle(submit(DSL, "concern_close", {"note": "Referred to MASH."}, eff.form.state))
    [c] = await concerns(school)
    assert c.status == "closed" and c.outcome == "Referred to MASH."
    assert await events(school, c.id) == [
        "filed",
        "note",
        "acknowledged",
        "closed",
    ] or await events(school, c.id) == ["filed", "note", "closed"]
    [eff] = await bot.handle(action(DSL, "concern.view", str(c.id)))
    assert isinstance(eff, Popup) and "Rang parent." in json.dumps(eff.message.to_json())


async def test_non_roster_user_can_file(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    [eff] = await bot.handle(command("supply@agency.test", "concern"))
    assert isinstance(eff, OpenForm)
    effects = await file_concern(bot, "supply@agency.test", pupil="")
    assert isinstance(effects[1], Reply)
    [c] = await concerns(school)
    assert c.reporter_id is None and c.reporter_label == "supply@agency.test"
    await dispatcher.drain()
    [alert] = messenger.to("dsl")
    assert "supply@agency.test" in json.dumps(alert.to_json())


async def test_report_from_a_booked_call(school: Units, bot: Bot) -> None:
    from tests.unit.test_booking_flow import GOOD

    await bot.handle(submit(TEACHER, "book_call", GOOD))
    async with school.db.transaction() as s:
        from sqlalchemy import select

        from chatbot.storage.models import Booking

        booking_id = (await s.execute(select(Booking.id))).scalar_one()
    [eff] = await bot.handle(action(TEACHER, "concern.open", f"booking:{booking_id}"))
    assert isinstance(eff, OpenForm) and eff.form.state == {"booking_id": str(booking_id)}
    assert eff.form.input("pupil").initial == "A123456789012"
    await file_concern(bot, state=eff.form.state)
    [c] = await concerns(school)
    assert c.booking_id == booking_id
    [eff] = await bot.handle(action(DSL, "concern.view", str(c.id)))
    assert isinstance(eff, Popup) and f"Call #{booking_id}" in json.dumps(eff.message.to_json())
    # The co-host gets the linked form too.
    [eff] = await bot.handle(
        action("colleague@school.test", "concern.open", f"booking:{booking_id}")
    )
    assert isinstance(eff, OpenForm) and eff.form.state == {"booking_id": str(booking_id)}


async def test_report_button_for_someone_elses_call_opens_the_plain_form(
    school: Units, bot: Bot
) -> None:
    """Anyone may report a concern, but only the call's host and co-host see it linked to the
    call: nobody else learns which pupil (or when) from the button's booking id."""
    from sqlalchemy import select

    from chatbot.storage.models import Booking
    from tests.unit.test_booking_flow import GOOD

    await bot.handle(submit(TEACHER, "book_call", GOOD))
    async with school.db.transaction() as s:
        booking_id = (await s.execute(select(Booking.id))).scalar_one()
    [plain] = await bot.handle(command(TEACHER, "concern"))
    assert isinstance(plain, OpenForm)
    for who in ("other@school.test", DSL, "slt@school.test", "supply@agency.test"):
        [eff] = await bot.handle(action(who, "concern.open", f"booking:{booking_id}"))
        assert isinstance(eff, OpenForm), who
        assert eff.form == plain.form, who
        shown = json.dumps(eff.form, default=str)
        for secret in ("A123456789012", "Sam", "Taylor", f"Call #{booking_id}", "2026-12-01"):
            assert secret not in shown, (who, secret)
    # A submission carrying someone else's call id is still filed, without the link.
    effects = await file_concern(
        bot, "other@school.test", state={"booking_id": str(booking_id)}, pupil=""
    )
    assert isinstance(effects[0], CloseForm), effects
    [c] = await concerns(school)
    assert c.booking_id is None and c.reporter_label == "other@school.test"


async def test_no_narrative_pupil_name_or_parent_email_in_logs_or_alerts(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
    caplog: pytest.LogCaptureFixture,
    tmp_path: object,
) -> None:
    caplog.set_level(logging.DEBUG)
    # The SQLite driver echoes every SQL statement with its parameters at DEBUG; it must stay
    # at INFO or above wherever the bot runs (everything else here is scanned at DEBUG).
    caplog.set_level(logging.INFO, logger="aiosqlite")
    secrets = (NARRATIVE, "Zebra-marker", "Sam", "Taylor", "parent.sam@home.test")
    messenger.fail_next = 1
    await bot.handle(command(TEACHER, "concern"))
    await file_concern(bot, risk="yes")
    await file_concern(bot, staff="colleague@school.test", category="staff_conduct")
    await file_concern(bot, pupil="Z999", narrative=NARRATIVE * 200)  # refused: too long
    await dispatcher.drain()
    clock.advance(minutes=3)
    await bot.sweep()
    await dispatcher.drain()
    clock.advance(minutes=30)
    await bot.sweep()
    await dispatcher.drain()
    cs = await concerns(school)
    await bot.handle(action(TEACHER, "concern.view", str(cs[0].id)))
    await bot.handle(action(DSL, "concern.view", str(cs[0].id)))
    await bot.handle(action(DSL, "concern.ack", str(cs[0].id)))
    await bot.handle(submit(DSL, "concern_close", {"note": "Done."}, {"concern_id": str(cs[0].id)}))
    await dispatcher.drain()
    from chatbot.concerns import export, retention

    exported = await export.export(school, cs[0].reference, DSL, "printed")
    assert exported.ok and NARRATIVE in exported.text
    await retention.purge(school, DSL, dry_run=True)

    assert caplog.records, "the flow logs something"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert secret not in logged, secret
    rows = await outbox_rows(school)
    assert any(r.kind == "role" for r in rows) and any(r.kind == "staff" for r in rows)
    for r in rows:
        payload = json.dumps(r.payload, ensure_ascii=False)
        for secret in secrets + ("Colin", "Colleague"):
            assert secret not in payload, (r.kind, secret)
    async with school.db.transaction() as s:
        from sqlalchemy import select

        details = [json.dumps(a.detail) for a in (await s.execute(select(AuditEvent))).scalars()]
    assert details and not any(NARRATIVE in d or "Taylor" in d for d in details)


async def test_concerns_filed_at_once_all_get_their_own_reference(school: Units, bot: Bot) -> None:
    """Thirty reports at the same moment (many staff, one incident): every one is stored, each
    with its own reference in order; none is told to try again (on PostgreSQL they used to
    race for the same number and give up)."""
    reporters = ["teacher@school.test", "colleague@school.test", "other@school.test"]
    answers = await asyncio.gather(
        *(file_concern(bot, reporters[n % 3], narrative=f"{NARRATIVE} ({n})") for n in range(30))
    )
    assert all(isinstance(a[0], CloseForm) for a in answers), [a[0] for a in answers]
    stored = await concerns(school)
    assert len(stored) == 30
    assert sorted(c.reference for c in stored) == [f"C-2026-{n:04d}" for n in range(1, 31)]
