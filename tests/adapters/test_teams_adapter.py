"""The Teams adapter end to end: the real server on 127.0.0.1, real-shape activities posted to
/api/messages, and a loopback Bot Connector (also on 127.0.0.1) that records what the bot sends.
Every Adaptive Card the bot sends is validated against the official 1.5 schema, and every
activity is checked for markdown links where Teams parses markdown.

Most tests run in Emulator mode. With an app id, activities carry tokens signed as the Bot
Connector signs them, and botbuilder checks them and the bot signs in to answer, against a
stand-in for Microsoft's sign-in services on 127.0.0.1 (tests/doubles/microsoft_login.py)."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from adapters.server import Runtime, runtime_for
from adapters.server import start as start_server
from adapters.teams import TEAMS
from chatbot.config import Settings
from chatbot.policy import Policy
from chatbot.ports import FixedClock
from chatbot.roster.identity import staff_by_email
from chatbot.storage.models import ConversationReference, OutboxMessage
from chatbot.ui import Message, Section
from chatbot.uow import Units
from tests.adapters.text_checks import teams_findings
from tests.conftest import open_database
from tests.doubles.bot_connector import Call, LoopbackConnector
from tests.doubles.microsoft_login import SCOPE, MicrosoftLogin

PAYLOADS = Path(__file__).parents[1] / "payloads" / "teams"
SCHEMAS = Path(__file__).parents[2].parent / "shared" / "schemas"
TENANT = "72f988bf-0000-4000-8000-00000000beef"
BOT_ID = "28:00000000-0000-0000-0000-000000000000"
DSL_CHANNEL = "19:safeguarding0000000000000000000@thread.tacv2"
SLT_CHANNEL = "19:leadership000000000000000000000@thread.tacv2"
APP_ID = "11111111-2222-4333-8444-555555555555"
APP_PASSWORD = "secret"
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

PEOPLE = {  # email -> (pairwise id, aad object id, personal conversation id)
    "teacher@school.test": ("29:teacher", "aad-teacher", "a:chat-teacher"),
    "colleague@school.test": ("29:colleague", "aad-colleague", "a:chat-colleague"),
    "slt@school.test": ("29:slt", "aad-slt", "a:chat-slt"),
    "dsl@school.test": ("29:dsl", "aad-dsl", "a:chat-dsl"),
    "head@school.test": ("29:head", "aad-head", "a:chat-head"),
    "stranger@elsewhere.test": ("29:stranger", "aad-stranger", "a:chat-stranger"),
}

BOOKING = {
    "in_pupils": "A123456789012",
    "in_kind": "one_to_one",
    "in_date": "2026-12-01",
    "in_start": "10:00",
    "in_duration": "20",
    "in_cohost": "colleague@school.test",
    "in_platform": "Zoom",
    "in_plan": "Sam shares his reading book.",
}


def card_validator() -> Any:
    path = SCHEMAS / "adaptive-card-1.5.schema.json"
    if not path.exists():
        return None
    import jsonschema

    schema = json.loads(path.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


CARD_VALIDATOR = card_validator()
ACTIVITY_IDS = itertools.count(1)


def attention(element: dict[str, Any]) -> bool:
    """A line of text drawn in the Attention colour (how the card shows a refusal)."""
    return element["type"] == "RichTextBlock" and any(
        run.get("color") == "Attention" for run in element["inlines"]
    )


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@dataclass
class Teams:
    """One running server plus the loopback connector and helpers to speak as people."""

    runtime: Runtime
    connector: LoopbackConnector
    url: str
    runner: web.AppRunner
    session: aiohttp.ClientSession
    n: int = 0
    validated: int = field(default=0)
    # With an app id: Microsoft's sign-in, whose tokens ``post`` sends as Teams does.
    login: MicrosoftLogin | None = None

    def _id(self) -> str:
        return f"1764489{next(ACTIVITY_IDS):06d}"  # unique across restarts, as Teams' are

    def activity(self, name: str, who: str, **over: Any) -> dict[str, Any]:
        a = payload(name)
        pid, aad, chat = PEOPLE[who]
        a["id"] = self._id()
        a["serviceUrl"] = self.connector.url
        a["from"] = {"id": pid, "name": who, "aadObjectId": aad}
        a["recipient"] = {"id": BOT_ID, "name": "Safe Video"}
        if a["conversation"]["conversationType"] == "personal":
            a["conversation"]["id"] = chat
        a.update(over)
        return a

    async def post(
        self,
        activity: dict[str, Any],
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> int:
        """POST an activity; with an app id, signed as the Bot Connector signs it, unless
        ``headers`` are given (then exactly those, with the content type)."""
        h = {"Content-Type": "application/json"}
        if headers is None and self.login is not None:
            h.update(self.login.bearer(str(activity.get("serviceUrl") or "")))
        h.update(headers or {})
        body = raw if raw is not None else json.dumps(activity).encode()
        async with self.session.post(self.url, data=body, headers=h) as r:
            await r.read()
            return r.status

    async def say(self, who: str, text: str) -> int:
        return await self.post(self.activity("message_personal", who, text=text))

    async def install(self, who: str) -> int:
        return await self.post(self.activity("installation_update_personal", who))

    async def add_to_channel(self, channel: str) -> int:
        a = self.activity("conversation_update_team", "head@school.test")
        a["conversation"]["id"] = channel
        a["channelData"]["team"]["id"] = channel
        a["channelData"]["settings"]["selectedChannel"]["id"] = channel
        return await self.post(a)

    async def submit(self, who: str, card_call: Call, values: dict[str, Any]) -> int:
        [card] = card_call.cards
        [submit] = [x for x in card["actions"] if x["type"] == "Action.Submit"]
        value = dict(copy.deepcopy(submit["data"]), **values)
        return await self.post(
            self.activity("card_submit_personal", who, value=value, replyToId=card_call.activity_id)
        )

    async def click(
        self, who: str, call: Call, action_id: str, channel: bool = False, activity_id: str = ""
    ) -> int:
        [button] = [
            b
            for c in call.cards
            for s in c["body"]
            if s["type"] == "ActionSet"
            for b in s["actions"]
            if b["data"].get("action") == action_id
        ]
        name = "card_submit_channel" if channel else "card_submit_personal"
        a = self.activity(name, who, value=button["data"], replyToId=activity_id)
        if channel:
            a["conversation"]["id"] = (
                f"{call.conversation_id.split(';')[0]};messageid={activity_id}"
            )
        return await self.post(a)

    def to(self, who: str) -> list[Call]:
        return self.connector.sent(PEOPLE[who][2])

    def last_to(self, who: str) -> Call:
        return self.to(who)[-1]

    async def drain(self) -> None:
        await self.runtime.dispatcher.drain()

    def validate_cards(self) -> None:
        """Every activity sent shows people's text as text; every card is valid 1.5."""
        for call in self.connector.calls:
            found = teams_findings(call.body)
            assert not found, found[:3]
        if CARD_VALIDATOR is None:
            return
        for call in self.connector.calls:
            for card in call.cards:
                errors = list(CARD_VALIDATOR.iter_errors(card))
                assert not errors, (errors[0].message, json.dumps(card)[:2000])
                self.validated += 1


async def start(
    core: Units, connector: LoopbackConnector, login: MicrosoftLogin | None = None, **settings: Any
) -> Teams:
    """The server as `chatbot serve` starts it, on 127.0.0.1: in Emulator mode
    (`--teams-emulator`) unless ``settings`` give an app id; then it signs in at ``login``."""
    values: dict[str, Any] = {
        "database_url": core.db.url if hasattr(core.db, "url") else "",
        "listen_host": "127.0.0.1",
        "teams_emulator": not settings.get("teams_app_id"),
        "teams_dsl_channel": DSL_CHANNEL,
        "teams_slt_channel": SLT_CHANNEL,
    }
    if settings.get("teams_app_id"):
        # The loopback connector stands where Microsoft's hosts would: allowed the way a
        # school allows an extra host (TEAMS_SERVICE_URL_HOSTS). Emulator mode needs nothing.
        values["teams_service_url_hosts"] = ("127.0.0.1",)
        # Never Microsoft's own sign-in: there is no internet here.
        assert login is not None, "an app id needs the stand-in for Microsoft's sign-in"
        values.update(login.settings())
    else:
        login = None
    runtime = runtime_for(core, Settings(**{**values, **settings}))
    runner = await start_server(runtime, 0, with_scheduler=False)
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/api/messages"
    return Teams(runtime, connector, url, runner, aiohttp.ClientSession(), login=login)


async def stop(t: Teams) -> None:
    await t.session.close()
    await t.runner.cleanup()


@pytest.fixture
async def connector() -> AsyncIterator[LoopbackConnector]:
    c = LoopbackConnector()
    for email, (pid, aad, _chat) in PEOPLE.items():
        c.add_member(pid, aad, email)
    await c.start()
    yield c
    await c.stop()


@pytest.fixture
def microsoft(monkeypatch: pytest.MonkeyPatch) -> Iterator[MicrosoftLogin]:
    """Microsoft's sign-in services for the app APP_ID, on 127.0.0.1, and nothing else."""
    with MicrosoftLogin(APP_ID, APP_PASSWORD, TENANT) as login:
        login.use(monkeypatch)
        yield login
    assert login.off_machine == []  # nothing tried to reach Microsoft, or anywhere else


async def signed_in(
    core: Units, connector: LoopbackConnector, login: MicrosoftLogin, **settings: Any
) -> Teams:
    """The server with the school's Teams app registration, as in production."""
    return await start(
        core,
        connector,
        login,
        teams_app_id=APP_ID,
        teams_app_password=APP_PASSWORD,
        teams_tenant_id=TENANT,
        **settings,
    )


@pytest.fixture
async def teams(school: Units, connector: LoopbackConnector) -> AsyncIterator[Teams]:
    t = await start(school, connector)
    yield t
    t.validate_cards()
    await stop(t)


def _cohost_request(t: Teams) -> Call:
    [req] = [c for c in t.to("colleague@school.test") if "cohost.accept" in c.text]
    return req


async def book(t: Teams) -> Call:
    """Teacher books a call with colleague as co-host; returns the co-host request."""
    for who in ("teacher@school.test", "colleague@school.test"):
        assert await t.install(who) == 201
    assert await t.say("teacher@school.test", "/book-call") == 201
    form = t.last_to("teacher@school.test")
    assert await t.submit("teacher@school.test", form, BOOKING) == 201
    await t.drain()
    return _cohost_request(t)


# ----- people's text -----


def test_peoples_text_is_drawn_where_markdown_is_not_parsed() -> None:
    from adapters.teams.cards import message_card
    from adapters.teams.messenger import card_json, message_json
    from chatbot.ui import Context, Fields, Message, Section, esc

    name = "[click](https://evil.example) **x**"
    msg = Message(
        name,
        (Section(f"**{esc(name)}** asks\nline two"), Fields((("Host", name),)), Context((name,))),
    )
    card = message_card(msg)
    assert {e["type"] for e in card["body"]} == {"RichTextBlock", "ColumnSet"}  # no markdown
    assert name not in card["fallbackText"]
    section, line_two, host, context = card["body"]
    assert [(r["text"], r.get("weight")) for r in section["inlines"]] == [
        (name, "Bolder"),
        (" asks", None),
    ]
    assert line_two["inlines"][0]["text"] == "line two"
    label, value = host["columns"]
    assert label["items"][0]["inlines"][0]["text"] == "Host"
    assert value["items"][0]["inlines"][0]["text"] == name
    assert context["inlines"][0]["text"] == name
    activity = card_json(card, msg.text)
    assert activity["textFormat"] == "plain" and teams_findings(activity) == []
    if CARD_VALIDATOR is not None:
        assert list(CARD_VALIDATOR.iter_errors(card)) == []
    plain = message_json(Message("[click](https://evil.example)\x1b[2J"))
    assert plain == {
        "type": "message",
        "text": "[click](https://evil.example)[2J",
        "textFormat": "plain",
    }


# ----- the booking journey -----


async def test_full_booking_to_slt_channel(teams: Teams) -> None:
    t = teams
    assert await t.add_to_channel(SLT_CHANNEL) == 201
    for who in ("teacher@school.test", "colleague@school.test"):
        assert await t.install(who) == 201
        assert "book-call" in t.last_to(who).text  # the welcome says what the bot can do

    assert await t.say("teacher@school.test", "<at>Safe Video</at> /book-call") == 201
    form = t.last_to("teacher@school.test")
    [card] = form.cards
    inputs = {e["id"]: e for e in card["body"] if e["type"].startswith("Input.")}
    assert set(inputs) == {
        f"in_{k}"
        for k in ("pupils", "kind", "date", "start", "duration", "cohost", "platform", "plan")
    } | {"find_pupils"}  # the pupil picker's search box: see test_pupil_search_*
    assert all(e.get("label") for e in inputs.values())
    assert "A123456789012" in [c["value"] for c in inputs["in_pupils"]["choices"]]
    assert "Sam T" in json.dumps(inputs["in_pupils"]) and "Taylor" not in json.dumps(card)
    assert "colleague@school.test" in [c["value"] for c in inputs["in_cohost"]["choices"]]
    [submit] = card["actions"]
    assert submit["data"]["form"] == "book_call" and submit["data"]["state"] == {}

    form_id = form.activity_id
    assert await t.submit("teacher@school.test", form, BOOKING) == 201
    [closed] = [c for c in t.connector.updates() if c.activity_id == form_id]
    assert "Sent" in closed.text
    assert "Waiting for Colin Colleague" in t.last_to("teacher@school.test").text

    await t.drain()
    req = _cohost_request(t)
    assert t.connector.sent(SLT_CHANNEL) == []  # not confirmed yet
    assert (
        await t.click("colleague@school.test", req, "cohost.accept", activity_id=req.activity_id)
        == 201
    )
    # The request card is updated in place (no buttons left to press twice).
    updated = [c for c in t.connector.updates() if c.activity_id == req.activity_id]
    assert updated and "cohost.accept" not in updated[-1].text

    await t.drain()
    [slt] = t.connector.sent(SLT_CHANNEL)
    assert "Video call booked" in slt.text
    assert "ST" in slt.text and "Taylor" not in slt.text
    assert any("accepted" in c.text for c in t.to("teacher@school.test"))


async def test_refusals_shown_on_the_card(teams: Teams) -> None:
    t = teams
    await t.install("teacher@school.test")
    await t.say("teacher@school.test", "book-call")
    form = t.last_to("teacher@school.test")
    bad = dict(
        BOOKING,
        in_date="2026-12-05",
        in_start="25:00",
        in_duration="45",
        in_cohost="",
        in_platform="Skype",
        in_plan="",
    )
    assert await t.submit("teacher@school.test", form, bad) == 201
    again = t.last_to("teacher@school.test")
    [card] = again.cards
    assert card["body"][0]["inlines"][0]["text"] == "Book a video call"
    body = card["body"]
    for field_id in ("start", "duration", "cohost", "platform", "plan"):
        [pos] = [n for n, e in enumerate(body) if e.get("id") == f"in_{field_id}"]
        after = body[pos + 1 : pos + 3]
        assert any(attention(e) for e in after), (
            field_id,
            after,
        )
    # What the teacher typed is kept, so only the wrong fields need changing.
    start = next(e for e in body if e.get("id") == "in_start")
    assert start["value"] == "25:00"
    assert next(e for e in body if e.get("id") == "in_pupils")["value"] == "A123456789012"
    async with t.runtime.units.db.transaction() as s:
        assert (await s.execute(select(OutboxMessage))).first() is None


async def test_unknown_user_is_told_plainly(teams: Teams) -> None:
    assert await teams.say("stranger@elsewhere.test", "/book-call") == 201
    reply = teams.last_to("stranger@elsewhere.test")
    assert "not on the school's staff roster" in reply.text


async def test_commands_and_help(teams: Teams) -> None:
    t = teams
    await t.say("teacher@school.test", "help")
    assert "/book-call" in t.last_to("teacher@school.test").text
    await t.say("teacher@school.test", "my-calls")
    assert "no upcoming calls" in t.last_to("teacher@school.test").text
    await t.say("teacher@school.test", "/consent")
    [card] = t.last_to("teacher@school.test").cards
    assert card["actions"][0]["data"]["form"] == "consent"
    pupil = next(e for e in card["body"] if e.get("id") == "in_pupil")
    assert pupil["type"] == "Input.ChoiceSet" and pupil["choices"]


async def test_repeated_activity_processed_once(teams: Teams) -> None:
    t = teams
    a = t.activity("message_personal", "teacher@school.test", text="book-call")
    assert await t.post(a) == 201
    assert await t.post(a) == 201
    forms = [c for c in t.to("teacher@school.test") if "book_call" in c.text]
    assert len(forms) == 1


# ----- proactive messages -----


async def test_proactive_send_after_restart(
    school: Units, connector: LoopbackConnector, db_url: str, clock: FixedClock, policy: Policy
) -> None:
    first = await start(school, connector)
    for who in ("teacher@school.test", "colleague@school.test"):
        assert await first.install(who) == 201
    await first.add_to_channel(SLT_CHANNEL)
    first.validate_cards()
    await stop(first)  # also disposes the first runtime's database engine

    core2 = Units(db=open_database(db_url), policy=policy, clock=clock)
    second = await start(core2, connector)
    try:
        async with core2.db.transaction() as s:
            keys = set((await s.execute(select(ConversationReference.key))).scalars())
        assert {"user:aad-colleague", "user:aad-teacher", f"channel:{SLT_CHANNEL}"} <= keys
        before = len(connector.calls)
        # The teacher books; the colleague has not spoken to this process at all.
        await second.say("teacher@school.test", "book-call")
        await second.submit("teacher@school.test", second.last_to("teacher@school.test"), BOOKING)
        await second.drain()
        req = _cohost_request(second)
        assert connector.calls.index(req) >= before
        assert req.conversation_id == "a:chat-colleague"
        second.validate_cards()
    finally:
        await stop(second)


async def test_a_conversation_that_moves_is_reached_where_it_went(teams: Teams) -> None:
    """Teams may move a conversation to another service URL (or the person changes language):
    the next activity from there updates the stored reference, and later messages follow it.
    Activities that change nothing leave it as it was."""
    t = teams
    moved = LoopbackConnector()
    for email, (pid, aad, _chat) in PEOPLE.items():
        moved.add_member(pid, aad, email)
    await moved.start()
    try:

        async def reference() -> dict[str, Any]:
            async with t.runtime.units.db.reading() as s:
                q = select(ConversationReference.reference).where(
                    ConversationReference.key == "user:aad-teacher"
                )
                return dict((await s.execute(q)).scalar_one())

        assert await t.say("teacher@school.test", "help") == 201
        assert await t.say("teacher@school.test", "help") == 201  # nothing changed
        assert (await reference())["serviceUrl"] == t.connector.url
        a = t.activity("message_personal", "teacher@school.test", text="help")
        a["serviceUrl"] = moved.url
        assert await t.post(a) == 201
        assert (await reference())["serviceUrl"] == moved.url
        a = t.activity("message_personal", "teacher@school.test", text="help", locale="cy-GB")
        a["serviceUrl"] = moved.url
        assert await t.post(a) == 201
        assert (await reference())["locale"] == "cy-GB"

        # A proactive message now goes where the conversation went.
        u = t.runtime.units
        async with u.write() as w:
            teacher = await staff_by_email(w.session, "teacher@school.test")
            assert teacher is not None
            w.to_staff(teacher.id, Message("Moved", (Section("You moved."),)))
        await t.drain()
        assert [c.text for c in moved.calls if "You moved" in c.text]
    finally:
        await moved.stop()


async def test_no_reference_waits_and_429_is_honoured(teams: Teams) -> None:
    t = teams
    await t.install("teacher@school.test")
    await t.say("teacher@school.test", "book-call")
    await t.submit("teacher@school.test", t.last_to("teacher@school.test"), BOOKING)
    await t.drain()
    async with t.runtime.units.db.transaction() as s:
        [row] = (await s.execute(select(OutboxMessage))).scalars()
    assert row.delivered_at is None and row.last_error == "no_conversation_reference"

    await t.install("colleague@school.test")  # now the bot can reach them
    clock: FixedClock = t.runtime.units.clock  # type: ignore[assignment]
    clock.advance(minutes=10)
    t.connector.fail_next = [(429, {"Retry-After": "42"})]
    await t.drain()
    async with t.runtime.units.db.transaction() as s:
        row = await s.get(OutboxMessage, row.id)
        assert row is not None
    assert row.last_error == "teams_429" and row.delivered_at is None
    assert (row.due_at - clock.now()).total_seconds() == pytest.approx(42)

    clock.advance(seconds=43)
    t.connector.fail_next = [(502, {})]
    await t.drain()
    async with t.runtime.units.db.transaction() as s:
        row = await s.get(OutboxMessage, row.id)
        assert row is not None
    assert row.last_error == "teams_502" and row.delivered_at is None

    clock.advance(minutes=10)
    await t.drain()
    _cohost_request(t)


# ----- HTTP security -----


async def test_authentication_and_bad_requests(
    school: Units, connector: LoopbackConnector, microsoft: MicrosoftLogin
) -> None:
    t = await signed_in(school, connector, microsoft)
    try:
        a = t.activity("message_personal", "teacher@school.test")
        assert await t.post(a, {}) == 401  # no Authorization header
        assert await t.post(a, {"Authorization": "Bearer not-a-jwt"}) == 401
        assert await t.post(a, {"Authorization": "Basic dXNlcjpwYXNz"}) == 401
        forged = (
            "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IngifQ."
            "eyJpc3MiOiJodHRwczovL2V2aWwuZXhhbXBsZSIsImF1ZCI6IjExMTExMTExLTIyMjItNDMzMy04"
            "NDQ0LTU1NTU1NTU1NTU1NSJ9.c2ln"
        )
        assert await t.post(a, {"Authorization": f"Bearer {forged}"}) == 401
        assert await t.post(a, {"Content-Type": "text/plain"}) == 415
        assert await t.post(a, raw=b"{not json") == 400
        assert await t.post(a, raw=b"[1, 2]") == 400
        assert await t.post(a, raw=b'{"text": "no type"}') == 400
        assert connector.calls == []
        async with school.db.transaction() as s:
            assert list((await s.execute(select(ConversationReference))).scalars()) == []
    finally:
        await stop(t)


async def test_a_token_from_teams_lets_the_bot_in_and_it_signs_in_to_answer(
    school: Units, connector: LoopbackConnector, microsoft: MicrosoftLogin
) -> None:
    """Activities signed as the Bot Connector signs them are let in; the bot signs in with its
    app id and secret, once, and every call it makes to the Bot Connector (replies, look-ups,
    the outbox's messages) carries the token it was given."""
    t = await signed_in(school, connector, microsoft)
    try:
        req = await book(t)  # installs, a reply, a form, a booking, a proactive co-host request
        assert "Waiting for Colin Colleague" in t.last_to("teacher@school.test").text
        assert req.conversation_id == "a:chat-colleague"
        t.validate_cards()
    finally:
        await stop(t)
    [token] = microsoft.issued
    assert len(connector.requests) > 5
    assert connector.authorizations == [f"Bearer {token}"] * len(connector.requests)
    [asked] = microsoft.token_requests()
    assert asked["grant_type"] == "client_credentials"
    assert (asked["client_id"], asked["client_secret"]) == (APP_ID, APP_PASSWORD)
    assert asked["scope"] == SCOPE == "https://api.botframework.com/.default"
    # The keys were fetched once for every activity; MSAL found the tenant and asked for the
    # token, and asked nobody else about the sign-in host (no instance discovery).
    p = microsoft.prefix
    assert microsoft.requests() == [
        f"GET /{p}/v1/.well-known/openidconfiguration",
        f"GET /{p}/v1/.well-known/keys",
        f"GET /{TENANT}/v2.0/.well-known/openid-configuration",
        f"POST /{TENANT}/oauth2/v2.0/token",
    ]


OTHER_APP = "99999999-8888-4777-8666-555555555555"
Forgery = Callable[[MicrosoftLogin, str], str]
FORGERIES: dict[str, Forgery] = {
    "a key Microsoft does not publish": lambda m, url: m.channel_token(url, key=m.other_key),
    "another key under Teams' key id": lambda m, url: m.channel_token(
        url, key=m.other_key, kid=m.teams_key.kid
    ),
    "a key published for Web Chat only": lambda m, url: m.channel_token(url, key=m.webchat_key),
    "for another bot": lambda m, url: m.channel_token(url, audience=OTHER_APP),
    "for another service URL": lambda m, url: m.channel_token("http://127.0.0.1:9/"),
    "expired an hour ago": lambda m, url: m.channel_token(url, age=2 * 3600),
    "valid only in an hour": lambda m, url: m.channel_token(url, age=-3600),
    "from another issuer": lambda m, url: m.channel_token(url, issuer="https://api.evil.example"),
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_tokens_teams_did_not_issue_are_refused(
    school: Units, connector: LoopbackConnector, microsoft: MicrosoftLogin, forge: Forgery
) -> None:
    t = await signed_in(school, connector, microsoft)
    try:
        a = t.activity("message_personal", "teacher@school.test", text="book-call")
        token = forge(microsoft, connector.url)
        assert await t.post(a, {"Authorization": f"Bearer {token}"}) == 401
        assert connector.requests == [] and microsoft.issued == []  # nothing sent, no sign-in
        async with school.db.reading() as s:
            assert list((await s.execute(select(ConversationReference))).scalars()) == []
            assert list((await s.execute(select(OutboxMessage))).scalars()) == []
        # The same activity with the token Teams would send is answered: only the token differed.
        assert await t.post(a) == 201
        assert "book_call" in t.last_to("teacher@school.test").text
    finally:
        await stop(t)


async def test_other_tenants_are_refused(
    school: Units, connector: LoopbackConnector, microsoft: MicrosoftLogin
) -> None:
    t = await signed_in(school, connector, microsoft)
    try:
        teams_app = t.runner.app[TEAMS]
        a = t.activity("message_personal", "teacher@school.test")
        a["channelData"]["tenant"]["id"] = "another-tenant"
        a["conversation"]["tenantId"] = "another-tenant"
        assert await t.post(a) == 403  # a good token from Teams, for another school's tenant
        assert connector.calls == []
        assert microsoft.issued == []  # the bot did not even sign in to answer
        # With Teams configured, the Teams messenger is the outbox's way out.
        assert t.runtime.dispatcher.messengers == {"teams": teams_app.messenger}
    finally:
        await stop(t)


async def test_botbuilder_is_given_the_public_cloud_unless_told_otherwise() -> None:
    """Unset, botbuilder gets its own public-cloud values, and the bot's credentials sign in
    where they always have; with a US government cloud's settings (README), its own constants
    for that cloud."""
    from botbuilder.integration.aiohttp import ConfigurationServiceClientCredentialFactory
    from botframework.connector.auth import AuthenticationConstants as Public
    from botframework.connector.auth import GovernmentConstants as Gov
    from botframework.connector.auth import MicrosoftGovernmentAppCredentials

    from adapters.teams.auth import bot_framework_configuration
    from tests.unit.test_settings import GCC_HIGH

    registration = {
        "MicrosoftAppId": APP_ID,
        "MicrosoftAppPassword": APP_PASSWORD,
        "MicrosoftAppTenantId": TENANT,
    }
    for env, cloud in ((registration, Public), ({**registration, **GCC_HIGH}, Gov)):
        c = bot_framework_configuration(Settings.from_env(env))
        assert (
            c.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
            == cloud.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
        )
        assert c.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER == cloud.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
        assert c.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE == cloud.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        assert (
            c.TO_CHANNEL_FROM_BOT_LOGIN_URL == cloud.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX + TENANT
        )
        credentials = await ConfigurationServiceClientCredentialFactory(c).create_credentials(
            APP_ID, c.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE, c.TO_CHANNEL_FROM_BOT_LOGIN_URL, True
        )
        assert credentials.oauth_endpoint == cloud.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX + TENANT
        assert credentials.oauth_scope == cloud.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
        government = isinstance(credentials, MicrosoftGovernmentAppCredentials)
        assert government == (cloud is Gov)


# ----- concerns -----


async def test_concern_alert_acknowledge_and_refused_view(teams: Teams, clock: FixedClock) -> None:
    t = teams
    clock.set(MONDAY_10AM)
    await t.add_to_channel(DSL_CHANNEL)
    for who in ("teacher@school.test", "dsl@school.test", "slt@school.test"):
        await t.install(who)
    assert await t.say("teacher@school.test", "concern") == 201
    form = t.last_to("teacher@school.test")
    [card] = form.cards
    assert card["actions"][0]["data"]["form"] == "concern"
    narrative = "Marker-5521: the pupil said an adult online asked them to keep a secret."
    assert (
        await t.submit(
            "teacher@school.test",
            form,
            {
                "in_pupil": "A123456789012",
                "in_category": "online_abuse",
                "in_staff": "",
                "in_risk": "no",
                "in_when_date": "2026-11-30",
                "in_when_time": "07:30",
                "in_narrative": narrative,
            },
        )
        == 201
    )
    receipt = t.last_to("teacher@school.test")
    assert "C-2026-0001" in receipt.text

    await t.drain()
    [alert] = t.connector.sent(DSL_CHANNEL)
    assert "C-2026-0001" in alert.text and narrative not in alert.text
    alert_id = alert.activity_id

    # Someone in the channel who is not the DSL may not read the details.
    assert (
        await t.click("slt@school.test", alert, "concern.view", channel=True, activity_id=alert_id)
        == 201
    )
    assert not any(narrative in c.text for c in t.connector.calls)

    # The DSL acknowledges: the alert card is updated in place.
    assert (
        await t.click("dsl@school.test", alert, "concern.ack", channel=True, activity_id=alert_id)
        == 201
    )
    updated = [c for c in t.connector.updates() if c.activity_id == alert_id]
    assert updated and "concern.ack" not in updated[-1].text

    # The DSL views the details: they arrive in the DSL's personal chat, not the channel.
    assert (
        await t.click("dsl@school.test", alert, "concern.view", channel=True, activity_id=alert_id)
        == 201
    )
    private = [c for c in t.to("dsl@school.test") if narrative in c.text]
    assert private
    assert not any(narrative in c.text for c in t.connector.sent(DSL_CHANNEL))


# ----- pupil search (pickers list only the core's first 50 pupils) -----

ZACH = "P000000000117"  # Zachary Quillfeather: far beyond the first 50 pupils by name


async def many_pupils(core: Units) -> None:
    """120 pupils in all: 116 Alexes (who sort first) and Zachary, who has written consent."""
    from chatbot.consent import service as consent
    from chatbot.roster import importer as roster
    from tests.conftest import MONDAY_8AM

    rows = [f"P{n:012d},Alex,Example{n:03d},Year 5," for n in range(1, 117)]
    rows.append(f"{ZACH},Zachary,Quillfeather,Year 6,parent.zach@home.test")
    report = await roster.import_pupils(
        core, "upn,forename,surname,class,parent_email\n" + "\n".join(rows)
    )
    assert report.created == 117 and not report.rejected
    async with core.write() as u:
        res = await consent.grant(
            u,
            upn=ZACH,
            parent_email="parent.zach@home.test",
            received_at=MONDAY_8AM,
            evidence_kind="message_id",
            evidence="<zq@home.test> Re: video calls",
            actor=None,
        )
    assert not res.errors


def _element(card: dict[str, Any], element_id: str) -> dict[str, Any]:
    return next(e for e in card["body"] if e.get("id") == element_id)


def _choices(card: dict[str, Any], input_id: str = "in_pupils") -> list[str]:
    return [c["value"] for c in _element(card, input_id)["choices"]]


async def search(t: Teams, who: str, card_call: Call, input_id: str, values: dict[str, Any]) -> int:
    """Press the Search button of a pupil picker, with ``values`` typed into the card."""
    [card] = card_call.cards
    [button] = [
        b
        for e in card["body"]
        if e["type"] == "ActionSet"
        for b in e["actions"]
        if b["data"].get("search") == input_id
    ]
    value = dict(copy.deepcopy(button["data"]), **values)
    return await t.post(
        t.activity("card_submit_personal", who, value=value, replyToId=card_call.activity_id)
    )


def _redrawn(t: Teams, form: Call) -> Call:
    """The latest in-place update of the form card."""
    return [c for c in t.connector.updates() if c.activity_id == form.activity_id][-1]


async def _rows(t: Teams) -> tuple[list[Any], list[Any]]:
    from chatbot.storage.models import Booking

    async with t.runtime.units.db.transaction() as s:
        bookings = list((await s.execute(select(Booking))).scalars())
        outbox = list((await s.execute(select(OutboxMessage))).scalars())
    return bookings, outbox


async def test_pupil_search_finds_a_pupil_beyond_the_first_50(teams: Teams) -> None:
    from chatbot.storage.models import Booking, BookingPupil, Pupil

    t = teams
    await many_pupils(t.runtime.units)
    for who in ("teacher@school.test", "colleague@school.test"):
        assert await t.install(who) == 201
    assert await t.say("teacher@school.test", "/book-call") == 201
    form = t.last_to("teacher@school.test")
    [card] = form.cards
    first = _choices(card)
    assert len(first) == 50 and ZACH not in first
    box = _element(card, "find_pupils")
    assert box["type"] == "Input.Text" and "name, class or UPN" in box["label"]
    # A search button sends (and Teams validates) every input, so none may be required,
    # or the teacher could not search before choosing a pupil and filling in everything.
    assert not any(e.get("isRequired") for e in card["body"])
    assert [a["title"] for a in card["actions"]] == ["Book"]  # Search sits by its picker

    typed = dict(
        BOOKING,
        in_pupils=first[0],  # one of the first 50, already chosen
        in_plan="Zachary shows us his model bridge.",
        find_pupils="  quillFEATHER ",
    )
    sent_before = len(t.to("teacher@school.test"))
    assert await search(t, "teacher@school.test", form, "pupils", typed) == 201

    again = _redrawn(t, form)
    [card] = again.cards
    choices = _choices(card)
    assert ZACH in choices and first[0] in choices and len(choices) == 2
    assert "Zachary Q (Year 6)" in json.dumps(_element(card, "in_pupils"))
    assert "Quillfeather" not in json.dumps(card)  # the surname stays out of the card...
    assert _element(card, "find_pupils")["value"] == "quillFEATHER"  # ...except as typed
    for key in ("in_date", "in_start", "in_cohost", "in_platform", "in_plan", "in_kind"):
        assert str(_element(card, key)["value"]) == typed[key], key
    assert _element(card, "in_pupils")["value"] == first[0]  # the choice survives
    assert "1 match" in again.text
    # The search reached nobody and wrote nothing: no booking, no message queued or sent.
    assert len(t.to("teacher@school.test")) == sent_before
    assert await _rows(t) == ([], [])
    assert not any("cohost.accept" in c.text for c in t.to("colleague@school.test"))

    # Now the teacher books the call for Zachary, from the redrawn card.
    booking = dict(typed, in_pupils=ZACH)
    assert await t.submit("teacher@school.test", again, booking) == 201
    assert "Waiting for Colin Colleague" in t.last_to("teacher@school.test").text
    await t.drain()
    req = _cohost_request(t)
    assert "Zachary Q" in req.text and "Quillfeather" not in req.text
    async with t.runtime.units.db.transaction() as s:
        [b] = (await s.execute(select(Booking))).scalars()
        upns = list(
            (
                await s.execute(
                    select(Pupil.upn).join(BookingPupil).where(BookingPupil.booking_id == b.id)
                )
            ).scalars()
        )
    assert upns == [ZACH]


async def test_pupil_search_edge_cases(teams: Teams) -> None:
    t = teams
    await many_pupils(t.runtime.units)
    await t.install("teacher@school.test")
    await t.say("teacher@school.test", "book-call")
    form = t.last_to("teacher@school.test")

    # Nothing matches: the chosen pupils (as Teams sends a multi-select: "a,b") stay listed
    # and chosen; a made-up UPN is neither listed nor kept.
    typed = {"in_pupils": f"{ZACH},Z999999999999", "find_pupils": "nobody-like-this"}
    assert await search(t, "teacher@school.test", form, "pupils", typed) == 201
    [card] = _redrawn(t, form).cards
    assert _choices(card) == [ZACH]
    assert _element(card, "in_pupils")["value"] == ZACH
    assert "No pupils match" in json.dumps(card)

    # An empty search lists the first pupils again, Zachary still first as chosen.
    again = _redrawn(t, form)
    assert await search(t, "teacher@school.test", again, "pupils", {"in_pupils": ZACH}) == 201
    [card] = _redrawn(t, form).cards
    assert _choices(card)[0] == ZACH and len(_choices(card)) == 51

    # A refused booking keeps a chosen pupil from beyond the first 50 selectable.
    bad = dict(BOOKING, in_pupils=ZACH, in_plan="")
    assert await t.submit("teacher@school.test", _redrawn(t, form), bad) == 201
    [card] = t.last_to("teacher@school.test").cards
    assert ZACH in _choices(card) and _element(card, "in_pupils")["value"] == ZACH
    assert any(attention(e) for e in card["body"])

    # A search from a card without its form definition is answered plainly.
    stale = {"form": "book_call", "search": "pupils", "find_pupils": "Zach"}
    a = t.activity("card_submit_personal", "teacher@school.test", value=stale)
    assert await t.post(a) == 201
    assert "open it again" in t.last_to("teacher@school.test").text
    assert await _rows(t) == ([], [])

    # The consent form's single-pupil picker searches too.
    await t.say("teacher@school.test", "/consent")
    consent_form = t.last_to("teacher@school.test")
    assert (
        await search(t, "teacher@school.test", consent_form, "pupil", {"find_pupil": ZACH.lower()})
        == 201
    )
    [card] = _redrawn(t, consent_form).cards
    assert _choices(card, "in_pupil") == [ZACH]


# ----- the staff picker's choices are per person -----


async def test_off_roster_user_never_sees_staff_emails(teams: Teams) -> None:
    """Right after a teacher opened a form with a staff picker, someone not on the roster
    presses the pupil Search button of a copy of that form: no staff email reaches them."""
    t = teams
    await t.install("teacher@school.test")
    await t.say("teacher@school.test", "book-call")
    form = t.last_to("teacher@school.test")
    assert "colleague@school.test" in form.text  # the teacher's picker lists the roster

    [card] = form.cards
    [button] = [
        b
        for e in card["body"]
        if e["type"] == "ActionSet"
        for b in e["actions"]
        if b["data"].get("search") == "pupils"
    ]
    before = len(t.connector.calls)
    a = t.activity(
        "card_submit_personal",
        "stranger@elsewhere.test",
        value=dict(copy.deepcopy(button["data"]), find_pupils="Sam"),
        replyToId="",
    )
    assert await t.post(a) == 201
    shown = t.connector.calls[before:]
    assert shown  # they got an answer...
    for email in ("teacher@school.test", "colleague@school.test", "dsl@school.test"):
        assert not any(email in c.text for c in shown), email  # ...without the roster
    assert not any("A123456789012" in c.text for c in shown)  # nor pupils
