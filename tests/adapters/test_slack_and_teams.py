"""Slack and Teams configured side by side on one server (adapters.server.build_app), as a
school moving from one to the other runs it: a direct message goes to the platform the person
was last seen on, and DSL and SLT posts go to the channels on both.

Slack requests are signed with the signing secret against the loopback Web API. Teams runs
with an app id, so its activities carry tokens signed as the Bot Connector signs them, which
botbuilder checks, and the bot signs in to answer, against a stand-in for Microsoft's sign-in
services on 127.0.0.1 (tests/doubles/microsoft_login.py); everything is the real code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from adapters.server import build_app, runtime_for
from adapters.slack import SLACK
from chatbot.concerns.records import note_deliveries
from chatbot.config import Settings
from chatbot.ports import FixedClock
from chatbot.storage.models import ConcernEvent, OutboxMessage
from chatbot.uow import Units
from tests.adapters.test_slack_booking import GOOD as BOOKING
from tests.adapters.test_slack_concern import values_for
from tests.adapters.test_slack_render import check_call
from tests.adapters.test_slack_support import BOTS, SECRET, TEAM, USERS, Slack
from tests.adapters.test_teams_adapter import (
    APP_ID,
    APP_PASSWORD,
    DSL_CHANNEL,
    PEOPLE,
    SLT_CHANNEL,
    TENANT,
    Teams,
)
from tests.adapters.test_teams_adapter import microsoft as _microsoft
from tests.doubles.bot_connector import LoopbackConnector
from tests.doubles.microsoft_login import MicrosoftLogin
from tests.doubles.slack_api import FakeSlackAPI

COHOST = "colleague@school.test"
HOST = "teacher@school.test"


microsoft = _microsoft  # Microsoft's sign-in services for APP_ID, on 127.0.0.1


async def outbox(core: Units, *where: Any) -> list[OutboxMessage]:
    async with core.db.reading() as s:
        q = select(OutboxMessage).where(*where).order_by(OutboxMessage.id)
        return list((await s.execute(q)).scalars())


@dataclass
class Both:
    url: str
    slack: Slack
    teams: Teams

    async def drain(self) -> None:
        await self.slack.runtime.dispatcher.drain()


@pytest.fixture
async def both(school: Units, microsoft: MicrosoftLogin) -> AsyncIterator[Both]:
    api = FakeSlackAPI(users=dict(USERS), bots=set(BOTS), team_id=TEAM)
    await api.start()
    connector = LoopbackConnector()
    for email, (pid, aad, _chat) in PEOPLE.items():
        connector.add_member(pid, aad, email)
    await connector.start()
    settings = Settings(
        slack_bot_token=api.token,
        slack_signing_secret=SECRET,
        slack_api_url=api.api_url,
        slack_dsl_channel="C0DSL",
        slack_slt_channel="C0SLT",
        teams_app_id=APP_ID,
        teams_app_password=APP_PASSWORD,
        teams_tenant_id=TENANT,
        teams_dsl_channel=DSL_CHANNEL,
        teams_slt_channel=SLT_CHANNEL,
        teams_service_url_hosts=("127.0.0.1",),
        **microsoft.settings(),
    )
    runtime = runtime_for(school, settings)
    app = build_app(runtime, with_scheduler=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with aiohttp.ClientSession() as session:
        slack = Slack(url, api, runtime, app[SLACK], session)
        teams = Teams(runtime, connector, url + "/api/messages", runner, session, login=microsoft)
        try:
            yield Both(url, slack, teams)
            for call in api.calls:
                check_call(call.method, call.body)
            teams.validate_cards()
        finally:
            await runner.cleanup()
            await connector.stop()
            await api.stop()


async def test_each_person_reached_where_last_seen_and_channels_on_both(
    both: Both, school: Units, clock: FixedClock, microsoft: MicrosoftLogin
) -> None:
    slack, teams, api = both.slack, both.teams, both.slack.api
    async with slack.session.get(both.url + "/healthz") as r:
        assert (await r.json())["messaging"] == ["slack", "teams"]
    for channel in (DSL_CHANNEL, SLT_CHANNEL):
        assert await teams.add_to_channel(channel) == 201

    # The co-host used the bot on Slack last week and has since installed it on Teams.
    clock.advance(days=-7)
    status, _, _ = await slack.command("U0COLLEAG", "/my-calls")
    assert status == 200
    clock.advance(days=7)
    assert await teams.install(COHOST) == 201

    # The host books on Slack, naming the co-host. With Teams in use too, the co-host picker
    # searches the school's roster (the co-host might not be in the Slack workspace).
    view = await slack.open_form("U0TEACHER", "/book-call")
    [picker] = [b["element"] for b in view["blocks"] if b.get("block_id") == "cohost"]
    assert picker["type"] == "external_select" and picker["action_id"] == "staff"
    status, found = await slack.suggest("U0TEACHER", "staff", "coll", block_id="cohost")
    assert status == 200 and [o["value"] for o in found["options"]] == [COHOST]
    status, body = await slack.submit("U0TEACHER", view, dict(BOOKING, cohost=COHOST))
    assert status == 200 and body is None, body
    await both.drain()
    [request] = [c for c in teams.to(COHOST) if "cohost.accept" in c.text]
    assert slack.posts_to("U0COLLEAG") == []
    [row] = await outbox(school, OutboxMessage.kind == "staff")
    assert (row.platform, row.attempts) == ("teams", 0)  # Teams first, not as a fallback

    # The co-host accepts on Teams: the host hears on Slack, SLT on both platforms.
    status = await teams.click(COHOST, request, "cohost.accept", activity_id=request.activity_id)
    assert status == 201
    await both.drain()
    assert any("confirmed" in p["text"].lower() for p in slack.posts_to("U0TEACHER"))
    assert teams.to(HOST) == []
    assert len(slack.posts_to("C0SLT")) == 1 and len(teams.connector.sent(SLT_CHANNEL)) == 1
    assert request.activity_id in [u.activity_id for u in teams.connector.updates()]

    # A concern filed on Slack alerts the DSL channel on both platforms, once each.
    view = await slack.open_form("U0TEACHER", "/concern")
    status, body = await slack.submit("U0TEACHER", view, values_for(view))
    assert status == 200 and body is None, body
    await both.drain()
    await both.drain()
    [on_slack] = slack.posts_to("C0DSL")
    [on_teams] = teams.connector.sent(DSL_CHANNEL)
    assert "C-2026-0001" in on_slack["text"] and "C-2026-0001" in on_teams.text
    dsl_rows = await outbox(school, OutboxMessage.role == "dsl")
    assert [r.platform for r in dsl_rows] == ["slack", "teams"]
    assert all(r.delivered_at is not None for r in dsl_rows)
    [dsl_post] = [
        c for c in api.calls if c.method == "chat.postMessage" and c.body["channel"] == "C0DSL"
    ]
    assert dsl_post.outbox_id == dsl_rows[0].id  # Slack carries the outbox id in metadata

    # The concern's chronology says where each copy of the alert was delivered.
    await note_deliveries(school)
    async with school.db.reading() as s:
        details = (
            await s.execute(select(ConcernEvent.detail).where(ConcernEvent.kind == "delivered"))
        ).scalars()
        assert {"DSL channel on Slack", "DSL channel on Teams"} <= set(details)

    # Teams' activities got in on the Bot Connector's tokens; the bot signed in once, with its
    # app id and secret, and every call it made to the Bot Connector carried that token.
    [token] = microsoft.issued
    assert teams.connector.authorizations == [f"Bearer {token}"] * len(teams.connector.requests)
    [asked] = microsoft.token_requests()
    assert (asked["client_id"], asked["client_secret"]) == (APP_ID, APP_PASSWORD)
