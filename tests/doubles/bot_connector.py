"""A stand-in Bot Connector on 127.0.0.1 for tests, the benchmark and offline demos.

Records what the bot sends (``POST /v3/conversations/{id}/activities[/{replyTo}]``, ``PUT``
updates, ``POST /v3/conversations``) and answers member look-ups
(``GET /v3/conversations/{id}/members/{member}``) from a small table of people.
``fail_next`` makes the next calls answer with a given status (and headers), to exercise 429s
and outages. ``requests`` lists every request that reached it, look-ups included, and
``authorizations`` the Authorization header each one carried.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler


@dataclass
class Call:
    method: str
    conversation_id: str
    activity_id: str  # the new activity's id (POST, CREATE) or the one updated (PUT)
    body: dict[str, Any]
    reply_to: str = ""

    @property
    def cards(self) -> list[dict[str, Any]]:
        atts = (
            self.body.get("attachments")
            or (self.body.get("activity") or {}).get("attachments")
            or []
        )
        return [
            a["content"]
            for a in atts
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]

    @property
    def text(self) -> str:
        """Everything readable in the activity (text, summary and card text)."""
        parts = [str(self.body.get("text") or ""), str(self.body.get("summary") or "")]
        parts += [json.dumps(c) for c in self.cards]
        return " ".join(parts)


@dataclass
class LoopbackConnector:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # "GET /v3/...", every one received
    authorizations: list[str] = field(default_factory=list)  # each one's Authorization header
    fail_next: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    record: bool = True
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    runner: web.AppRunner | None = None
    url: str = ""

    def add_member(self, member_id: str, aad_id: str, email: str, name: str = "") -> None:
        m = {
            "id": member_id,
            "aadObjectId": aad_id,
            "name": name or email,
            "email": email,
            "userPrincipalName": email,
            "tenantId": "tenant-1",
        }
        self.members[member_id] = m
        self.members[aad_id] = m

    def _fail(self) -> web.Response | None:
        if self.fail_next:
            status, headers = self.fail_next.pop(0)
            return web.json_response(
                {"error": {"code": "Failure", "message": "injected"}},
                status=status,
                headers=headers,
            )
        return None

    async def _activity(self, request: web.Request) -> web.Response:
        if (failed := self._fail()) is not None:
            return failed
        body = await request.json()
        new_id = f"act-{next(self._ids)}"
        if self.record:
            self.calls.append(
                Call(
                    "POST",
                    request.match_info["conv"],
                    new_id,
                    body,
                    request.match_info.get("reply", ""),
                )
            )
        return web.json_response({"id": new_id})

    async def _update(self, request: web.Request) -> web.Response:
        if (failed := self._fail()) is not None:
            return failed
        body = await request.json()
        self.calls.append(Call("PUT", request.match_info["conv"], request.match_info["act"], body))
        return web.json_response({"id": request.match_info["act"]})

    async def _member(self, request: web.Request) -> web.Response:
        m = self.members.get(request.match_info["member"])
        if m is None:
            return web.json_response({"error": {"code": "MemberNotFound"}}, status=404)
        return web.json_response(m)

    async def _create(self, request: web.Request) -> web.Response:
        if (failed := self._fail()) is not None:
            return failed
        body = await request.json()
        n = next(self._ids)
        channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
        conv = f"{channel};messageid=act-{n}" if channel else f"a:created-{n}"
        self.calls.append(Call("CREATE", conv, f"act-{n}", body))
        return web.json_response({"id": conv, "activityId": f"act-{n}"})

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.record:
            self.requests.append(f"{request.method} {request.path}")
            self.authorizations.append(request.headers.get("Authorization", ""))
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{conv}/activities", self._activity)
        app.router.add_post("/v3/conversations/{conv}/activities/{reply}", self._activity)
        app.router.add_put("/v3/conversations/{conv}/activities/{act}", self._update)
        app.router.add_get("/v3/conversations/{conv}/members/{member}", self._member)
        return app

    async def start(self, host: str = "127.0.0.1") -> str:
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://{host}:{port}/"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def sent(self, conversation_id: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method in ("POST", "CREATE")
            and (conversation_id is None or c.conversation_id.split(";")[0] == conversation_id)
        ]

    def updates(self) -> list[Call]:
        return [c for c in self.calls if c.method == "PUT"]
