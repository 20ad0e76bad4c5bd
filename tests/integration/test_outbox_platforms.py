"""The outbox with Slack and Teams configured together, and its claims: direct messages go
where the person was last seen (the other platform is the fallback), channel posts go to every
platform and are retried on each alone, updates edit each copy where it was delivered, and a
batch's claim is renewed while it is sent but freed soon after its replica dies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from chatbot.interaction import UserRef
from chatbot.outbox import LEASE_SECONDS, Dispatcher
from chatbot.ports import FixedClock, StaffAddress
from chatbot.roster.identity import remember
from chatbot.router import Bot
from chatbot.storage.models import OutboxMessage
from chatbot.ui import Message
from chatbot.uow import Units
from tests.conftest import COHOST, HOST, action
from tests.fakes import RecordingMessenger
from tests.integration.test_outbox import make_booking, rows
from tests.unit.test_concern_support import concerns, file_concern

SLT_PEOPLE = ("slt@school.test", "head@school.test")


@pytest.fixture
def slack() -> RecordingMessenger:
    return RecordingMessenger(platform="slack")


@pytest.fixture
def teams() -> RecordingMessenger:
    return RecordingMessenger(platform="teams")


@pytest.fixture
def both(
    school: Units, clock: FixedClock, slack: RecordingMessenger, teams: RecordingMessenger
) -> Dispatcher:
    return Dispatcher(school.db, clock, slack, teams)


async def seen(core: Units, email: str, platform: str, user_id: str, at: datetime) -> None:
    """``email`` used the bot on ``platform`` at ``at`` (as the adapters record it)."""
    async with core.db.transaction() as s:
        await remember(s, UserRef(platform, user_id, email=email), email, at)  # type: ignore[arg-type]


async def role_rows(core: Units) -> list[OutboxMessage]:
    return [r for r in await rows(core.db) if r.kind == "role"]


async def accepted_booking(bot: Bot) -> None:
    """A confirmed call: the SLT channel is told."""
    booking_id = await make_booking(bot)
    await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))


# ----- direct messages -----


async def test_direct_message_goes_where_the_person_was_last_seen(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    slack: RecordingMessenger,
    teams: RecordingMessenger,
    both: Dispatcher,
) -> None:
    earlier = clock.now() - timedelta(days=30)
    await seen(school, COHOST, "slack", "U0COLLEAG", earlier)
    await seen(school, COHOST, "teams", "aad-colleague", earlier + timedelta(days=1))
    await seen(school, HOST, "teams", "aad-teacher", earlier)
    await seen(school, HOST, "slack", "U0TEACHER", earlier + timedelta(days=1))

    booking_id = await make_booking(bot)
    await both.drain()
    [request] = [s for s in teams.sent if s.to == COHOST]
    assert request.user_id == "aad-colleague" and slack.sent == []
    [row] = await rows(school.db)
    assert row.platform == "teams" and request.outbox_id == row.id

    # The co-host answers (the console is not a configured platform, so it does not count).
    await bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    await both.drain()
    [confirmation] = [s for s in slack.sent if s.to == HOST]
    assert confirmation.user_id == "U0TEACHER" and teams.to(HOST) == []
    # The request is edited where it was delivered, and only there.
    assert teams.updates() == [request.ref] and slack.updates() == []


async def test_direct_message_falls_back_to_the_other_platform(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    slack: RecordingMessenger,
    teams: RecordingMessenger,
    both: Dispatcher,
) -> None:
    await seen(school, COHOST, "teams", "aad-colleague", clock.now() - timedelta(days=1))
    await make_booking(bot)
    teams.down, teams.retry_after = True, 30
    slack.down = True
    await both.drain()
    [row] = await rows(school.db)
    assert row.delivered_at is None and row.attempts == 1
    assert row.last_error == "teams: platform_down; slack: platform_down"
    assert row.due_at == clock.now() + timedelta(seconds=30)  # Teams asked for 30 s

    slack.down = False
    clock.advance(seconds=30)
    await both.drain()
    [request] = slack.sent
    assert request.to == COHOST and request.user_id is None  # Slack finds them by email
    [row] = await rows(school.db)
    assert row.platform == "slack" and row.delivered_at == clock.now() and row.last_error is None
    assert teams.sent == []


# ----- channel posts -----


async def test_channel_posts_reach_every_platform_each_retried_alone(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    slack: RecordingMessenger,
    teams: RecordingMessenger,
    both: Dispatcher,
) -> None:
    await accepted_booking(bot)
    teams.down = True
    await both.drain()
    assert len(slack.to("slt")) == 1 and teams.to("slt") == []
    original, copy = await role_rows(school)
    assert (original.platform, original.origin_id) == ("slack", None)
    assert original.delivered_at is not None
    assert (copy.platform, copy.origin_id) == ("teams", original.id)
    assert copy.delivered_at is None and copy.last_error == "platform_down"

    teams.down = False
    clock.advance(minutes=1)
    await both.drain()
    await both.drain()
    [on_slack] = [s for s in slack.sent if s.to == "slt"]
    [on_teams] = [s for s in teams.sent if s.to == "slt"]
    assert on_teams.message == on_slack.message
    assert (on_slack.outbox_id, on_teams.outbox_id) == (original.id, copy.id)
    assert all(r.delivered_at is not None for r in await role_rows(school))


async def test_updates_edit_each_copy_on_its_own_platform(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    slack: RecordingMessenger,
    teams: RecordingMessenger,
    both: Dispatcher,
) -> None:
    clock.set(clock.now().replace(hour=7))  # out of hours: the DSL and SLT channels
    await file_concern(bot, when_time="06:30")
    await both.drain()
    posted = {m.platform: [s.ref for s in m.sent if s.kind == "role"] for m in (slack, teams)}
    assert all(len(refs) == 2 for refs in posted.values())  # DSL and SLT, on both

    [c] = await concerns(school)
    await bot.handle(action("deputy@school.test", "concern.ack", str(c.id)))
    await both.drain()
    assert sorted(slack.updates()) == sorted(posted["slack"])
    assert sorted(teams.updates()) == sorted(posted["teams"])


async def test_missing_channels_on_both_platforms_message_people_once(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    slack: RecordingMessenger,
    teams: RecordingMessenger,
) -> None:
    await accepted_booking(bot)
    slack.missing_roles = teams.missing_roles = {"slt"}
    replicas = [Dispatcher(school.db, clock, slack, teams) for _ in range(2)]
    await asyncio.gather(*(d.drain() for d in replicas))

    def direct(person: str) -> int:
        return len(slack.to(person)) + len(teams.to(person))

    assert [direct(p) for p in SLT_PEOPLE] == [1, 1]
    original, copy = await role_rows(school)
    assert original.fallback_sent_at == clock.now() and copy.fallback_sent_at is None
    assert {r.last_error for r in (original, copy)} == {"channel_not_found"}

    for _ in range(3):  # still missing: retried, and nobody is messaged again
        clock.advance(minutes=20)
        await asyncio.gather(*(d.drain() for d in replicas))
    assert [direct(p) for p in SLT_PEOPLE] == [1, 1]

    slack.missing_roles = teams.missing_roles = set()
    clock.advance(minutes=20)
    await replicas[0].drain()
    assert len(slack.to("slt")) == 1 and len(teams.to("slt")) == 1


# ----- nothing configured -----


async def test_without_any_platform_rows_wait_and_the_log_says_what_to_set(
    school: Units, bot: Bot, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    await make_booking(bot)
    with caplog.at_level(logging.WARNING, logger="chatbot.outbox"):
        await Dispatcher(school.db, clock).drain()
    [row] = await rows(school.db)
    assert row.delivered_at is None and row.last_error == "no_platform_configured"
    assert "SLACK_BOT_TOKEN" in caplog.text and "MicrosoftAppId" in caplog.text

    clock.advance(minutes=1)
    late = RecordingMessenger(platform="slack")
    await Dispatcher(school.db, clock, late).drain()
    assert len(late.to(COHOST)) == 1


async def test_post_for_a_platform_no_longer_configured_waits_and_says_so(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    slack: RecordingMessenger,
    teams: RecordingMessenger,
    both: Dispatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await accepted_booking(bot)
    teams.down = True
    await both.drain()
    clock.advance(minutes=1)
    with caplog.at_level(logging.WARNING, logger="chatbot.outbox"):
        await Dispatcher(school.db, clock, slack).drain()  # restarted with Slack only
    _, copy = await role_rows(school)
    assert copy.delivered_at is None and copy.last_error == "teams_not_configured"
    assert "MicrosoftAppId" in caplog.text
    assert len(slack.to("slt")) == 1


# ----- claims -----


class SlowMessenger(RecordingMessenger):
    """Holds its first direct message until ``release`` is set (a send that takes a while)."""

    def __init__(self, platform: str = "slack"):
        super().__init__(platform=platform)
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def send_to_staff(
        self, to: StaffAddress, message: Message, *, outbox_id: int | None = None
    ) -> str:
        if not self.sending.is_set():
            self.sending.set()
            await self.release.wait()
        return await super().send_to_staff(to, message, outbox_id=outbox_id)


async def claimed_until(core: Units, row_id: int) -> datetime | None:
    async with core.db.reading() as s:
        value = (
            await s.execute(select(OutboxMessage.claimed_until).where(OutboxMessage.id == row_id))
        ).scalar_one()
    return value


async def eventually(check: Callable[[], object], what: str) -> None:
    for _ in range(500):
        if await check():  # type: ignore[misc]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_long_send_keeps_its_claim(
    school: Units, bot: Bot, clock: FixedClock, messenger: RecordingMessenger
) -> None:
    await make_booking(bot)
    [row] = await rows(school.db)
    slow = SlowMessenger()
    sender = asyncio.create_task(Dispatcher(school.db, clock, slow, renew_seconds=0.01).run_once())
    await asyncio.wait_for(slow.sending.wait(), 5)

    clock.advance(seconds=LEASE_SECONDS + 5)  # the send outlasts the first lease ...

    async def renewed() -> bool:
        until = await claimed_until(school, row.id)
        return until is not None and until > clock.now()

    await eventually(renewed, "the claim was renewed")
    # ... but it was renewed, so another replica leaves the row alone.
    assert (await Dispatcher(school.db, clock, messenger).drain()).claimed == 0
    slow.release.set()
    report = await sender
    assert report.delivered == 1
    assert len(slow.to(COHOST)) == 1 and messenger.sent == []


async def test_dead_replicas_claim_is_taken_over_after_the_lease(
    school: Units, bot: Bot, clock: FixedClock, messenger: RecordingMessenger
) -> None:
    await make_booking(bot)
    [row] = await rows(school.db)
    slow = SlowMessenger()
    sender = asyncio.create_task(Dispatcher(school.db, clock, slow, renew_seconds=0.01).run_once())
    await asyncio.wait_for(slow.sending.wait(), 5)
    sender.cancel()  # the replica dies mid-send, and its renewals with it
    with suppress(asyncio.CancelledError):
        await sender
    await asyncio.sleep(0.05)
    assert await claimed_until(school, row.id) == clock.now() + timedelta(seconds=LEASE_SECONDS)

    clock.advance(seconds=LEASE_SECONDS - 1)
    assert (await Dispatcher(school.db, clock, messenger).drain()).claimed == 0
    clock.advance(seconds=2)
    await Dispatcher(school.db, clock, messenger).drain()
    assert len(messenger.to(COHOST)) == 1
    assert slow.sent == []


async def test_replica_that_lost_its_claim_leaves_the_rest_of_its_batch(
    school: Units, bot: Bot, clock: FixedClock, messenger: RecordingMessenger
) -> None:
    await make_booking(bot)
    await file_concern(bot)
    first, second, *_ = await rows(school.db)
    slow = SlowMessenger()
    # A replica stalls on its first send for longer than the lease, without renewing it.
    stalled = Dispatcher(school.db, clock, slow, batch=2, renew_seconds=3600)
    sender = asyncio.create_task(stalled.run_once())
    await asyncio.wait_for(slow.sending.wait(), 5)
    clock.advance(seconds=LEASE_SECONDS + 1)
    await Dispatcher(school.db, clock, messenger).drain()  # another replica takes over
    slow.release.set()
    report = await sender
    # The message in flight went out twice (at least once is the promise); the row it had
    # not started on was left to the replica that now holds it.
    assert (report.claimed, report.delivered, report.failed) == (2, 1, 0)
    assert [s.outbox_id for s in slow.sent] == [first.id]
    assert [s.outbox_id for s in messenger.sent].count(second.id) == 1
