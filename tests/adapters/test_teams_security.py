"""Attacks on the Teams endpoint: a forged activity whose ``serviceUrl`` is the attacker's own
Bot Connector, the modes ``chatbot serve`` may run /api/messages in, tenants, and the allow-list
of Bot Connector hosts. Every server is the real one on 127.0.0.1; every Bot Connector (ours
and the attacker's) is a real loopback server that records each request it receives."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from botframework.connector.auth import ClaimsIdentity
from sqlalchemy import select

from adapters import server as serve
from adapters.server import build_app, runtime_for
from adapters.teams import TEAMS, teams_mode
from adapters.teams.hosts import AllowedHosts, ServiceUrlRefused
from chatbot.config import Settings
from chatbot.ports import FixedClock
from chatbot.storage.models import ConversationReference, OutboxMessage, PlatformIdentity
from chatbot.uow import Units
from tests.adapters.test_teams_adapter import (
    APP_ID,
    BOOKING,
    MONDAY_10AM,
    TENANT,
    Teams,
    payload,
    start,
    stop,
)
from tests.adapters.test_teams_adapter import connector as _connector
from tests.adapters.test_teams_adapter import microsoft as _microsoft
from tests.adapters.test_teams_adapter import teams as _teams
from tests.doubles.bot_connector import LoopbackConnector
from tests.doubles.microsoft_login import MicrosoftLogin
from tests.doubles.slack_api import FakeSlackAPI
from tests.unit.test_concern_support import NARRATIVE, audits, concerns, events, file_concern

# The Teams tests' fixtures: a loopback connector, a server, and Microsoft's sign-in.
connector, teams, microsoft = _connector, _teams, _microsoft

ATTACKER_ID, ATTACKER_AAD = "29:attacker", "aad-attacker"


@pytest.fixture
async def attacker() -> AsyncIterator[LoopbackConnector]:
    """The attacker's own Bot Connector: says the attacker is the DSL when asked."""
    c = LoopbackConnector()
    c.add_member(ATTACKER_ID, ATTACKER_AAD, "dsl@school.test")
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackAPI]:
    api = FakeSlackAPI()
    await api.start()
    yield api
    await api.stop()


def view_click(service_url: str, concern_id: int) -> dict[str, Any]:
    """The attacker's "View details" press, as a Teams card submit from their own chat."""
    a = payload("card_submit_personal")
    a.update(
        id="1764489999001",
        serviceUrl=service_url,
        value={"action": "concern.view", "value": str(concern_id)},
        replyToId="",
    )
    a["from"] = {"id": ATTACKER_ID, "name": "Dee Lead", "aadObjectId": ATTACKER_AAD}
    a["conversation"]["id"] = "a:attacker-chat"
    return a


async def post(url: str, activity: dict[str, Any], **headers: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=activity, headers=headers or None) as r,
    ):
        await r.read()
        return r.status


async def nothing_viewed(core: Units, concern_id: int) -> None:
    assert "viewed" not in await events(core, concern_id)
    assert await audits(core, "concern.view") == []
    async with core.db.reading() as s:
        teams_ids = (
            await s.execute(select(PlatformIdentity).where(PlatformIdentity.platform == "teams"))
        ).all()
    assert teams_ids == []  # nobody was taken to be the DSL


async def a_concern(core: Units, clock: FixedClock) -> int:
    clock.set(MONDAY_10AM)
    await file_concern(runtime_for(core).bot)
    [c] = await concerns(core)
    return c.id


# ----- the attack from the issue -----


async def test_readme_server_with_slack_does_not_let_anyone_act_as_the_dsl(
    school: Units, clock: FixedClock, attacker: LoopbackConnector, slack_api: FakeSlackAPI
) -> None:
    """`chatbot serve` with Slack set up and no MicrosoftAppId: /api/messages used to run
    unauthenticated, look the sender up at their own serviceUrl and send them the concern."""
    concern_id = await a_concern(school, clock)
    settings = Settings(
        slack_bot_token=slack_api.token,
        slack_signing_secret="8f742231b10e8888abcd99yyyzzz85a5",
        slack_api_url=slack_api.api_url,
        listen_host="127.0.0.1",
    )
    runtime = runtime_for(school, settings)
    runner = await serve.start(runtime, 0, with_scheduler=False)
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages"
        assert await post(url, view_click(attacker.url, concern_id)) == 503
    finally:
        await runner.cleanup()
    assert attacker.requests == []
    await nothing_viewed(school, concern_id)
    assert runtime.dispatcher.platforms == ["slack"]


@pytest.mark.parametrize(
    "trick",
    [
        "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped IPv6: reaches 127.0.0.1
        "http://0.0.0.0:{port}/",  # reaches this machine on Linux
        "http://smba.trafficmanager.net@127.0.0.1:{port}/",  # user info
        "http://127.0.0.1.evil.example:{port}/",
        "https://smba.trafficmanager.net/emea/",  # Microsoft's, but not in Emulator mode
        "HTTP://LOCALHOST.:{port}/",  # trailing dot
    ],
)
async def test_emulator_mode_refuses_a_service_url_off_loopback(
    school: Units,
    clock: FixedClock,
    attacker: LoopbackConnector,
    slack_api: FakeSlackAPI,
    trick: str,
) -> None:
    concern_id = await a_concern(school, clock)
    port = attacker.url.rsplit(":", 1)[1].strip("/")
    t = await start(
        school,
        attacker,
        slack_bot_token=slack_api.token,
        slack_signing_secret="8f742231b10e8888abcd99yyyzzz85a5",
        slack_api_url=slack_api.api_url,
    )
    try:
        status = await t.post(view_click(trick.format(port=port), concern_id))
        assert 400 <= status < 500
        # The endpoint is live: the same click from the Emulator's loopback connector works.
        assert await t.post(view_click(attacker.url, concern_id)) == 201
    finally:
        await stop(t)
    [lookup, details] = attacker.requests
    assert lookup.startswith("GET /v3/conversations/a:attacker-chat/members/")
    assert details.startswith("POST /v3/conversations/a:attacker-chat/activities")
    assert any(NARRATIVE in c.text for c in attacker.calls)
    assert (await events(school, concern_id)).count("viewed") == 1  # only the allowed one


async def test_service_url_must_be_an_http_url(
    school: Units,
    connector: LoopbackConnector,
    microsoft: MicrosoftLogin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Missing or not http(s): 400, with no traceback (it used to be 200 and one)."""
    caplog.set_level(logging.INFO)
    for mode in (
        {},
        {"teams_app_id": APP_ID, "teams_app_password": "x", "teams_tenant_id": TENANT},
    ):
        t = await start(school, connector, microsoft, **mode)
        try:
            a = t.activity("message_personal", "teacher@school.test")
            del a["serviceUrl"]
            assert await t.post(a) == 400
            for bad in (None, "", "file:///etc/passwd", "javascript:alert(1)", "ftp://a/", "x"):
                assert await t.post(dict(a, serviceUrl=bad)) == 400, bad
        finally:
            await stop(t)
    assert connector.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_unlisted_service_url_refused_and_never_stored(
    school: Units, connector: LoopbackConnector
) -> None:
    t = await start(school, connector)
    try:
        a = t.activity("installation_update_personal", "teacher@school.test")
        a["serviceUrl"] = "https://evil.example/"
        assert await t.post(a) == 403
        async with school.db.transaction() as s:
            assert list((await s.execute(select(ConversationReference.key))).scalars()) == []
    finally:
        await stop(t)


async def test_a_stored_reference_off_the_list_is_never_called(
    teams: Teams, attacker: LoopbackConnector
) -> None:
    """Outbound refuses too: a conversation reference stored before (or by hand) that names
    another host gets nothing, and the outbox gives up on it instead of retrying."""
    t = teams
    await t.install("teacher@school.test")
    await t.install("colleague@school.test")
    port = attacker.url.rsplit(":", 1)[1].strip("/")
    async with t.runtime.units.db.transaction() as s:
        [ref] = (
            await s.execute(
                select(ConversationReference).where(
                    ConversationReference.key == "user:aad-colleague"
                )
            )
        ).scalars()
        ref.reference = dict(ref.reference, serviceUrl=f"http://[::ffff:127.0.0.1]:{port}/")
    await t.say("teacher@school.test", "book-call")
    await t.submit("teacher@school.test", t.last_to("teacher@school.test"), BOOKING)
    await t.drain()
    async with t.runtime.units.db.transaction() as s:
        [row] = (await s.execute(select(OutboxMessage))).scalars()
    assert row.last_error == "service_url_not_allowed" and row.delivered_at is None
    assert attacker.requests == []
    # botbuilder's own clients (made by our connector factory) are refused the same way.
    factory = t.runner.app[TEAMS].auth.create_connector_factory(ClaimsIdentity({}, True))
    with pytest.raises(ServiceUrlRefused):
        await factory.create(f"http://[::ffff:127.0.0.1]:{port}/")


async def test_a_connector_cannot_redirect_the_bot_elsewhere(
    teams: Teams, attacker: LoopbackConnector, clock: FixedClock
) -> None:
    """An allowed connector answering 307 does not get the request re-sent to another host."""
    t = teams
    await t.install("teacher@school.test")
    await t.install("colleague@school.test")
    await t.say("teacher@school.test", "book-call")
    await t.submit("teacher@school.test", t.last_to("teacher@school.test"), BOOKING)
    t.connector.fail_next = [(307, {"Location": attacker.url + "v3/conversations/x/activities"})]
    await t.drain()
    async with t.runtime.units.db.transaction() as s:
        [row] = (await s.execute(select(OutboxMessage))).scalars()
    assert row.last_error == "teams_307" and row.delivered_at is None
    assert attacker.requests == []
    clock.advance(minutes=10)
    await t.drain()  # and it is delivered once the connector behaves
    assert any("cohost.accept" in c.text for c in t.to("colleague@school.test"))


# ----- modes -----


def test_teams_mode() -> None:
    s = Settings()
    assert teams_mode(s).name == "off"
    assert teams_mode(replace(s, slack_bot_token="x", slack_signing_secret="y")).name == "off"
    assert teams_mode(replace(s, teams_emulator=True)).name == "off"  # listens on 0.0.0.0
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"):
        assert teams_mode(replace(s, teams_emulator=True, listen_host=host)).name == "emulator"
    for host in ("0.0.0.0", "", "::", "192.0.2.1", "127.0.0.1.evil.example", "::ffff:127.0.0.1"):
        assert teams_mode(replace(s, teams_emulator=True, listen_host=host)).name == "off", host
    local = replace(s, teams_emulator=True, listen_host="127.0.0.1")
    assert teams_mode(replace(local, production=True)).name == "off"
    assert teams_mode(replace(local, teams_app_id="app")).name == "authenticated"


async def test_emulator_refused_off_loopback(core: Units, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(teams_emulator=True, listen_host="0.0.0.0")
    runtime = runtime_for(core, settings)
    with caplog.at_level(logging.INFO):
        app = build_app(runtime, with_scheduler=False)
    [line] = [r for r in caplog.records if r.getMessage().startswith("Teams:")]
    assert line.levelno == logging.ERROR and "loopback" in line.getMessage()
    async with TestClient(TestServer(app)) as client:
        r = await client.post("/api/messages", json={"type": "message", "text": "help"})
        assert r.status == 503
        assert "loopback" in (await r.json())["error"]
    assert runtime.dispatcher.platforms == []


async def test_emulator_mode_only_answers_loopback_requests(
    teams: Teams, connector: LoopbackConnector
) -> None:
    """A web page cannot drive the unauthenticated endpoint: not through a name re-pointed at
    127.0.0.1 (its Host is refused), nor with a form post (only application/json is read)."""
    t = teams
    a = t.activity("message_personal", "teacher@school.test", text="help")
    assert await t.post(a, {"Host": "evil.example:3978"}) == 403
    assert await t.post(a, {"Content-Type": "text/plain; x=application/json"}) == 415
    assert connector.requests == []
    assert await t.post(a, {"Host": "localhost:3978"}) == 201


async def test_tenant_is_checked_in_emulator_mode(
    school: Units, connector: LoopbackConnector
) -> None:
    t = await start(school, connector, teams_tenant_id=TENANT)
    try:
        a = t.activity("message_personal", "teacher@school.test", text="help")
        other = copy.deepcopy(a)
        other["channelData"]["tenant"]["id"] = "another-tenant"
        other["conversation"]["tenantId"] = "another-tenant"
        assert await t.post(other) == 403
        no_tenant = copy.deepcopy(a)
        del no_tenant["channelData"], no_tenant["conversation"]["tenantId"]
        assert await t.post(no_tenant) == 403
        assert connector.requests == []
        assert await t.post(a) == 201
    finally:
        await stop(t)


# ----- the allow-list itself -----

PRODUCTION = AllowedHosts.production(("127.0.0.1", "*.school.example"))
EMULATOR = AllowedHosts.emulator()


@pytest.mark.parametrize(
    "url",
    [
        "https://smba.trafficmanager.net/emea/",
        "https://smba.trafficmanager.net/amer/72f988bf-0000-4000-8000-00000000beef/",
        "https://SMBA.TrafficManager.NET/uk/",
        "https://europe.webchat.botframework.com/",
        "https://smba.trafficmanager.net:443/emea/",
        "http://127.0.0.1:41234/",  # listed, and loopback may be plain http
        "https://bot.school.example/",
        "https://127.0.0.1/",  # a listed host takes https too
    ],
)
def test_production_allows(url: str) -> None:
    assert PRODUCTION.allows(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://smba.trafficmanager.net/emea/",  # plain http off loopback
        "https://evilbotframework.com/",
        "https://botframework.com.evil.example/",
        "https://smba.trafficmanager.net.evil.example/",
        "https://smba.trafficmanager.net@evil.example/",
        "https://evil.example\\@smba.trafficmanager.net/",
        "https://evil.example#@smba.trafficmanager.net/",
        "https://evil.example?@smba.trafficmanager.net/",
        "https://smba.trafficmanager.net./emea/",
        "https://smba.trafficmanager.net:99999/",
        "https://smba.trafficmanager.net:x/",
        "https://smba%2etrafficmanager.net/",
        "https://smba\u3002trafficmanager\u3002net/",  # ideographic full stops
        "https://smba.trafficmanager.net\n.evil.example/",
        "https://evilschool.example/",
        "https://localhost/",  # not listed
        "file:///etc/passwd",
        "javascript:alert(1)//smba.trafficmanager.net",
        "//smba.trafficmanager.net/",
        "",
        None,
        42,
    ],
)
def test_production_refuses(url: Any) -> None:
    assert not PRODUCTION.allows(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/",
        "http://127.5.6.7/",
        "http://localhost:3978",
        "http://LOCALHOST:3978/",
        "http://[::1]:3978/",
        "https://localhost/",
    ],
)
def test_emulator_allows(url: str) -> None:
    assert EMULATOR.allows(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.evil.example/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://localhost./",
        "http://foo.localhost/",
        "http://2130706433/",
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "https://smba.trafficmanager.net/emea/",
        "http://user@127.0.0.1/",
        "http://127.0.0.1:3978@evil.example/",
        "http://[::1/",
    ],
)
def test_emulator_refuses(url: str) -> None:
    assert not EMULATOR.allows(url)
