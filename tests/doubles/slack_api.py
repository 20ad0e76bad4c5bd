"""A loopback stand-in for the Slack Web API, for tests and the benchmark.

A real aiohttp server on 127.0.0.1 that records every method called with its body and answers
the way Slack does for the methods the adapter uses. ``fail_next`` makes the next calls answer
HTTP 429 (with ``Retry-After``) or 5xx, to show the outbox recovers without losing anything.
``slow`` holds a method's answer back for a while (the message is posted at once, as Slack
would, and only the answer is late), so a test can kill a replica while a send is in flight;
``in_flight`` lists the calls not yet answered.
Also serves ``response_url`` posts at ``/response/<id>``, and Socket Mode: with ``app_token``
set, ``apps.connections.open`` hands out a websocket on this server, and :meth:`envelope`
sends an envelope down it and waits for the app's acknowledgement.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    token: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when it arrived

    @property
    def outbox_id(self) -> int | None:
        """The outbox id the bot put in the message's metadata, if any."""
        metadata = self.body.get("metadata")
        if isinstance(metadata, str):  # form-encoded bodies carry it as JSON text
            metadata = json.loads(metadata)
        if not isinstance(metadata, dict):
            return None
        value = (metadata.get("event_payload") or {}).get("outbox_id")
        return int(value) if value is not None else None


@dataclass
class Failure:
    status: int
    retry_after: float | None = None
    methods: tuple[str, ...] = ()  # empty: any method
    error: str = ""  # HTTP 200 with ok:false and this error, when status == 200


@dataclass
class FakeSlackAPI:
    token: str = "xoxb-test"
    users: dict[str, str] = field(default_factory=dict)  # user id -> email
    bots: set[str] = field(default_factory=set)
    missing_channels: set[str] = field(default_factory=set)
    bot_user_id: str = "UBOT"
    team_id: str = "T0SCHOOL"
    record: bool = True
    calls: list[Call] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # response_url posts
    failures: list[Failure] = field(default_factory=list)
    app_token: str = ""  # set: Socket Mode connections are accepted for this token
    socket_acks: list[dict[str, Any]] = field(default_factory=list)  # what the app sent back
    slow: dict[str, float] = field(default_factory=dict)  # method -> seconds to hold the answer
    in_flight: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._n = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._sockets: list[web.WebSocketResponse] = []
        self._connected = asyncio.Event()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    # ----- control -----

    def fail_next(
        self,
        n: int,
        status: int = 500,
        retry_after: float | None = None,
        methods: tuple[str, ...] = (),
        error: str = "",
    ) -> None:
        self.failures.extend(Failure(status, retry_after, methods, error) for _ in range(n))

    def called(self, method: str) -> list[dict[str, Any]]:
        return [c.body for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def clear(self) -> None:
        self.calls.clear()
        self.responses.clear()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, key: str = "r1") -> str:
        return f"{self.url}/response/{key}"

    # ----- server -----

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response)
        app.router.add_get("/socket", self._socket)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _body(self, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                body.update(json.loads(raw))
            else:
                form = await request.post()
                body.update({k: v for k, v in form.items() if isinstance(v, str)})
        # Slack also accepts JSON-encoded fields in form bodies (blocks, view).
        for key in ("view", "blocks"):
            if isinstance(body.get(key), str):
                try:
                    body[key] = json.loads(body[key])
                except ValueError:
                    pass
        return body

    def _failure(self, method: str) -> Failure | None:
        for i, f in enumerate(self.failures):
            if not f.methods or method in f.methods:
                return self.failures.pop(i)
        return None

    async def _response(self, request: web.Request) -> web.Response:
        body = await request.json()
        body["_key"] = request.match_info["key"]
        if self.record:
            self.responses.append(body)
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await self._body(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or str(body.get("token", ""))
        call = Call(method, body, token)
        if self.record:
            self.calls.append(call)
        failure = self._failure(method)
        if failure is not None:
            if failure.status == 429:
                headers = {"Retry-After": str(int(failure.retry_after or 1))}
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers=headers
                )
            if failure.status == 200:
                return web.json_response({"ok": False, "error": failure.error or "fatal_error"})
            return web.Response(status=failure.status, text="upstream trouble")
        if method == "apps.connections.open":
            if self.app_token and token == self.app_token:
                ws_url = self.url.replace("http://", "ws://", 1) + "/socket"
                result: dict[str, Any] = {"ok": True, "url": ws_url}
            else:
                result = {"ok": False, "error": "not_allowed_token_type"}
        elif token != self.token:
            result = {"ok": False, "error": "invalid_auth"}
        else:
            handler = getattr(self, "m_" + method.replace(".", "_"), None)
            result = handler(body) if handler else {"ok": False, "error": "unknown_method"}
        call.result = result
        if self.slow.get(method):
            self.in_flight.append(call)
            try:
                await asyncio.sleep(self.slow[method])
            finally:
                self.in_flight.remove(call)
        return web.json_response(result)

    # ----- Socket Mode -----

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0TEST"}}
        )
        self._connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                ack = json.loads(msg.data)
                if self.record:
                    self.socket_acks.append(ack)
                waiter = self._waiting.pop(str(ack.get("envelope_id")), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(ack)
        finally:
            self._sockets.remove(ws)
        return ws

    async def connected(self) -> None:
        await asyncio.wait_for(self._connected.wait(), 10)

    async def envelope(
        self, kind: str, payload: dict[str, Any], retry_attempt: int = 0
    ) -> dict[str, Any]:
        """Send one Socket Mode envelope (``slash_commands``, ``interactive`` or
        ``events_api``) and return the app's acknowledgement."""
        await self.connected()
        envelope_id = f"env-{next(self._n)}"
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[envelope_id] = waiter
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": retry_attempt,
                "retry_reason": "timeout" if retry_attempt else "",
            }
        )
        return await asyncio.wait_for(waiter, 10)

    # ----- methods -----

    def _ts(self) -> str:
        n = next(self._n)
        return f"{1780000000 + n}.{n:06d}"

    def m_auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://school.slack.test/",
            "team": "School",
            "user": "videobot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0BOT",
        }

    def _channel(self, channel: str) -> str:
        # Posting to a user id goes to the bot's DM with them.
        return "D" + channel[1:] if channel[:1] in ("U", "W") else channel

    def m_chat_postMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = str(body.get("channel", ""))
        if not channel or channel in self.missing_channels:
            return {"ok": False, "error": "channel_not_found"}
        if channel[:1] in ("U", "W") and channel not in self.users and channel not in self.bots:
            return {"ok": False, "error": "channel_not_found"}
        ts = self._ts()
        return {
            "ok": True,
            "channel": self._channel(channel),
            "ts": ts,
            "message": {"text": body.get("text", ""), "ts": ts},
        }

    def m_chat_postEphemeral(self, body: dict[str, Any]) -> dict[str, Any]:
        if str(body.get("channel", "")) in self.missing_channels:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "message_ts": self._ts()}

    def m_chat_update(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("ts"):
            return {"ok": False, "error": "message_not_found"}
        return {
            "ok": True,
            "channel": body.get("channel"),
            "ts": body.get("ts"),
            "text": body.get("text", ""),
        }

    def _view(self, body: dict[str, Any]) -> dict[str, Any]:
        view = body.get("view") or {}
        if not isinstance(view, dict) or not view.get("type"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": {**view, "id": f"V{next(self._n):08d}"}}

    def m_views_open(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return self._view(body)

    m_views_push = m_views_open

    def m_views_update(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._view(body)

    def m_views_publish(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._view(body)

    def m_users_info(self, body: dict[str, Any]) -> dict[str, Any]:
        uid = str(body.get("user", ""))
        if uid in self.bots:
            return {
                "ok": True,
                "user": {
                    "id": uid,
                    "name": "helperbot",
                    "is_bot": True,
                    "real_name": "Helper Bot",
                    "profile": {},
                },
            }
        email = self.users.get(uid)
        if email is None:
            return {"ok": False, "error": "user_not_found"}
        name = email.split("@")[0]
        return {
            "ok": True,
            "user": {
                "id": uid,
                "team_id": self.team_id,
                "name": name,
                "real_name": name.title(),
                "is_bot": False,
                "deleted": False,
                "profile": {"email": email, "real_name": name.title()},
            },
        }

    def m_users_lookupByEmail(self, body: dict[str, Any]) -> dict[str, Any]:
        email = str(body.get("email", "")).lower()
        for uid, e in self.users.items():
            if e.lower() == email:
                return {
                    "ok": True,
                    "user": {"id": uid, "name": e.split("@")[0], "profile": {"email": e}},
                }
        return {"ok": False, "error": "users_not_found"}


# ----- the other direction: requests signed exactly as Slack signs them -----


def signature(secret: str, timestamp: str, body: str | bytes) -> str:
    """``v0=`` + HMAC-SHA256 of ``v0:<timestamp>:<body>`` with the signing secret."""
    import hashlib
    import hmac

    base = f"v0:{timestamp}:".encode() + (body if isinstance(body, bytes) else body.encode())
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str,
    body: str,
    content_type: str,
    timestamp: int | None = None,
    retry_num: int | None = None,
) -> dict[str, str]:
    import time

    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(secret, ts, body),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


def command_body(fields: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(fields)


def interactive_body(payload: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode({"payload": json.dumps(payload)})


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
