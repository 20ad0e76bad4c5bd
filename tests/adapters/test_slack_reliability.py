"""Slack security and reliability over HTTP: signatures (401, nothing processed), retried
deliveries processed once, repeated clicks, 429/5xx from the Web API recovered through the
outbox, unreachable role channels escalated, and start-up without Slack settings."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from adapters.server import build_app, runtime_for
from adapters.slack.messenger import SlackMessenger, web_client
from chatbot.config import Settings
from chatbot.ports import ChannelUnavailable, DeliveryError, FixedClock, StaffAddress
from chatbot.storage.models import Booking, OutboxMessage, ProcessedDelivery
from chatbot.ui import Message, Section
from chatbot.uow import Units
from tests.adapters.test_slack_booking import GOOD, book
from tests.adapters.test_slack_render import check_call
from tests.adapters.test_slack_support import Slack, payload, running, state_for
from tests.doubles.slack_api import FORM, JSON, FakeSlackAPI, interactive_body, signed_headers


@pytest.fixture
async def slack(school: Units) -> AsyncIterator[Slack]:
    async with running(school) as s:
        yield s
        for call in s.api.calls:
            check_call(call.method, call.body)


async def count(core: Units, model: Any) -> int:
    async with core.db.transaction() as s:
        return int((await s.execute(select(func.count(model.id)))).scalar_one())


async def pending(core: Units) -> list[OutboxMessage]:
    async with core.db.transaction() as s:
        return list(
            (
                await s.execute(select(OutboxMessage).where(OutboxMessage.delivered_at.is_(None)))
            ).scalars()
        )


async def booked_and_requested(slack: Slack) -> dict[str, Any]:
    status, body = await book(slack)
    assert body is None, body
    await slack.runtime.dispatcher.drain()
    [request] = slack.posts_to("U0COLLEAG")
    return request


# ----- signatures -----


def _submission(slack: Slack) -> str:
    from adapters.slack.blocks import form_view
    from chatbot.bookings.forms import booking_form

    view = form_view(booking_form(slack.runtime.units.policy))
    p = payload("view_submission_book_call.json")
    p["view"] = {**p["view"], **view, "state": state_for(view, {**GOOD, "cohost": "U0COLLEAG"})}
    return interactive_body(p)


@pytest.mark.parametrize("case", ["wrong_secret", "tampered_body", "missing", "stale", "future"])
async def test_bad_signatures_get_401_and_nothing_is_processed(slack: Slack, case: str) -> None:
    body = _submission(slack)
    now = int(time.time())
    if case == "wrong_secret":
        headers = signed_headers("not-the-secret", body, FORM)
    elif case == "tampered_body":
        headers = signed_headers(slack.secret, body, FORM)
        body = body.replace("reading", "secret")
    elif case == "missing":
        headers = {"Content-Type": FORM}
    elif case == "stale":
        headers = signed_headers(slack.secret, body, FORM, timestamp=now - 6 * 60)
    else:
        headers = signed_headers(slack.secret, body, FORM, timestamp=now + 6 * 60)
    status, _ = await slack.post(body, FORM, headers=headers)
    assert status == 401
    core = slack.runtime.units
    assert await count(core, Booking) == 0
    assert await count(core, ProcessedDelivery) == 0
    assert slack.api.calls == []  # not even auth.test or users.info


async def test_signed_request_is_accepted_and_url_verification_answered(slack: Slack) -> None:
    status, body = await slack.post(_submission(slack), FORM)
    assert status == 200 and body is None
    assert await count(slack.runtime.units, Booking) == 1
    status, body = await slack.event(payload("url_verification.json"))
    assert status == 200 and body == {"challenge": payload("url_verification.json")["challenge"]}


# ----- retried deliveries and repeated clicks -----


async def test_retried_click_is_processed_once(slack: Slack) -> None:
    request = await booked_and_requested(slack)
    args = ("U0COLLEAG", request, "cohost.accept", request["_channel"], request["_ts"])
    status, _, first = await slack.click(*args)
    assert status == 200
    # Slack (or a proxy) delivers the very same request again.
    status, _, _ = await slack.click(*args, trigger_id=first["trigger_id"], retry_num=1)
    assert status == 200
    assert len(slack.api.called("chat.update")) == 1
    assert len(slack.api.responses) == 1
    await slack.runtime.dispatcher.drain()
    assert len(slack.posts_to("C0SLT")) == 1


async def test_repeated_click_changes_nothing(slack: Slack) -> None:
    request = await booked_and_requested(slack)
    args = ("U0COLLEAG", request, "cohost.accept", request["_channel"], request["_ts"])
    await slack.click(*args)
    await slack.click(*args)  # a second click, new trigger id, on the stale copy
    await slack.runtime.dispatcher.drain()
    assert len(slack.posts_to("C0SLT")) == 1
    assert len([m for m in slack.posts_to("U0TEACHER") if "accepted" in m["text"]]) == 1
    assert "already" in slack.api.responses[-1]["text"].lower()


async def test_retried_event_is_processed_once(slack: Slack) -> None:
    event = payload("event_app_home_opened.json")
    assert (await slack.event(event))[0] == 200
    assert (await slack.event(event, retry_num=1))[0] == 200
    assert (await slack.event(event, retry_num=2))[0] == 200
    assert len(slack.api.called("views.publish")) == 1


async def test_retried_submission_books_once(slack: Slack) -> None:
    view = await slack.open_form("U0TEACHER", "/book-call")
    trigger = slack.trigger()
    assert (await slack.submit("U0TEACHER", view, GOOD, trigger_id=trigger))[1] is None
    status, body = await slack.submit("U0TEACHER", view, GOOD, trigger_id=trigger, retry_num=1)
    assert status == 200 and body is None
    assert await count(slack.runtime.units, Booking) == 1
    assert len(slack.posts_to("U0TEACHER")) == 1


# ----- Web API failures: the outbox retries, nothing is lost -----


async def test_429_retry_after_is_honoured(slack: Slack, clock: FixedClock) -> None:
    await book(slack)
    slack.api.fail_next(1, status=429, retry_after=42, methods=("chat.postMessage",))
    report = await slack.runtime.dispatcher.drain()
    assert report.failed == 1 and report.delivered == 0
    [row] = await pending(slack.runtime.units)
    assert row.last_error == "rate_limited"
    due = row.due_at if row.due_at.tzinfo else row.due_at.replace(tzinfo=clock.now().tzinfo)
    assert (due - clock.now()).total_seconds() == pytest.approx(42)
    clock.advance(seconds=41)
    assert (await slack.runtime.dispatcher.drain()).delivered == 0  # still waiting
    clock.advance(seconds=1)
    assert (await slack.runtime.dispatcher.drain()).delivered == 1
    assert len(slack.posts_to("U0COLLEAG")) == 1
    assert await pending(slack.runtime.units) == []


async def test_5xx_is_retried_without_loss(slack: Slack, clock: FixedClock) -> None:
    request = await booked_and_requested(slack)
    await slack.click("U0COLLEAG", request, "cohost.accept", request["_channel"], request["_ts"])
    slack.api.fail_next(4, status=503)
    first = await slack.runtime.dispatcher.drain()
    assert first.failed >= 1
    assert {r.last_error for r in await pending(slack.runtime.units)} == {"http_503"}
    for _ in range(4):
        clock.advance(seconds=900)
        await slack.runtime.dispatcher.drain()
    assert await pending(slack.runtime.units) == []
    assert len(slack.posts_to("C0SLT")) == 1
    assert len([m for m in slack.posts_to("U0TEACHER") if "accepted" in m["text"]]) == 1


async def test_unreachable_dsl_or_slt_channel_goes_to_people(
    slack: Slack, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    slack.api.missing_channels.add("C0SLT")
    request = await booked_and_requested(slack)
    await slack.click("U0COLLEAG", request, "cohost.accept", request["_channel"], request["_ts"])
    with caplog.at_level(logging.ERROR):
        await slack.runtime.dispatcher.drain()
        clock.advance(seconds=1)
        await slack.runtime.dispatcher.drain()
    assert "UNREACHABLE" in caplog.text
    assert len(slack.posts_to("U0SLT")) == 1 and len(slack.posts_to("U0HEAD")) == 1
    slack.api.missing_channels.clear()
    clock.advance(seconds=900)
    await slack.runtime.dispatcher.drain()
    assert len(slack.posts_to("C0SLT")) == 1  # the channel still gets it once fixed


async def test_messenger_error_mapping() -> None:
    api = FakeSlackAPI(users={"U1": "a@school.test"})
    await api.start()
    try:
        settings = Settings(
            slack_bot_token=api.token, slack_api_url=api.api_url, slack_dsl_channel="C0DSL"
        )
        m = SlackMessenger(web_client(settings), settings)
        msg = Message("hello", (Section("hello"),))
        with pytest.raises(ChannelUnavailable) as e:
            await m.post_to_role("slt", msg)
        assert e.value.kind == "channel_not_configured"
        for code in ("channel_not_found", "not_in_channel", "is_archived"):
            api.fail_next(1, status=200, error=code)
            with pytest.raises(ChannelUnavailable) as e:
                await m.post_to_role("dsl", msg)
            assert e.value.kind == code
        api.fail_next(1, status=429, retry_after=9)
        with pytest.raises(DeliveryError) as d:
            await m.post_to_role("dsl", msg)
        assert (d.value.kind, d.value.retry_after) == ("rate_limited", 9.0)
        api.fail_next(1, status=500)
        with pytest.raises(DeliveryError) as d:
            await m.update("C0DSL:1.2", msg)
        assert d.value.kind == "http_500" and not isinstance(d.value, ChannelUnavailable)
        ref = await m.post_to_role("dsl", msg)
        assert ref.startswith("C0DSL:")
        await m.update(ref, msg)
        assert [c.method for c in api.calls][-2:] == ["chat.postMessage", "chat.update"]
        assert all(c.token == api.token for c in api.calls)
    finally:
        await api.stop()
    # Network failure: the API is gone.
    with pytest.raises(DeliveryError) as d:
        await m.post_to_role("dsl", msg)
    assert d.value.kind.startswith("network")


# ----- configuration -----


async def _serve(core: Units, settings: Settings) -> tuple[web.AppRunner, str, Any]:
    runtime = runtime_for(core, settings)
    runner = web.AppRunner(build_app(runtime, with_scheduler=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}", runtime


async def test_without_slack_settings_server_starts_and_explains(
    school: Units, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="chatbot.slack"):
        runner, url, runtime = await _serve(school, Settings())
    try:
        assert "SLACK_SIGNING_SECRET" in caplog.text and "SLACK_BOT_TOKEN" in caplog.text
        assert runtime.dispatcher.platforms == []
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/healthz") as r:
                assert r.status == 200
            async with s.post(url + "/slack/events", data="x") as r:
                assert r.status == 503
                assert (await r.json())["error"] == "slack_not_configured"
    finally:
        await runner.cleanup()


async def test_socket_mode_starts_with_app_token(
    school: Units, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeSlackAPI()
    await api.start()
    try:
        settings = Settings(
            slack_bot_token=api.token, slack_app_token="xapp-1-test", slack_api_url=api.api_url
        )
        with caplog.at_level(logging.INFO, logger="chatbot.slack"):
            runner, url, runtime = await _serve(school, settings)
        try:
            assert runtime.dispatcher.platforms == ["slack"]
            for _ in range(100):  # Socket Mode connects in the background
                if any(c.method == "apps.connections.open" for c in api.calls):
                    break
                await asyncio.sleep(0.02)
            [conn, *_] = [c for c in api.calls if c.method == "apps.connections.open"]
            assert conn.token == "xapp-1-test"  # Socket Mode asked Slack for a websocket
            assert "Socket Mode" in caplog.text
            async with aiohttp.ClientSession() as s:  # no signing secret: no HTTP endpoint
                body = '{"type":"url_verification","challenge":"x"}'
                async with s.post(
                    url + "/slack/events", data=body, headers=signed_headers("", body, JSON)
                ) as r:
                    assert r.status == 503
        finally:
            await runner.cleanup()
    finally:
        await api.stop()


# ----- Slack directory look-ups are remembered -----


async def test_directory_lookups_are_remembered(slack: Slack) -> None:
    """Two bookings naming the same co-host ask users.info once; two deliveries to the same
    colleague look their Slack id up once."""
    await book(slack)
    await book(slack, {**GOOD, "pupils": ["B123456789012"], "start": "11:00"})
    assert await count(slack.runtime.units, Booking) == 2
    assert slack.api.called("users.info").count({"user": "U0COLLEAG"}) == 1
    await slack.runtime.dispatcher.drain()
    assert len(slack.posts_to("U0COLLEAG")) == 2  # both co-host requests delivered
    assert slack.api.called("users.lookupByEmail") == [{"email": "colleague@school.test"}]


async def test_a_failed_delivery_forgets_the_looked_up_id() -> None:
    api = FakeSlackAPI(users={"U1": "a@school.test"})
    await api.start()
    try:
        settings = Settings(slack_bot_token=api.token, slack_api_url=api.api_url)
        m = SlackMessenger(web_client(settings), settings)
        to = StaffAddress(
            staff_id=1, email="A@school.test", display_name="A", platform_user_id=None
        )
        msg = Message("hello", (Section("hello"),))
        await m.send_to_staff(to, msg)
        await m.send_to_staff(to, msg)
        assert len(api.called("users.lookupByEmail")) == 1  # remembered
        api.fail_next(1, status=200, error="user_not_found", methods=("chat.postMessage",))
        with pytest.raises(DeliveryError):
            await m.send_to_staff(to, msg)
        await m.send_to_staff(to, msg)  # the retry looks them up again
        assert len(api.called("users.lookupByEmail")) == 2
    finally:
        await api.stop()


async def test_ttl_cache_expires() -> None:
    from adapters.slack.messenger import TTLCache

    cache: TTLCache[str, str] = TTLCache(0.05, size=2)
    cache.put("a", "1")
    assert cache.get("a") == "1"
    await asyncio.sleep(0.06)
    assert cache.get("a") is None
    cache.put("a", "1")
    cache.put("b", "2")
    cache.put("c", "3")  # over size: emptied first, so memory stays bounded
    assert (cache.get("a"), cache.get("c")) == (None, "3")
