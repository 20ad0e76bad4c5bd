"""Every booking rule, refused and allowed, through the Bot (submit form "book_call").

Each refusal checks the field the error is shown on, that the message is plain English, and
that nothing was written: no booking, no pupil slot, no outbox row, no booking audit row.
The clock starts at Monday 30 November 2026, 08:00 (GMT).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from chatbot.bootstrap import build_bot
from chatbot.effects import CloseForm, Effect, FormErrors, Reply
from chatbot.outbox import Dispatcher
from chatbot.policy import default_policy
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, Booking, BookingPupil, OutboxMessage
from chatbot.uow import Units
from tests.conftest import COHOST, GOOD, HOST, action, submit
from tests.fakes import RecordingMessenger

OTHER = "other@school.test"
HEAD = "head@school.test"
SAM = "A123456789012"
ZOE = "B123456789012"
NOAH = "C123456789012"  # on the roster, no consent


def form(**changes: object) -> dict[str, object]:
    return {**GOOD, **changes}


async def counts(core: Units) -> dict[str, int]:
    async with core.db.transaction() as s:

        async def n(model: type, *where: object) -> int:
            q = select(func.count()).select_from(model)
            if where:
                q = q.where(*where)
            return int((await s.execute(q)).scalar_one())

        return {
            "booking": await n(Booking),
            "booking_pupil": await n(BookingPupil),
            "outbox": await n(OutboxMessage),
            "audit": await n(AuditEvent, AuditEvent.action == "booking.create"),
        }


async def book(bot: Bot, values: dict[str, object], who: str = HOST) -> list[Effect]:
    return await bot.handle(submit(who, "book_call", values))


async def booked(bot: Bot, values: dict[str, object], who: str = HOST) -> Booking:
    """Book, expecting success; return the stored booking."""
    before = await counts(bot.units)
    effects = await book(bot, values, who)
    assert isinstance(effects[0], CloseForm), effects
    assert isinstance(effects[1], Reply)
    after = await counts(bot.units)
    assert after["booking"] == before["booking"] + 1
    assert after["audit"] == before["audit"] + 1
    assert after["outbox"] > before["outbox"]
    async with bot.units.db.transaction() as s:
        return (await s.execute(select(Booking).order_by(Booking.id.desc()).limit(1))).scalar_one()


def assert_plain(message: str) -> None:
    assert isinstance(message, str) and len(message) > 15, message
    assert " " in message and not message[0].isspace(), message
    assert message.rstrip().endswith((".", ")")), message
    for jargon in ("Traceback", "Error", "None", "violation", "IntegrityError", "_"):
        assert jargon not in message, message


async def refused(
    bot: Bot, values: dict[str, object], field: str, *words: str, who: str = HOST
) -> str:
    """Submit, expect a FormErrors naming ``field`` whose message has ``words``, nothing written."""
    before = await counts(bot.units)
    effects = await book(bot, values, who)
    assert len(effects) == 1 and isinstance(effects[0], FormErrors), effects
    errors = effects[0].errors
    assert field in errors, errors
    message = errors[field]
    assert_plain(message)
    for w in words:
        assert w.lower() in message.lower(), (w, message)
    assert await counts(bot.units) == before, "a refused booking wrote rows"
    return message


# ---------------------------------------------------------------- school days


async def test_weekend_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(date="2026-12-05"), "date", "Saturday", "not a school day")
    await refused(bot, form(date="2026-12-06"), "date", "Sunday", "not a school day")


async def test_bank_holiday_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(date="2026-12-25"), "date", "bank holiday", "Christmas")
    # 26 December 2026 is a Saturday, so Monday 28 December is the substitute holiday.
    await refused(bot, form(date="2026-12-28"), "date", "bank holiday")


async def test_school_day_allowed(school: Units, bot: Bot) -> None:
    b = await booked(bot, form(date="2026-12-01"))
    assert b.starts_at == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert b.status == "awaiting_cohost"


async def test_school_day_in_summer_time_allowed(school: Units, bot: Bot) -> None:
    # Hours are London time: 09:00 BST is 08:00 UTC.
    b = await booked(bot, form(date="2027-06-01", start="09:00"))
    assert b.starts_at == datetime(2027, 6, 1, 8, 0, tzinfo=UTC)


# ---------------------------------------------------------------- school hours


async def test_start_before_hours_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(start="08:30"), "start", "08:30", "outside school hours", "09:00")


async def test_start_after_hours_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(start="15:00"), "start", "outside school hours")


async def test_end_after_hours_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(start="14:45", duration="30"), "duration", "15:15", "15:00")


async def test_hours_edges_allowed(school: Units, bot: Bot) -> None:
    await booked(bot, form(start="09:00"))
    # A different pupil, host and co-host, ending exactly when school hours end.
    await booked(bot, form(pupils=[ZOE], start="14:30", duration="30", cohost=HEAD), who=OTHER)


# ---------------------------------------------------------------- length


async def test_too_long_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(duration="31"), "duration", "at most 30 minutes")


async def test_longest_allowed(school: Units, bot: Bot) -> None:
    b = await booked(bot, form(duration="30"))
    assert (b.ends_at - b.starts_at).total_seconds() == 30 * 60


# ---------------------------------------------------------------- past and notice


async def test_in_the_past_refused(school: Units, bot: Bot, clock: FixedClock) -> None:
    clock.set(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    await refused(bot, form(date="2026-12-01", start="10:00"), "start", "already passed")
    # An earlier day is refused on the date itself (it used to be on the start time).
    await refused(bot, form(date="2026-11-27", start="10:00"), "date", "date has passed")


@pytest.mark.parametrize(
    ("day", "start"),
    [("9999-12-31", "23:59"), ("9999-01-05", "10:00"), ("2027-12-01", "10:00")],
)
async def test_too_far_ahead_refused(school: Units, bot: Bot, day: str, start: str) -> None:
    # Today is Monday 30 November 2026; the default window is 365 days, to 30 November 2027.
    message = await refused(
        bot, form(date=day, start=start), "date", "up to 365 days ahead", "Tuesday 30 November 2027"
    )
    assert "school" not in message  # nothing else is said about a date outside the window


async def test_last_day_of_the_window_allowed(school: Units, bot: Bot) -> None:
    b = await booked(bot, form(date="2027-11-30"))
    assert b.starts_at.year == 2027


async def test_year_one_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(date="0001-01-01", start="10:00"), "date", "date has passed")


async def test_window_follows_the_policy(school: Units, db, clock: FixedClock) -> None:
    bot = build_bot(
        Units(db=db, policy=replace(default_policy(), max_advance_days=14), clock=clock)
    )
    await refused(bot, form(date="2026-12-15"), "date", "up to 14 days ahead", "14 December")
    await booked(bot, form(date="2026-12-14"))


async def test_future_allowed(school: Units, bot: Bot, clock: FixedClock) -> None:
    clock.set(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    await booked(bot, form(date="2026-12-01", start="13:00"))


async def test_inside_minimum_notice_refused(school: Units, bot: Bot, clock: FixedClock) -> None:
    clock.set(datetime(2026, 12, 1, 9, 31, tzinfo=UTC))
    message = await refused(bot, form(start="10:30"), "start", "at least 60 minutes ahead")
    # Only those the bot really tells are named: nothing is sent to families (yet).
    assert message.endswith("so the co-host and SLT can be told.") and "family" not in message


async def test_exactly_minimum_notice_allowed(school: Units, bot: Bot, clock: FixedClock) -> None:
    clock.set(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    await booked(bot, form(start="10:30"))


# ---------------------------------------------------------------- one call a week


async def test_second_call_same_week_refused(school: Units, bot: Bot) -> None:
    await booked(bot, form())
    await refused(
        bot,
        form(date="2026-12-03", cohost=HEAD),
        "pupils",
        "Sam T already has a call that week",
        who=OTHER,
    )


async def test_weekly_limit_counts_every_pupil_of_a_group(school: Units, bot: Bot) -> None:
    await booked(bot, form(pupils=[ZOE]))
    message = await refused(
        bot,
        form(pupils=[SAM, ZOE], kind="group", date="2026-12-04", cohost=HEAD),
        "pupils",
        who=OTHER,
    )
    assert "Zoë Ø" in message and "Sam" not in message


async def test_following_week_allowed(school: Units, bot: Bot) -> None:
    await booked(bot, form())
    await booked(bot, form(date="2026-12-07"))  # Monday of the next ISO week


async def test_allowed_again_after_cancel(school: Units, bot: Bot) -> None:
    first = await booked(bot, form())
    effects = await bot.handle(action(HOST, "booking.cancel_confirm", str(first.id)))
    assert any("Cancelled" in e.message.text for e in effects[1:]), effects
    await booked(bot, form(date="2026-12-03"))


async def test_allowed_again_after_cancel_of_confirmed(school: Units, bot: Bot) -> None:
    first = await booked(bot, form())
    await bot.handle(action(COHOST, "cohost.accept", str(first.id)))
    await bot.handle(action(HOST, "booking.cancel_confirm", str(first.id)))
    await booked(bot, form(date="2026-12-03"))


async def test_allowed_again_after_decline(school: Units, bot: Bot) -> None:
    first = await booked(bot, form())
    await bot.handle(action(COHOST, "cohost.decline", str(first.id)))
    await booked(bot, form(date="2026-12-03", cohost=HEAD))


# ---------------------------------------------------------------- consent


async def test_no_consent_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(pupils=[NOAH]), "pupils", "Noah N.", "consent")


CONSENT_FORM = {
    "pupil": NOAH,
    "parent_email": "parent.noah@home.test",
    "received_date": "2026-11-29",
    "received_time": "18:05",
    "evidence": "<CAF123@mail.home.test> Re: video calls",
}


async def test_allowed_after_consent_granted(school: Units, bot: Bot) -> None:
    effects = await bot.handle(submit(HOST, "consent", CONSENT_FORM))
    assert isinstance(effects[0], CloseForm), effects
    b = await booked(bot, form(pupils=[NOAH]))
    assert [bp.pupil.upn for bp in b.pupils] == [NOAH]


async def test_refused_after_consent_withdrawn(school: Units, bot: Bot) -> None:
    # Sam's consent was recorded on the command line, so SLT withdraw it (not the host).
    effects = await bot.handle(submit("slt@school.test", "consent_withdraw", {"pupil": SAM}))
    assert isinstance(effects[0], CloseForm), effects
    await refused(bot, form(), "pupils", "Sam T.", "consent")


# ---------------------------------------------------------------- co-host


async def test_no_cohost_group_refused(school: Units, bot: Bot) -> None:
    await refused(
        bot,
        form(pupils=[SAM, ZOE], kind="group", cohost=""),
        "cohost",
        "second member of staff",
        "group",
    )


async def test_no_cohost_one_to_one_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(cohost=""), "cohost", "second member of staff", "one-to-one")


async def test_cohost_group_allowed(school: Units, bot: Bot) -> None:
    b = await booked(bot, form(pupils=[SAM, ZOE], kind="group"))
    assert b.kind == "group" and len(b.pupils) == 2


async def test_no_cohost_one_to_one_allowed_when_school_relaxes_it(
    school: Units, db, clock: FixedClock, messenger: RecordingMessenger
) -> None:
    relaxed = build_bot(
        Units(
            db=db, policy=replace(default_policy(), cohost_required_one_to_one=False), clock=clock
        )
    )
    b = await booked(relaxed, form(cohost=""))
    assert b.cohost_id is None and b.status == "confirmed"
    await Dispatcher(db, clock, messenger).drain()
    [slt] = messenger.to("slt")
    assert "Video call booked" in slt.text
    # Groups still need a second adult.
    await refused(
        relaxed, form(pupils=[ZOE], kind="group", cohost="", date="2026-12-02"), "cohost", "group"
    )


async def test_cohost_not_on_roster_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(cohost="stranger@elsewhere.test"), "cohost", "not on the staff roster")


async def test_cohost_is_host_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(cohost=HOST), "cohost", "different member of staff")
    await refused(bot, form(cohost="  Teacher@School.TEST "), "cohost", "different")


async def test_cohost_busy_refused(school: Units, bot: Bot) -> None:
    await booked(bot, form())  # colleague co-hosts 10:00-10:20 (awaiting an answer)
    await refused(bot, form(pupils=[ZOE], start="10:10"), "cohost", "already has a call", who=OTHER)


async def test_cohost_busy_as_host_refused(school: Units, bot: Bot) -> None:
    await booked(bot, form(cohost=OTHER), who=COHOST)  # colleague hosts 10:00-10:20
    await refused(bot, form(pupils=[ZOE], start="10:15"), "cohost", "already has a call", who=HEAD)


async def test_cohost_free_allowed(school: Units, bot: Bot) -> None:
    await booked(bot, form())
    await booked(bot, form(pupils=[ZOE], start="10:20"), who=OTHER)  # back to back is fine


async def test_cohost_free_again_after_decline(school: Units, bot: Bot) -> None:
    first = await booked(bot, form())
    await bot.handle(action(COHOST, "cohost.decline", str(first.id)))
    await booked(bot, form(pupils=[ZOE], start="10:10"), who=OTHER)


async def test_host_busy_refused(school: Units, bot: Bot) -> None:
    await booked(bot, form())
    await refused(
        bot, form(pupils=[ZOE], start="10:15", cohost=HEAD), "start", "already have a call"
    )


async def test_host_busy_as_cohost_refused(school: Units, bot: Bot) -> None:
    await booked(bot, form(cohost=HOST), who=OTHER)  # teacher co-hosts 10:00-10:20
    await refused(
        bot, form(pupils=[ZOE], start="09:50", cohost=HEAD), "start", "already have a call"
    )


async def test_host_free_allowed(school: Units, bot: Bot) -> None:
    await booked(bot, form())
    await booked(bot, form(pupils=[ZOE], start="09:30", duration="30", cohost=HEAD))


# ---------------------------------------------------------------- platform and plan


async def test_platform_not_agreed_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(platform="Skype"), "platform", "Skype", "not agreed", "Zoom")
    await refused(bot, form(platform=""), "platform", "not agreed", "Zoom")


async def test_platform_agreed_allowed(school: Units, bot: Bot) -> None:
    b = await booked(bot, form(platform="zoom"))
    assert b.platform == "Zoom"


async def test_plan_empty_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(plan=""), "plan", "plan")
    await refused(bot, form(plan="   \n  "), "plan", "plan")


async def test_plan_allowed(school: Units, bot: Bot) -> None:
    b = await booked(bot, form(plan="We read a story together."))
    assert b.plan == "We read a story together."


# ---------------------------------------------------------------- pupils


async def test_unknown_pupil_refused(school: Units, bot: Bot) -> None:
    await refused(
        bot, form(pupils=["Z999999999999"]), "pupils", "Z999999999999", "not on the pupil roster"
    )
    # One unknown pupil spoils a group booking: nothing is stored for the others either.
    await refused(
        bot, form(pupils=[SAM, "Z999999999999"], kind="group"), "pupils", "not on the pupil roster"
    )


async def test_no_pupil_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(pupils=[]), "pupils", "at least one pupil")


async def test_one_to_one_with_two_pupils_refused(school: Units, bot: Bot) -> None:
    await refused(bot, form(pupils=[SAM, ZOE]), "kind", "group")


async def test_known_pupil_allowed_in_any_case(school: Units, bot: Bot) -> None:
    b = await booked(bot, form(pupils=[SAM.lower()]))
    assert [bp.pupil.upn for bp in b.pupils] == [SAM]


# ---------------------------------------------------------------- every rule at once


async def test_every_violation_reported_at_once(school: Units, bot: Bot) -> None:
    effects = await book(
        bot,
        form(
            pupils=["Z999999999999", NOAH],
            kind="group",
            date="2026-12-05",
            duration="45",
            cohost=HOST,
            platform="Teams",
            plan="",
        ),
    )
    [err] = effects
    assert isinstance(err, FormErrors)
    assert set(err.errors) == {"date", "duration", "pupils", "cohost", "platform", "plan"}
    assert "roster" in err.errors["pupils"] and "consent" in err.errors["pupils"]
    assert await counts(bot.units) == {"booking": 0, "booking_pupil": 0, "outbox": 0, "audit": 0}


# ---------------------------------------------------------------- bad input


BAD_INPUT: list[tuple[dict[str, object], str, tuple[str, ...]]] = [
    ({"start": "25:00"}, "start", ("25:00", "not a time of day", "HH:MM")),
    ({"start": "10:75"}, "start", ("not a time of day",)),
    ({"start": "ten"}, "start", ("not a time of day",)),
    ({"start": ""}, "start", ("required",)),
    ({"date": "2026-02-30"}, "date", ("not a date",)),
    ({"date": "tomorrow"}, "date", ("not a date", "YYYY-MM-DD")),
    ({"duration": "twenty"}, "duration", ("whole number",)),
    ({"duration": "0"}, "duration", ("between",)),
    ({"duration": "-5"}, "duration", ("between",)),
    ({"duration": "4"}, "duration", ("at least 5 minutes",)),
    ({"plan": "x" * 10_000}, "plan", ("too long", "10,000")),
    ({"pupils": ["Z999999999999"]}, "pupils", ("not on the pupil roster",)),
    ({"pupils": ["Ørsted-Núñez"]}, "pupils", ("not on the pupil roster",)),
    ({"pupils": ["x" * 10_000]}, "pupils", ("not on the pupil roster",)),
    ({"cohost": "zoë@school.test"}, "cohost", ("not on the staff roster",)),
    ({"cohost": "c" * 10_000}, "cohost", ("not on the staff roster",)),
    ({"kind": "party"}, "kind", ("one-to-one or group",)),
    ({"platform": "Zoom" * 2500}, "platform", ("not agreed",)),
]


async def test_bad_input_refused(school: Units, bot: Bot) -> None:
    # One database for all the cases (each still checks that nothing was written).
    for changes, field, words in BAD_INPUT:
        message = await refused(bot, form(**changes), field, *words)
        assert len(message) < 400, "an error message should not echo a huge input back"


async def test_non_ascii_pupil_books_and_renders(
    school: Units, bot: Bot, dispatcher: Dispatcher, messenger: RecordingMessenger
) -> None:
    effects = await book(bot, form(pupils=[ZOE], plan="Zoë reads «Le Petit Prince» 📚"))
    assert isinstance(effects[0], CloseForm), effects
    reply = effects[1]
    assert isinstance(reply, Reply)
    assert "Zoë Ø" in str(reply.message.to_json())
    async with school.db.transaction() as s:
        b = (await s.execute(select(Booking))).scalar_one()
        assert b.plan == "Zoë reads «Le Petit Prince» 📚"
        assert b.pupils[0].pupil.forename == "Zoë"
        assert b.pupils[0].pupil.surname == "Ørsted-Núñez"
    await dispatcher.drain()
    [request] = messenger.to(COHOST)
    assert "Zoë Ø" in str(request.to_json())
    await bot.handle(action(COHOST, "cohost.accept", str(b.id)))
    await dispatcher.drain()
    [slt] = messenger.to("slt")
    assert "ZØ" in str(slt.to_json()) and "Ørsted" not in str(slt.to_json())
