"""The school calendar (issue #11, calendar 12): term dates, holidays and INSET days read from
an iCalendar feed or a CSV, stored in the database, and a booking in a holiday refused naming
the holiday. Imports go through the code `chatbot policy terms import` runs."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from chatbot.effects import CloseForm, FormErrors
from chatbot.router import Bot
from chatbot.terms import calendar
from chatbot.terms.reading import CalendarFileError, Entry, read_file
from chatbot.uow import Units
from tests.conftest import GOOD, HOST, submit

LONDON = ZoneInfo("Europe/London")


def vevent(summary: str, start: str, end: str | None = None, *, all_day: bool = True) -> str:
    kind = ";VALUE=DATE" if all_day else ""
    lines = [
        "BEGIN:VEVENT",
        f"UID:{summary.replace(' ', '-')}-{start}@council.example",
        f"SUMMARY:{summary}",
        f"DTSTART{kind}:{start}",
    ]
    if end:
        lines.append(f"DTEND{kind}:{end}")
    return "\r\n".join([*lines, "END:VEVENT"])


# As councils publish them: all-day events whose DTEND is the day after the last day.
COUNCIL_ICS = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Council//Term Dates//EN",
        vevent("Autumn term 2", "20261102", "20261219"),
        vevent("Christmas holiday", "20261219", "20270104"),
        vevent("INSET day: staff training", "20270104", "20270105"),
        vevent("Spring term 1", "20270105", "20270213"),
        vevent("Parents' evening", "20270120T160000", "20270120T190000", all_day=False),
        vevent("Spring term 2 starts", "20270222"),
        vevent("Spring term 2 ends", "20270326"),
        "END:VCALENDAR",
        "",
    ]
).encode()


def test_ics_terms_holidays_inset_and_markers() -> None:
    read = read_file("terms.ics", COUNCIL_ICS, LONDON)
    assert sorted(read.entries, key=lambda e: e.start) == [
        Entry("term", "Autumn term 2", date(2026, 11, 2), date(2026, 12, 18)),
        Entry("holiday", "Christmas holiday", date(2026, 12, 19), date(2027, 1, 3)),
        Entry("inset", "INSET day: staff training", date(2027, 1, 4), date(2027, 1, 4)),
        Entry("term", "Spring term 1", date(2027, 1, 5), date(2027, 2, 12)),
        Entry("term", "Spring term 2", date(2027, 2, 22), date(2027, 3, 26)),
    ]
    assert read.skipped == [("Parents' evening", "not a term, holiday or INSET day")]


def test_csv_with_semicolons_kinds_and_one_day_rows() -> None:
    text = (
        "Name;Start date;End date;Type\n"
        "Summer term;12/04/2027;21/07/2027;term\n"
        "May half term;2027-05-31;2027-06-04;\n"
        "Staff training;2027-06-07;;INSET\n"
        "Sports day;2027-06-10;;\n"
        "Backwards;2027-07-01;2027-06-01;holiday\n"
    )
    read = read_file("terms.csv", text.encode(), LONDON)
    assert read.entries == [
        Entry("term", "Summer term", date(2027, 4, 12), date(2027, 7, 21)),
        Entry("holiday", "May half term", date(2027, 5, 31), date(2027, 6, 4)),
        Entry("inset", "Staff training", date(2027, 6, 7), date(2027, 6, 7)),
    ]
    assert [line for line, _ in read.skipped] == ["line 5", "line 6"]
    assert "add a kind column" in read.skipped[0][1] and "before it starts" in read.skipped[1][1]


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("t.ics", b"not a calendar", "not an iCalendar file"),
        ("t.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "no terms, holidays or INSET days"),
        ("t.csv", b"when,what\n2027-01-01,x\n", "no column for name, start"),
        ("t.csv", b"\xff\xfe\x00", "neither an iCalendar file nor a UTF-8 CSV"),
        ("t.csv", b"", "empty"),
    ],
)
def test_unreadable_files_say_why(name: str, data: bytes, words: str) -> None:
    with pytest.raises(CalendarFileError, match=words):
        read_file(name, data, LONDON)


async def imported(core: Units) -> None:
    read = read_file("terms.ics", COUNCIL_ICS, LONDON)
    async with core.write() as u:
        await calendar.replace_from(u, "terms.ics", read.entries, "cli")


async def refused(bot: Bot, day: str) -> str:
    [err] = await bot.handle(submit(HOST, "book_call", dict(GOOD, date=day)))
    assert isinstance(err, FormErrors), err
    return err.errors["date"]


async def test_bookings_in_holidays_refused_naming_the_holiday(school: Units, bot: Bot) -> None:
    # With no term dates set, the holiday is bookable: the defect the issue reports.
    assert not await calendar.has_term_dates(school)
    await imported(school)
    assert await calendar.has_term_dates(school)
    assert await refused(bot, "2026-12-22") == (
        "Tuesday 22 December 2026 is in a school holiday (Christmas holiday). Choose a school day."
    )
    assert "is an INSET day, when the school is closed to pupils (INSET day: staff" in (
        await refused(bot, "2027-01-04")
    )
    assert await refused(bot, "2027-02-16") == (
        "Tuesday 16 February 2027 is in the school holiday between Spring term 1 and Spring "
        "term 2. Choose a school day."
    )
    assert "after the last term in the school calendar (Spring term 2 ends Friday 26 March" in (
        await refused(bot, "2027-04-06")
    )
    effects = await bot.handle(submit(HOST, "book_call", GOOD))  # 1 December: in term
    assert isinstance(effects[0], CloseForm), effects


async def test_importing_the_same_file_again_replaces_it(school: Units) -> None:
    await imported(school)
    await imported(school)
    async with school.read() as u:
        assert len(await calendar.listing(u)) == 5
    async with school.write() as u:
        removed = await calendar.replace_from(
            u, "other.csv", [Entry("inset", "Extra", date(2027, 3, 1), date(2027, 3, 1))], "cli"
        )
    assert removed == 0
    async with school.read() as u:
        assert len(await calendar.listing(u)) == 6
    async with school.write() as u:
        assert await calendar.replace_from(u, "new.ics", [], "cli", everything=True) == 6
