"""Issue #11, point 5: a checklist item can be ticked only when it can have been done, checks
still unticked a few minutes into the call go to SLT, and the checklist has the items the
policy implies (school account, an adult nearby, the Code of Conduct with its link)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from chatbot.effects import Ephemeral
from chatbot.outbox import Dispatcher
from chatbot.policy import PolicyError, default_policy, policy_from_toml
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, ChecklistTick
from chatbot.ui import Message
from chatbot.uow import Units
from tests.conftest import COHOST, HOST, action
from tests.fakes import RecordingMessenger
from tests.integration.test_sweeps import at, containing, make_booking, sweep_at


async def tick(bot: Bot, booking_id: int, key: str, who: str = HOST) -> str:
    effects = await bot.handle(action(who, "checklist.tick", f"{booking_id}:{key}"))
    return str(effects)


async def ticked(core: Units) -> list[str]:
    async with core.db.transaction() as s:
        return sorted((await s.execute(select(ChecklistTick.item_key))).scalars())


async def test_items_tick_only_from_when_they_can_have_been_done(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    booking_id = await make_booking(bot)  # Tue 1 Dec, 10:00-10:20; booked on Mon 30 Nov
    # The day before the call nothing can be ticked, and the answer says from when.
    said = await tick(bot, booking_id, "waiting_room")
    assert "Too early" in said and "from Tue 1 Dec 09:45, 15 minutes before the call" in said
    said = await tick(bot, booking_id, "lock_meeting", who=COHOST)
    assert "Too early" in said and "from Tue 1 Dec 10:00, when the call starts" in said
    clock.set(at(9, 44))
    assert "Too early" in await tick(bot, booking_id, "not_bedroom")
    assert await ticked(school) == []

    clock.set(at(9, 45))  # the checklist goes out now: before and environment checks open
    assert "☑ Waiting room switched on" in await tick(bot, booking_id, "waiting_room")
    assert "☑ Device set up" in await tick(bot, booking_id, "not_bedroom")
    said = await tick(bot, booking_id, "no_screen_share")
    assert "Too early" in said and "10:00, when the call starts" in said
    clock.set(at(9, 59))
    assert "Too early" in await tick(bot, booking_id, "no_screen_share")

    clock.set(at(10))  # the call starts: start-of-call checks open
    assert "☑ Participants cannot share" in await tick(bot, booking_id, "no_screen_share")
    clock.set(at(10, 20))  # the call is over: nothing more can be ticked
    said = await tick(bot, booking_id, "lock_meeting")
    assert f"Call #{booking_id} has ended" in said
    assert await ticked(school) == ["no_screen_share", "not_bedroom", "waiting_room"]


async def test_too_early_click_is_a_plain_private_answer(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    booking_id = await make_booking(bot)
    [answer] = await bot.handle(action(HOST, "checklist.tick", f"{booking_id}:video_on"))
    assert isinstance(answer, Ephemeral)  # the checklist message itself is left as it was
    assert answer.message.buttons() == []


async def test_when_checks_open_follows_the_policy(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    booking_id = await make_booking(bot)
    school.policy = replace(school.policy, checklist_lead_minutes=45)
    clock.set(at(9, 14))
    assert "from Tue 1 Dec 09:15, 45 minutes before the call" in await tick(
        bot, booking_id, "video_on"
    )
    clock.set(at(9, 15))
    assert "☑ Video switched on" in await tick(bot, booking_id, "video_on")


async def test_checklist_says_from_when_its_stages_can_be_ticked(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    await make_booking(bot)
    await sweep_at(school, clock, at(9, 45), dispatcher)
    [sent] = containing(messenger.to(HOST), "Safety checklist")
    sections = [b.text for b in sent.blocks if b.kind == "section"]  # type: ignore[union-attr]
    [start] = [t for t in sections if t.startswith("**When you start the meeting**")]
    assert "(tick these from Tue 1 Dec 10:00)" in start
    [before] = [t for t in sections if t.startswith("**Before the call**")]
    assert "tick these from" not in before


async def test_unticked_checks_go_to_slt_a_few_minutes_into_the_call(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    booking_id = await make_booking(bot)
    p = school.policy
    clock.set(at(9, 50))
    for item in p.checklist:
        if item.stage != "start":
            await tick(bot, booking_id, item.key)
    clock.set(at(10, 1))
    await tick(bot, booking_id, "no_screen_share")
    missing = [i for i in p.checklist_stage("start") if i.key != "no_screen_share"]

    def slt() -> list[Message]:
        return containing(messenger.to("slt"), "not ticked")

    await sweep_at(school, clock, at(10), dispatcher)
    [flag] = containing(messenger.to(HOST), "Your call is starting")  # the host first
    await sweep_at(school, clock, at(10, 4), dispatcher)
    assert slt() == []
    await sweep_at(school, clock, at(10, 5), dispatcher)
    await sweep_at(school, clock, at(10, 6), dispatcher)
    await sweep_at(school, clock, at(10, 30), dispatcher)
    [report] = slt()  # then SLT, once
    body = str(report.to_json())
    assert f"{len(missing)} safety checks still not ticked 5 minutes into the call" in report.text
    assert all(i.label in body for i in missing)
    assert "Participants cannot share" not in body and "Waiting room" not in body
    assert "Tess Teacher" in body and "ST" in body and "Taylor" not in body  # initials only
    [told] = containing(messenger.to(HOST), "SLT have been told")
    assert [b.action_id for b in told.buttons()] == ["checklist.open"]
    async with school.db.transaction() as s:
        [row] = (
            await s.execute(
                select(AuditEvent).where(AuditEvent.action == "checklist.unticked_reported")
            )
        ).scalars()
    assert row.subject_id == str(booking_id)
    assert row.detail == {"missing": [i.key for i in missing]}


async def test_slt_escalation_time_from_policy_and_not_when_all_ticked(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    dispatcher: Dispatcher,
    messenger: RecordingMessenger,
) -> None:
    first = await make_booking(bot)
    school.policy = replace(school.policy, checklist_slt_after_minutes=10)
    await sweep_at(school, clock, at(10, 9), dispatcher)
    assert containing(messenger.to("slt"), "not ticked") == []
    await sweep_at(school, clock, at(10, 10), dispatcher)
    assert len(containing(messenger.to("slt"), "10 minutes into the call")) == 1

    # A call whose checks were all ticked in time is not reported.
    second = await make_booking(bot, date="2026-12-08")
    start = at(10, days=7)
    clock.set(start - timedelta(minutes=10))
    for item in school.policy.checklist:
        if item.stage != "start":
            await tick(bot, second, item.key)
    clock.set(start)
    for item in school.policy.checklist_stage("start"):
        await tick(bot, second, item.key)
    await sweep_at(school, clock, start + timedelta(minutes=30), dispatcher)
    assert len(containing(messenger.to("slt"), "not ticked")) == 1
    assert first != second


async def test_checklist_has_the_items_the_policy_implies(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    p = default_policy()
    stages = {i.key: i.stage for i in p.checklist}
    assert stages["school_account"] == "before"  # school accounts only, never personal ones
    assert stages["code_of_conduct"] == "before"  # the Employee Code of Conduct
    assert stages["adult_nearby"] == "start"  # an adult present at home, no headphones
    assert p.contacts.code_of_conduct_url is None  # the school sets its own link

    booking_id = await make_booking(bot)
    clock.set(at(9, 50))
    [shown] = await bot.handle(action(HOST, "checklist.open", str(booking_id)))
    text = str(shown)
    assert "school account" in text and "Code of Conduct" in text and "headphones" in text
    assert "read it at" not in text  # no link until the policy file gives one
    buttons = {b.value for b in shown.message.buttons()}  # type: ignore[union-attr]
    assert {f"{booking_id}:school_account", f"{booking_id}:code_of_conduct"} <= buttons


async def test_code_of_conduct_link_comes_from_the_policy_file(
    school: Units, bot: Bot, clock: FixedClock
) -> None:
    url = "https://www.ashlea.example.sch.uk/policies/staff_code*of*conduct"
    school.policy = policy_from_toml(f'[contacts]\ncode_of_conduct_url = "{url}"\n')
    booking_id = await make_booking(bot)
    clock.set(at(9, 50))
    [shown] = await bot.handle(action(HOST, "checklist.open", str(booking_id)))
    [section] = [
        b.text  # type: ignore[union-attr]
        for b in shown.message.blocks  # type: ignore[union-attr]
        if b.kind == "section" and "Code of Conduct" in b.text  # type: ignore[union-attr]
    ]
    # Shown on the item's own line, and through esc() like any text in markup.
    [line] = [x for x in section.splitlines() if "Code of Conduct" in x]
    assert line.endswith(" · read it at " + url.replace("*", "\\*"))


@pytest.mark.parametrize(
    "value", ['"not a link"', '"javascript:alert(1)"', '"https://x.test/a b"', "42"]
)
def test_code_of_conduct_link_must_be_a_web_address(value: str) -> None:
    with pytest.raises(PolicyError) as err:
        policy_from_toml(f"[contacts]\ncode_of_conduct_url = {value}\n", "school.toml")
    assert "school.toml: [contacts] code_of_conduct_url" in str(err.value)
    assert "web address" in str(err.value) or "expected text" in str(err.value)
