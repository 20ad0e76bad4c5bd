"""Slack over Socket Mode (SLACK_APP_TOKEN, no public URL): the real server connects to the
loopback Slack API's websocket and gets the same commands and submissions as envelopes, with
the same answers as over HTTP, acknowledged on the socket; envelopes not shaped as Slack
sends them are acknowledged and dropped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from adapters.server import Runtime, build_app, runtime_for
from chatbot.config import Settings
from chatbot.storage.models import Booking
from chatbot.uow import Units
from tests.adapters.test_slack_booking import GOOD
from tests.adapters.test_slack_render import check_call
from tests.adapters.test_slack_support import BOTS, TEAM, USERS, payload, submission
from tests.conftest import no_traceback, snapshot
from tests.doubles.slack_api import FakeSlackAPI

APP_TOKEN = "xapp-1-A0VIDEO-socket"


@pytest.fixture
async def socket(school: Units) -> AsyncIterator[tuple[FakeSlackAPI, Runtime]]:
    api = FakeSlackAPI(users=dict(USERS), bots=set(BOTS), team_id=TEAM, app_token=APP_TOKEN)
    await api.start()
    settings = Settings(
        slack_bot_token=api.token,
        slack_app_token=APP_TOKEN,  # and no signing secret: Socket Mode only
        slack_api_url=api.api_url,
        slack_dsl_channel="C0DSL",
        slack_slt_channel="C0SLT",
    )
    runtime = runtime_for(school, settings)
    runner = web.AppRunner(build_app(runtime, with_scheduler=False), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await api.connected()
        yield api, runtime
        for call in api.calls:
            check_call(call.method, call.body)
    finally:
        await runner.cleanup()
        await api.stop()


def command(user: str, name: str, trigger: str) -> dict[str, Any]:
    fields = payload("command_book_call.json")
    fields.update(user_id=user, command=name, trigger_id=trigger, response_url="")
    return fields


async def bookings(core: Units) -> int:
    async with core.db.reading() as s:
        return int((await s.execute(select(func.count(Booking.id)))).scalar_one())


async def test_booking_over_socket_mode(socket: tuple[FakeSlackAPI, Runtime]) -> None:
    api, runtime = socket
    [opened] = [c for c in api.calls if c.method == "apps.connections.open"]
    assert opened.token == APP_TOKEN

    ack = await api.envelope("slash_commands", command("U0TEACHER", "/book-call", "t1.1"))
    assert ack["envelope_id"] and not ack.get("payload")  # empty ack; the modal is opened
    for _ in range(100):
        if api.called("views.open"):
            break
        await asyncio.sleep(0.02)
    [views_open] = api.called("views.open")
    assert views_open["trigger_id"] == "t1.1"
    view = views_open["view"]
    assert view["callback_id"] == "book_call"

    refused = {**GOOD, "pupils": ["C123456789012"]}  # Noah: no written consent on file
    ack = await api.envelope("interactive", submission("U0TEACHER", view, refused, "t1.2"))
    assert ack["payload"]["response_action"] == "errors"
    assert "consent" in ack["payload"]["errors"]["pupils"].lower()
    assert await bookings(runtime.units) == 0

    good = submission("U0TEACHER", view, GOOD, "t1.3")
    ack = await api.envelope("interactive", good)
    assert not (ack.get("payload") or {}).get("response_action"), ack  # closes the modal
    assert await bookings(runtime.units) == 1

    # Slack redelivers an envelope it thinks was not acknowledged: processed once.
    again = await api.envelope("interactive", good, retry_attempt=1)
    assert not (again.get("payload") or {}).get("errors")
    assert await bookings(runtime.units) == 1

    report = await runtime.dispatcher.drain()
    assert report.delivered == 1  # the co-host request, sent over the Web API as usual
    [request] = [b for b in api.called("chat.postMessage") if b.get("channel") == "U0COLLEAG"]
    assert "co-host" in request["text"].lower()


async def test_someone_off_the_roster_is_told_over_socket_mode(
    socket: tuple[FakeSlackAPI, Runtime],
) -> None:
    api, runtime = socket
    ack = await api.envelope("slash_commands", command("U0STRANGE", "/book-call", "t2.1"))
    # Answered in the acknowledgement itself, as an ephemeral reply.
    assert ack["payload"]["response_type"] == "ephemeral"
    assert "not on the school's staff roster" in ack["payload"]["text"]
    assert api.called("views.open") == []
    assert await bookings(runtime.units) == 0


def _wrong_shapes() -> list[tuple[str, Any]]:
    click = payload("block_actions_cohost_accept.json")
    view = payload("view_submission_book_call.json")
    values = view["view"]["state"]["values"]
    return [
        ("interactive", {**click, "user": ["U0TEACHER"]}),
        ("interactive", {**click, "actions": {"action_id": "cohost.accept#0"}}),
        ("interactive", {**view, "view": {**view["view"], "state": {"values": []}}}),
        (
            "interactive",
            {
                **view,
                "view": {
                    **view["view"],
                    "state": {
                        "values": {
                            **values,
                            "plan": {"plan": {"type": "plain_text_input", "value": "a \ud800 b"}},
                        }
                    },
                },
            },
        ),
        ("slash_commands", {**command("U0TEACHER", "/book-call", "t3.1"), "text": ["x"]}),
        ("events_api", {**payload("event_app_home_opened.json"), "event": "app_home_opened"}),
        ("interactive", []),  # not even an object
        ("interactive", "a string"),
    ]


async def test_envelopes_of_the_wrong_shape_are_acknowledged_and_change_nothing(
    socket: tuple[FakeSlackAPI, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    """The same check as POST /slack/events: acknowledged (so Slack does not send it again),
    then dropped: no traceback, no Web API call, no row changed."""
    api, runtime = socket
    before = await snapshot(runtime.units.db)
    calls = len(api.calls)
    with caplog.at_level(logging.INFO):
        for kind, body in _wrong_shapes():
            ack = await api.envelope(kind, body)
            assert ack["envelope_id"] and not ack.get("payload"), (kind, ack)
    no_traceback(caplog)
    assert len(api.calls) == calls
    assert await snapshot(runtime.units.db) == before
