"""A loopback stand-in for Zoom's OAuth token endpoint and REST API v2, and Zoom's webhook
signing, for tests.

A real aiohttp server on 127.0.0.1 that records every call with its body and answers as Zoom
does for the endpoints the bot uses: the account-credentials token (Basic auth), create / get
/ update / delete / list meetings, and get / update user settings. Controls:

- ``fail_next`` answers the next matching calls with 429 (``Retry-After``, optionally the
  daily per-user limit's headers and message) or 5xx, or any other status;
- ``expire_tokens`` makes every token issued so far invalid (401, code 124), as an expiry
  between two calls would;
- ``forced`` overrides meeting settings in every answer, as an account-level lock does;
- ``hold`` lets a create reach Zoom (the meeting exists) while its answer is held back, so a
  test can kill the worker between Zoom's create and the bot storing the answer;
- ``users`` maps each Zoom user's email to its settings; anyone else gets 404, code 1001.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

ACCOUNT = "acc-school"
CLIENT_ID = "zoom-client-id"
CLIENT_SECRET = "zoom-client-secret-9f8e7d"
WEBHOOK_SECRET = "zoom-webhook-secret-1a2b3c"
SCOPES = (
    "meeting:write:meeting:admin meeting:read:meeting:admin meeting:update:meeting:admin "
    "meeting:delete:meeting:admin meeting:read:list_meetings:admin user:read:settings:admin"
)
COMPLIANT = {
    "screen_sharing": True,
    "who_can_share_screen": "host",
    "allow_participants_to_rename": False,
}


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    token: str
    status: int = 0


@dataclass
class Failure:
    status: int
    retry_after: str | None = None
    method: str | None = None  # None: any
    path: str = ""  # a part of the path; "": any
    daily: bool = False


@dataclass
class FakeZoom:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # email -> in_meeting settings
    expires_in: int = 3599
    scopes: str = SCOPES
    forced: dict[str, Any] = field(default_factory=dict)  # settings every answer reports
    refuse_alternative_hosts: bool = False  # as for a co-host without a licence in the account
    meetings: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    token_requests: int = 0
    failures: list[Failure] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(81234567890)
        self._tokens: set[str] = set()
        self._n = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._holds: dict[str, asyncio.Event] = {}
        self.reached: dict[str, asyncio.Event] = {}
        self.url = ""

    # ----- control

    def fail_next(
        self,
        n: int,
        status: int,
        retry_after: str | None = None,
        method: str | None = None,
        path: str = "",
        daily: bool = False,
    ) -> None:
        self.failures.extend(Failure(status, retry_after, method, path, daily) for _ in range(n))

    def expire_tokens(self) -> None:
        self._tokens.clear()

    def hold(self, method: str) -> asyncio.Event:
        """Hold back the answers to ``method`` calls (after doing what they ask) until the
        returned event is set; ``reached[method]`` is set when one arrives."""
        self._holds[method] = asyncio.Event()
        self.reached[method] = asyncio.Event()
        return self._holds[method]

    def answer_at_once(self, method: str) -> None:
        """Answer later ``method`` calls at once (those already held stay held)."""
        self._holds.pop(method, None)

    def called(self, method: str, path_part: str = "") -> list[Call]:
        return [c for c in self.calls if c.method == method and path_part in c.path]

    def api_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path.startswith("/v2/")]

    @property
    def api_url(self) -> str:
        return f"{self.url}/v2"

    @property
    def oauth_url(self) -> str:
        return f"{self.url}/oauth/token"

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Settings(...) keywords pointing the bot at this server."""
        return dict(
            zoom_account_id=ACCOUNT,
            zoom_client_id=CLIENT_ID,
            zoom_client_secret=CLIENT_SECRET,
            zoom_webhook_secret=WEBHOOK_SECRET,
            zoom_api_url=self.api_url,
            zoom_oauth_url=self.oauth_url,
            **extra,
        )

    # ----- server

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/oauth/token", self._token)
        app.router.add_route("*", "/v2/{tail:.*}", self._api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        for event in self._holds.values():
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        q = request.query
        if (
            request.headers.get("Authorization") != f"Basic {expected}"
            or q.get("grant_type") != "account_credentials"
            or q.get("account_id") != ACCOUNT
        ):
            return web.json_response(
                {"reason": "Invalid client_id or client_secret", "error": "invalid_client"},
                status=400,
            )
        token = f"tok-{next(self._n)}"
        self._tokens.add(token)
        return web.json_response(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.expires_in,
                "scope": self.scopes,
                "api_url": self.url,
            }
        )

    def _failure(self, method: str, path: str) -> Failure | None:
        for f in self.failures:
            if (f.method is None or f.method == method) and f.path in path:
                self.failures.remove(f)
                return f
        return None

    async def _api(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        call = Call(request.method, request.path, dict(request.query), body, token)
        self.calls.append(call)
        resp = await self._answer(request.method, request.path, dict(request.query), body, token)
        call.status = resp.status
        hold = self._holds.get(request.method)
        if hold is not None and 200 <= resp.status < 300:
            self.reached[request.method].set()
            await hold.wait()
        return resp

    async def _answer(
        self, method: str, path: str, query: dict[str, str], body: Any, token: str
    ) -> web.Response:
        if token not in self._tokens:
            return web.json_response({"code": 124, "message": "Invalid access token."}, status=401)
        failure = self._failure(method, path)
        if failure is not None:
            return self._failed(failure)
        parts = path.removeprefix("/v2/").split("/")
        if parts[0] == "users" and len(parts) >= 3:
            email = parts[1].lower()
            if email not in self.users:
                return web.json_response(
                    {"code": 1001, "message": f"User does not exist: {email}."}, status=404
                )
            if parts[2] == "meetings" and method == "POST":
                return self._create(email, body)
            if parts[2] == "meetings" and method == "GET":
                return self._list(email, query)
            if parts[2] == "settings" and method == "GET":
                return web.json_response({"in_meeting": dict(self.users[email])})
            if parts[2] == "settings" and method == "PATCH":
                self.users[email].update((body or {}).get("in_meeting", {}))
                return web.Response(status=204)
        if parts[0] == "meetings" and len(parts) == 2:
            meeting = self.meetings.get(parts[1])
            if meeting is None:
                return web.json_response(
                    {"code": 3001, "message": "Meeting does not exist."}, status=404
                )
            if method == "GET":
                return web.json_response(self._shown(meeting))
            if method == "DELETE":
                del self.meetings[parts[1]]
                return web.Response(status=204)
            if method == "PATCH":
                refused = self._refused(body)
                if refused is not None:
                    return refused
                self._apply(meeting, body)
                return web.Response(status=204)
        return web.json_response({"code": 300, "message": "Not found here."}, status=404)

    def _failed(self, f: Failure) -> web.Response:
        headers: dict[str, str] = {}
        if f.retry_after is not None:
            headers["Retry-After"] = f.retry_after
        message = "Internal error."
        if f.status == 429:
            headers["X-RateLimit-Type"] = "Daily-limit" if f.daily else "QPS"
            message = (
                "You have exceeded the daily rate limit (100) of Meeting Create/Update API "
                "requests permitted for this particular user. You may resume these requests "
                "at GMT 00:00:00."
                if f.daily
                else "You have reached the maximum per-second rate limit for this API."
            )
        code = f.status if f.status == 429 else 300
        return web.json_response(
            {"code": code, "message": message}, status=f.status, headers=headers
        )

    def _refused(self, body: Any) -> web.Response | None:
        hosts = ((body or {}).get("settings") or {}).get("alternative_hosts")
        if self.refuse_alternative_hosts and hosts:
            return web.json_response(
                {"code": 1115, "message": f"Invalid alternative host: {hosts}"}, status=400
            )
        return None

    def _create(self, email: str, body: Any) -> web.Response:
        refused = self._refused(body)
        if refused is not None:
            return refused
        meeting_id = str(next(self._ids))
        n = next(self._n)
        meeting: dict[str, Any] = {
            "id": int(meeting_id),
            "uuid": f"uu{n}AbC+dEf==",
            "host_email": email,
            "host_id": f"zu-{hashlib.sha256(email.encode()).hexdigest()[:10]}",
            "type": 2,
            "join_url": f"https://zoom.example/j/{meeting_id}?pwd=JoinSecret{n}x",
            "start_url": f"https://zoom.example/s/{meeting_id}?zak=StartSecret{n}y",
            "password": "",
            "settings": {},
            "created_at": datetime.now(UTC).isoformat(),
        }
        self._apply(meeting, body)
        self.meetings[meeting_id] = meeting
        return web.json_response(self._shown(meeting), status=201)

    def _apply(self, meeting: dict[str, Any], body: Any) -> None:
        body = body or {}
        for key in ("topic", "duration", "timezone", "agenda"):
            if key in body:
                meeting[key] = body[key]
        if "password" in body:
            meeting["password"] = body["password"]
        if "start_time" in body:
            local = datetime.fromisoformat(body["start_time"])
            zone = ZoneInfo(body.get("timezone") or meeting.get("timezone") or "UTC")
            start = local.replace(tzinfo=zone) if local.tzinfo is None else local
            meeting["start_time"] = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        meeting["settings"] = {**meeting.get("settings", {}), **(body.get("settings") or {})}

    def _shown(self, meeting: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in meeting.items() if k != "host_email"}
        out["settings"] = {**meeting["settings"], **self.forced}
        return out

    def _list(self, email: str, query: dict[str, str]) -> web.Response:
        mine = [m for m in self.meetings.values() if m["host_email"] == email]
        size = int(query.get("page_size", "30"))
        start = int(query.get("next_page_token") or 0)
        page = mine[start : start + size]
        following = str(start + size) if start + size < len(mine) else ""
        return web.json_response(
            {
                "page_size": size,
                "total_records": len(mine),
                "next_page_token": following,
                "meetings": [
                    {
                        k: m.get(k)
                        for k in (
                            "id",
                            "uuid",
                            "host_id",
                            "topic",
                            "type",
                            "start_time",
                            "duration",
                            "timezone",
                            "agenda",
                            "join_url",
                            "created_at",
                        )
                    }
                    for m in page
                ],
            }
        )


# ----- webhooks, signed exactly as Zoom signs them


def webhook_headers(
    body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {
        "Content-Type": "application/json; charset=utf-8",
        "x-zm-request-timestamp": ts,
        "x-zm-signature": f"v0={digest.hexdigest()}",
        "User-Agent": "Zoom Marketplace/1.0a",
    }


def _z(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meeting_event(
    event: str,
    meeting: dict[str, Any],
    at: datetime,
    participant: dict[str, Any] | None = None,
    event_ts: int | None = None,
) -> dict[str, Any]:
    """A webhook body as Zoom sends it for ``meeting`` (as the fake stored it)."""
    obj: dict[str, Any] = {
        "id": str(meeting["id"]),
        "uuid": meeting["uuid"],
        "host_id": meeting["host_id"],
        "topic": meeting.get("topic", ""),
        "type": 2,
        "start_time": _z(at) if event == "meeting.started" else meeting.get("start_time"),
        "timezone": meeting.get("timezone", "Europe/London"),
        "duration": meeting.get("duration", 30),
    }
    if event == "meeting.ended":
        obj["end_time"] = _z(at)
    if participant is not None:
        p = dict(participant)
        field_name = {
            "meeting.participant_joined": "join_time",
            "meeting.participant_left": "leave_time",
        }.get(event, "date_time")
        p[field_name] = _z(at)
        obj["participant"] = p
    return {
        "event": event,
        "event_ts": event_ts if event_ts is not None else int(at.timestamp() * 1000) + 17,
        "payload": {"account_id": ACCOUNT, "object": obj},
    }


def person(name: str, email: str = "", host_id: str = "", n: int = 1) -> dict[str, Any]:
    """A participant as Zoom describes them (``host_id``: they are the meeting's host)."""
    return {
        "user_id": str(16778240 + n),
        "user_name": name,
        "id": host_id or (f"zu-p{n}" if email else ""),
        "participant_uuid": f"pu-{n}-{name.split()[0].lower()}",
        "email": email,
        "registrant_id": "",
        "participant_user_id": host_id,
    }


def at_offset(base: datetime, minutes: float) -> datetime:
    return base + timedelta(minutes=minutes)
