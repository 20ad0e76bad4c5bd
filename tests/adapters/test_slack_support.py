"""Support for the test_slack_* modules (no tests here).

Drives the real server over HTTP with payloads signed as Slack signs them, against the
loopback Slack Web API in tests.doubles.slack_api. Shared by the test_slack_* modules."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapters.server import Runtime, build_app, runtime_for
from adapters.slack import SLACK, SlackAdapter
from chatbot.config import Settings
from chatbot.uow import Units
from tests.doubles.slack_api import (
    FORM,
    JSON,
    FakeSlackAPI,
    command_body,
    interactive_body,
    signed_headers,
)

PAYLOADS = Path(__file__).parents[1] / "payloads" / "slack"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0SCHOOL"
USERS = {
    "U0TEACHER": "teacher@school.test",
    "U0COLLEAG": "colleague@school.test",
    "U0OTHER": "other@school.test",
    "U0SLT": "slt@school.test",
    "U0DSL": "dsl@school.test",
    "U0DEPUTY": "deputy@school.test",
    "U0HEAD": "head@school.test",
    "U0STRANGE": "stranger@elsewhere.test",  # in the workspace, not on the staff roster
}
BOTS = {"U0HELPBOT"}


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())


def state_for(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``view.state`` as Slack sends it for the given values (core conventions in, Slack out);
    user pickers take Slack user ids."""
    state: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        el = block["element"]
        kind, bid, aid = el["type"], block["block_id"], el["action_id"]
        v = values.get(bid)
        s: dict[str, Any] = {"type": kind}
        if kind in ("plain_text_input", "number_input"):
            s["value"] = v if v not in (None, "") else None
        elif kind == "datepicker":
            s["selected_date"] = v or None
        elif kind == "timepicker":
            s["selected_time"] = v or None
        elif kind == "users_select":
            s["selected_user"] = v or None
        elif kind in ("static_select", "external_select"):
            s["selected_option"] = (
                {"text": {"type": "plain_text", "text": str(v)}, "value": v} if v else None
            )
        else:
            items = v if isinstance(v, list) else ([v] if v else [])
            s["selected_options"] = [
                {"text": {"type": "plain_text", "text": str(x)}, "value": x} for x in items
            ]
        state[bid] = {aid: s}
    return {"values": state}


def submission(
    user: str, view: dict[str, Any], values: dict[str, Any], trigger_id: str
) -> dict[str, Any]:
    """A ``view_submission`` payload for ``view`` filled in with ``values`` by ``user``."""
    p = payload("view_submission_book_call.json")
    p["user"] = {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM}
    p["trigger_id"] = trigger_id
    v = copy.deepcopy(view)
    v.update(id=p["view"]["id"], hash=p["view"]["hash"], state=state_for(view, values))
    p["view"] = {**p["view"], **v}
    return p


@dataclass
class Slack:
    """One running server (``url``) plus the fake Web API (``api``)."""

    url: str
    api: FakeSlackAPI
    runtime: Runtime
    adapter: SlackAdapter
    session: aiohttp.ClientSession
    secret: str = SECRET
    _n: Any = field(default_factory=lambda: itertools.count(1))

    def trigger(self) -> str:
        return f"1334522{next(self._n):04d}.738474920.{next(self._n):032x}"

    async def post(
        self,
        body: str,
        content_type: str,
        headers: dict[str, str] | None = None,
        retry_num: int | None = None,
        timestamp: int | None = None,
    ) -> tuple[int, Any]:
        h = signed_headers(self.secret, body, content_type, timestamp, retry_num)
        if headers is not None:
            h = headers
        async with self.session.post(
            self.url + "/slack/events", data=body.encode(), headers=h
        ) as resp:
            text = await resp.text()
            status = resp.status
        await self.adapter.wait_idle()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    async def command(
        self, user: str, command: str, text: str = "", channel: str = "C0STAFFRM"
    ) -> tuple[int, Any, dict[str, Any]]:
        fields = payload("command_book_call.json")
        trigger = self.trigger()
        fields.update(
            user_id=user,
            user_name=user.lower(),
            command=command,
            text=text,
            channel_id=channel,
            trigger_id=trigger,
            response_url=self.api.response_url(f"cmd-{trigger}"),
        )
        status, body = await self.post(command_body(fields), FORM)
        return status, body, fields

    def opened(self, trigger_id: str | None = None) -> dict[str, Any]:
        """The last view opened (optionally by this trigger id)."""
        calls = [
            c
            for c in self.api.called("views.open")
            if trigger_id is None or c["trigger_id"] == trigger_id
        ]
        assert calls, f"no views.open{' for ' + trigger_id if trigger_id else ''}"
        return calls[-1]["view"]

    async def open_form(self, user: str, command: str, text: str = "") -> dict[str, Any]:
        status, body, fields = await self.command(user, command, text)
        assert status == 200, (status, body)
        return self.opened(fields["trigger_id"])

    async def submit(
        self,
        user: str,
        view: dict[str, Any],
        values: dict[str, Any],
        trigger_id: str | None = None,
        retry_num: int | None = None,
    ) -> tuple[int, Any]:
        p = submission(user, view, values, trigger_id or self.trigger())
        return await self.post(interactive_body(p), FORM, retry_num=retry_num)

    async def click(
        self,
        user: str,
        message: dict[str, Any],
        action: str,
        channel: str,
        ts: str,
        ephemeral: bool = False,
        trigger_id: str | None = None,
        retry_num: int | None = None,
    ) -> tuple[int, Any, dict[str, Any]]:
        """Click the button named ``action`` on a message posted with ``message`` as its body."""
        button = next(
            e
            for b in message.get("blocks", [])
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"].split("#")[0] == action
        )
        p = payload("block_actions_cohost_accept.json")
        p["user"] = {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM}
        p["container"] = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        }
        p["channel"] = {"id": channel, "name": "directmessage" if channel[0] == "D" else "x"}
        p["message"] = {
            **p["message"],
            "ts": ts,
            "text": message.get("text", ""),
            "blocks": message.get("blocks", []),
        }
        p["trigger_id"] = trigger_id or self.trigger()
        p["response_url"] = self.api.response_url(f"act-{p['trigger_id']}")
        p["actions"] = [
            {
                **p["actions"][0],
                "action_id": button["action_id"],
                "value": button.get("value", ""),
                "text": button["text"],
            }
        ]
        status, body = await self.post(interactive_body(p), FORM, retry_num=retry_num)
        return status, body, p

    async def click_home(
        self, user: str, view: dict[str, Any], action: str, value: str | None = None
    ) -> tuple[int, Any]:
        button = next(
            e
            for b in view["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"].split("#")[0] == action and (value is None or e["value"] == value)
        )
        p = payload("block_actions_cohost_accept.json")
        p["user"] = {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM}
        p["container"] = {"type": "view", "view_id": "V0HOME"}
        p["view"] = {**view, "id": "V0HOME", "type": "home"}
        for key in ("channel", "message", "response_url"):
            p.pop(key, None)
        p["trigger_id"] = self.trigger()
        p["actions"] = [
            {
                **p["actions"][0],
                "action_id": button["action_id"],
                "value": button.get("value", ""),
                "text": button["text"],
            }
        ]
        return await self.post(interactive_body(p), FORM)

    async def suggest(
        self, user: str, action_id: str, query: str, block_id: str | None = None
    ) -> tuple[int, Any]:
        """A picker's search (``block_suggestion``): ``action_id`` is the picker's kind,
        ``block_id`` its input (the same for pupil pickers)."""
        p = payload("block_suggestion_pupils.json")
        p["user"] = {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM}
        p.update(action_id=action_id, block_id=block_id or action_id, value=query)
        return await self.post(interactive_body(p), FORM)

    async def event(self, body: dict[str, Any], retry_num: int | None = None) -> tuple[int, Any]:
        return await self.post(json.dumps(body), JSON, retry_num=retry_num)

    def posts_to(self, channel: str) -> list[dict[str, Any]]:
        """Successful chat.postMessage calls to a channel or user id, with their ref."""
        out = []
        for c in self.api.calls:
            if (
                c.method == "chat.postMessage"
                and c.body.get("channel") == channel
                and c.result.get("ok")
            ):
                out.append({**c.body, "_channel": c.result["channel"], "_ts": c.result["ts"]})
        return out


@asynccontextmanager
async def running(core: Units, **settings: Any) -> AsyncIterator[Slack]:
    """The real aiohttp app (adapters.server.build_app) on 127.0.0.1:0, Slack configured to
    talk to a FakeSlackAPI on another loopback port."""
    api = FakeSlackAPI(users=dict(USERS), bots=set(BOTS), team_id=TEAM)
    await api.start()
    values: dict[str, Any] = dict(
        slack_bot_token=api.token,
        slack_signing_secret=SECRET,
        slack_api_url=api.api_url,
        slack_dsl_channel="C0DSL",
        slack_slt_channel="C0SLT",
    )
    values.update(settings)
    runtime = runtime_for(core, Settings(**values))
    app = build_app(runtime, with_scheduler=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    adapter = app.get(SLACK)
    async with aiohttp.ClientSession() as session:
        try:
            yield Slack(f"http://127.0.0.1:{port}", api, runtime, adapter, session)  # type: ignore[arg-type]
        finally:
            await runner.cleanup()
            await api.stop()
