"""Staff DBS checks and safeguarding training (issue #11, staff 4): read from the roster in
the shapes schools export it, and enforced at booking as the policy's [staff] settings say."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sqlalchemy import select

from chatbot.bootstrap import build_bot
from chatbot.effects import CloseForm, FormErrors
from chatbot.outbox import Dispatcher
from chatbot.policy import default_policy
from chatbot.ports import FixedClock
from chatbot.roster import importer as roster
from chatbot.router import Bot
from chatbot.storage.models import Booking, Staff
from chatbot.uow import Units
from tests.conftest import GOOD, HOST, submit
from tests.fakes import RecordingMessenger

# A semicolon-separated MIS export, its own headers and role spellings, roles split by commas.
MIS_EXPORT = (
    "Email Address;Legal Forename;Legal Surname;Role;DBS Check Date;Safeguarding Training Date\n"
    "tess@school.test;Tess;Teacher;Teacher;02/09/2024;01/09/2025\n"
    "hal@school.test;Hal;Head;Head, SLT;2019-01-07;2023-09-04\n"
    "dan@school.test;Dan;Deputy;Deputy DSL;;\n"
    "dee@school.test;Dee;Lead;Designated Safeguarding Lead / teacher;2020-05-05;2025-09-01\n"
    "bad@school.test;Bad;Date;teacher;next week;\n"
)


async def staff(core: Units) -> dict[str, Staff]:
    async with core.db.reading() as s:
        return {p.email: p for p in (await s.execute(select(Staff))).scalars()}


async def test_roster_dates_role_spellings_and_semicolons(core: Units) -> None:
    report = await roster.import_staff(core, MIS_EXPORT)
    assert (report.created, len(report.rejected)) == (4, 1), report.rejected
    assert report.rejected == [
        (6, "DBS check date 'next week' is not a date (use YYYY-MM-DD or DD/MM/YYYY)")
    ]
    people = await staff(core)
    tess, hal = people["tess@school.test"], people["hal@school.test"]
    assert tess.role_set == {"staff"}
    assert (tess.dbs_checked, tess.safeguarding_training) == (date(2024, 9, 2), date(2025, 9, 1))
    assert hal.role_set == {"staff", "admin", "slt"}
    assert people["dan@school.test"].role_set == {"staff", "deputy_dsl"}
    assert people["dan@school.test"].dbs_checked is None
    assert people["dee@school.test"].role_set == {"staff", "dsl"}
    # A later file without the dates keeps the ones on record.
    await roster.import_staff(core, "email,forename,surname,roles\ntess@school.test,Tess,T,staff\n")
    assert (await staff(core))["tess@school.test"].dbs_checked == date(2024, 9, 2)


UNCHECKED = (
    "email,forename,surname,roles,dbs_checked,safeguarding_training\n"
    "teacher@school.test,Tess,Teacher,staff,,\n"
    "colleague@school.test,Colin,Colleague,staff,2024-09-02,2023-01-05\n"
)


async def test_by_default_slt_are_told_and_the_call_is_booked(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    await roster.import_staff(school, UNCHECKED)
    async with school.write() as u:  # as if the school had never recorded Tess's checks
        tess = (await u.session.execute(select(Staff).where(Staff.email == HOST))).scalar_one()
        tess.dbs_checked = tess.safeguarding_training = None
    effects = await bot.handle(submit(HOST, "book_call", GOOD))
    assert isinstance(effects[0], CloseForm), effects
    await dispatcher.drain()
    [warning] = [m for m in messenger.to("slt") if "checks are not on record" in m.text]
    flat = str(warning.to_json())
    assert "Tess Teacher: no DBS check on the staff roster; no safeguarding training" in flat
    assert "Colin Colleague: safeguarding training last recorded on Thursday 5 January 2023" in flat
    assert "more than 36 months before the call" in flat
    assert "Taylor" not in flat  # SLT see pupils' initials only


async def test_refuse_setting_stops_the_booking_naming_what_is_missing(
    school: Units, db, clock: FixedClock
) -> None:
    units = Units(
        db=db, policy=replace(default_policy(), staff_checks_missing="refuse"), clock=clock
    )
    strict = build_bot(units)
    await roster.import_staff(school, UNCHECKED)
    async with school.write() as u:
        tess = (await u.session.execute(select(Staff).where(Staff.email == HOST))).scalar_one()
        tess.dbs_checked = None
    [err] = await strict.handle(submit(HOST, "book_call", GOOD))
    assert isinstance(err, FormErrors), err
    assert err.errors["pupils"] == (
        "You can't be on a call yet: no DBS check on the staff roster. "
        "Ask the office to update the staff roster."
    )
    assert (
        "Colin Colleague can't be on a call yet: safeguarding training last recorded"
        in (err.errors["cohost"])
    )
    async with db.reading() as s:
        assert (await s.execute(select(Booking))).first() is None
    # Training within the limit on the day of the call is enough.
    await roster.import_staff(
        school,
        "email,forename,surname,roles,dbs_checked,safeguarding_training\n"
        "teacher@school.test,Tess,Teacher,staff,2024-09-02,2023-12-01\n"
        "colleague@school.test,Colin,Colleague,staff,2024-09-02,2024-01-01\n",
    )
    strict = build_bot(units)  # a new router: its roster matches are kept for 30 seconds
    effects = await strict.handle(submit(HOST, "book_call", GOOD))
    assert isinstance(effects[0], CloseForm), effects
