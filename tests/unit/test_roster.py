"""Roster import: our headers and MIS export headers, updates not duplicates, bad rows
reported with their line numbers, files with nothing usable, missing columns."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chatbot.roster import importer as roster
from chatbot.roster.importer import RosterError
from chatbot.storage.models import AuditEvent, Pupil, Staff
from chatbot.uow import Units


async def all_staff(core: Units) -> dict[str, Staff]:
    async with core.db.transaction() as s:
        return {p.email: p for p in (await s.execute(select(Staff))).scalars()}


async def all_pupils(core: Units) -> dict[str, Pupil]:
    async with core.db.transaction() as s:
        return {p.upn: p for p in (await s.execute(select(Pupil))).scalars()}


STAFF = """email,forename,surname,roles
Teacher@School.test , Tess ,Teacher,staff
slt@school.test,Sally,Leader,slt
dsl@school.test,Dee,Lead,staff;dsl;deputy_dsl
"""


async def test_staff_import(core: Units) -> None:
    report = await roster.import_staff(core, STAFF)
    assert (report.created, report.updated, report.rejected, report.usable) == (3, 0, [], 3)
    people = await all_staff(core)
    assert set(people) == {"teacher@school.test", "slt@school.test", "dsl@school.test"}
    tess = people["teacher@school.test"]
    assert (tess.forename, tess.surname, tess.role_set) == ("Tess", "Teacher", {"staff"})
    assert people["slt@school.test"].role_set == {"staff", "slt"}  # every one is staff
    assert people["dsl@school.test"].has_role("dsl") and people["dsl@school.test"].active


async def test_staff_reimport_updates(core: Units) -> None:
    await roster.import_staff(core, STAFF)
    again = """email,forename,surname,roles
TEACHER@school.test,Tessa,Teacher-Jones,staff;slt
new@school.test,Nia,New,
"""
    report = await roster.import_staff(core, again)
    assert (report.created, report.updated) == (1, 1)
    people = await all_staff(core)
    assert len(people) == 4
    tess = people["teacher@school.test"]
    assert (tess.forename, tess.surname, tess.role_set) == (
        "Tessa",
        "Teacher-Jones",
        {"staff", "slt"},
    )
    assert people["new@school.test"].role_set == {"staff"}


async def test_staff_bad_rows_reported(core: Units) -> None:
    text = """email,forename,surname,roles
good@school.test,Gail,Good,staff
not-an-email,Bad,Email,staff
role@school.test,Rob,Role,staff;headmaster
good@school.test,Gail,Again,staff
noname@school.test,,Surname,staff
nosurname@school.test,Nora,   ,staff

zoë@school.test,Zoë,Ørsted-Núñez,staff
"""
    report = await roster.import_staff(core, text)
    reasons = dict(report.rejected)
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert "not an email address" in reasons[3]
    assert "unknown role 'headmaster'" in reasons[4] and "deputy_dsl" in reasons[4]
    assert "appears earlier in the file" in reasons[5]
    assert "forename is empty" in reasons[6]
    assert "surname is empty" in reasons[7]
    assert report.created == 2  # line 9 (after a blank line) is fine, accents and all
    people = await all_staff(core)
    assert set(people) == {"good@school.test", "zoë@school.test"}
    assert people["good@school.test"].surname == "Good"
    assert people["zoë@school.test"].surname == "Ørsted-Núñez"


async def test_staff_file_with_no_usable_rows(core: Units) -> None:
    text = "email,forename,surname,roles\nnope,A,B,staff\n@x,C,D,staff\n"
    report = await roster.import_staff(core, text)
    assert report.usable == 0 and [line for line, _ in report.rejected] == [2, 3]
    assert await all_staff(core) == {}
    async with core.db.transaction() as s:
        assert (await s.execute(select(func.count(AuditEvent.id)))).scalar_one() == 0


async def test_staff_header_only_file_has_no_usable_rows(core: Units) -> None:
    report = await roster.import_staff(core, "email,forename,surname,roles\n")
    assert report.usable == 0 and report.rejected == []


async def test_staff_missing_column(core: Units) -> None:
    with pytest.raises(RosterError, match="surname"):
        await roster.import_staff(core, "email,forename,roles\na@school.test,A,staff\n")
    with pytest.raises(RosterError, match="empty"):
        await roster.import_staff(core, "")
    assert await all_staff(core) == {}


PUPILS = """upn,forename,surname,class,parent_email
A123456789012,Sam,Taylor,Year 3,Parent.Sam@Home.test
B123456789012,Zoë,Ørsted-Núñez,Year 3,
"""


async def test_pupil_import(core: Units) -> None:
    report = await roster.import_pupils(core, PUPILS)
    assert (report.created, report.updated, report.rejected) == (2, 0, [])
    pupils = await all_pupils(core)
    sam = pupils["A123456789012"]
    assert (sam.forename, sam.surname, sam.class_name, sam.parent_email) == (
        "Sam",
        "Taylor",
        "Year 3",
        "parent.sam@home.test",
    )
    zoe = pupils["B123456789012"]
    assert zoe.short_name == "Zoë Ø" and zoe.initials == "ZØ" and zoe.parent_email is None


async def test_pupil_import_mis_headers(core: Units) -> None:
    text = (
        "\ufeffUPN,Legal Forename,Legal Surname,Reg Group,Primary Contact Email,Date of Birth\n"
        "a123456789012,Sam,Taylor,3T,mum@home.test,14/03/2019\n"
        "B 1234 5678 9012,Zoë,Ørsted-Núñez,3T,dad@home.test,2019-07-01\n"
    )
    report = await roster.import_pupils(core, text)
    assert (report.created, report.rejected) == (2, [])
    pupils = await all_pupils(core)
    assert pupils["A123456789012"].class_name == "3T"
    assert pupils["A123456789012"].parent_email == "mum@home.test"
    assert str(pupils["A123456789012"].date_of_birth) == "2019-03-14"
    assert pupils["B123456789012"].forename == "Zoë"


async def test_pupil_birth_dates_out_of_reason_rejected(core: Units) -> None:
    """A pupil's birth date decides how long their concern records are kept, so one in the
    future or more than 25 years ago (0001 for 2001) is rejected with its line number."""
    text = (
        "upn,forename,surname,class,date of birth\n"
        "A123456789012,Sam,Taylor,3T,0001-03-14\n"
        "B123456789012,Zoë,Ørsted,3T,9999-12-31\n"
        "C123456789012,Noah,Nobody,4N,01/07/2099\n"
        "D123456789012,Dee,Dee,4N,2019-07-01\n"
    )
    report = await roster.import_pupils(core, text)
    assert report.created == 1
    assert report.rejected == [
        (2, "date of birth '0001-03-14' is more than 25 years ago; check the year."),
        (3, "date of birth '9999-12-31' is in the future"),
        (4, "date of birth '01/07/2099' is in the future"),
    ]
    assert set(await all_pupils(core)) == {"D123456789012"}


async def test_staff_import_mis_headers(core: Units) -> None:
    text = "Legal Forename,Legal Surname,Email Address,Role\nTess,Teacher,t@school.test,slt\n"
    report = await roster.import_staff(core, text)
    assert report.created == 1
    assert (await all_staff(core))["t@school.test"].role_set == {"staff", "slt"}


async def test_pupil_reimport_updates(core: Units) -> None:
    await roster.import_pupils(core, PUPILS)
    again = """UPN,Legal Forename,Legal Surname,Reg Group
A123456789012,Samuel,Taylor,Year 4
C123456789012,Noah,Nobody,Year 4
"""
    report = await roster.import_pupils(core, again)
    assert (report.created, report.updated) == (1, 1)
    pupils = await all_pupils(core)
    assert len(pupils) == 3
    sam = pupils["A123456789012"]
    assert (sam.forename, sam.class_name) == ("Samuel", "Year 4")
    assert sam.parent_email == "parent.sam@home.test"  # an absent column does not erase it


async def test_pupil_bad_rows_reported(core: Units) -> None:
    text = """upn,forename,surname,class,parent_email
A123456789012,Sam,Taylor,Year 3,
12345,Bad,Upn,Year 3,
A123456789012,Sam,Again,Year 3,
B123456789012,,Empty,Year 3,
C123456789012,Noah,Nobody,Year 4,not an email
D123456789012,Dee,Dee,Year 4,
"""
    report = await roster.import_pupils(core, text)
    reasons = dict(report.rejected)
    assert sorted(reasons) == [3, 4, 5, 6]
    assert "'12345' is not a UPN" in reasons[3]
    assert "appears earlier in the file" in reasons[4]
    assert "forename is empty" in reasons[5]
    assert "parent email is not an email address" in reasons[6]
    assert report.created == 2
    assert set(await all_pupils(core)) == {"A123456789012", "D123456789012"}


async def test_pupil_line_numbers_count_multiline_cells(core: Units) -> None:
    text = 'upn,forename,surname,class\nA123456789012,Sam,"Taylor\nSmith",Y3\nbad,X,Y,Y3\n'
    report = await roster.import_pupils(core, text)
    assert report.created == 1
    assert [line for line, _ in report.rejected] == [4]


async def test_pupil_file_with_no_usable_rows(core: Units) -> None:
    report = await roster.import_pupils(core, "upn,forename,surname\nX1,A,B\n,,\nZZ,C,\n")
    assert report.usable == 0
    assert [line for line, _ in report.rejected] == [2, 4]  # the blank row is skipped
    assert await all_pupils(core) == {}


async def test_pupil_missing_column(core: Units) -> None:
    with pytest.raises(RosterError, match="upn") as e:
        await roster.import_pupils(core, "Legal Forename,Legal Surname\nSam,Taylor\n")
    assert "Legal Forename" in str(e.value)  # says what it did find
    assert await all_pupils(core) == {}


async def test_leavers_are_deactivated_only_when_asked(school: Units) -> None:
    from sqlalchemy import select

    from chatbot.bootstrap import build_bot
    from chatbot.effects import Ephemeral
    from chatbot.storage.models import Pupil, Staff
    from tests.conftest import PUPILS_CSV, STAFF_CSV, command

    without_other = "".join(
        line for line in STAFF_CSV.splitlines(True) if not line.startswith("other@")
    )
    kept = await roster.import_staff(school, without_other)
    assert kept.deactivated == 0
    report = await roster.import_staff(school, without_other, deactivate_missing=True)
    assert report.deactivated == 1 and report.updated == 6
    async with school.db.transaction() as s:
        other = (
            await s.execute(select(Staff).where(Staff.email == "other@school.test"))
        ).scalar_one()
    assert other.active is False
    [said] = await build_bot(school).handle(command("other@school.test", "book-call"))
    assert isinstance(said, Ephemeral) and "not on the school's staff roster" in said.message.text

    pupils = await roster.import_pupils(
        school,
        PUPILS_CSV.replace("C123456789012,Noah,Nobody,Year 4,\n", ""),
        deactivate_missing=True,
    )
    assert pupils.deactivated == 1
    async with school.db.transaction() as s:
        noah = (await s.execute(select(Pupil).where(Pupil.upn == "C123456789012"))).scalar_one()
    assert noah.active is False  # kept (records stay), but no longer bookable


async def test_a_file_with_no_usable_rows_deactivates_nobody(school: Units) -> None:
    report = await roster.import_staff(
        school, "email,forename,surname,roles\nbad,,,\n", deactivate_missing=True
    )
    assert report.usable == 0 and report.deactivated == 0
