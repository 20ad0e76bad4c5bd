"""An aiohttp server on 127.0.0.1 standing in for Microsoft Graph: the identity platform's
client-credentials token endpoint, ``sendMail`` (MIME, base64) and the mailbox's Sent Items and
inbox, answering as Graph does (202 for a sent message, 429 with Retry-After when told to)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiohttp import web

CLIENT_ID, CLIENT_SECRET, TENANT = "app-id", "app-secret", "tenant-1"
TOKEN = "graph-token-1"


@dataclass
class Inbox:
    id: str
    received: datetime
    subject: str
    to: str
    raw: bytes


@dataclass
class GraphState:
    sent: list[bytes] = field(default_factory=list)  # MIME as received by sendMail
    token_requests: list[dict[str, str]] = field(default_factory=list)
    throttle: int = 0  # the next N sendMail calls get 429
    retry_after: int = 30
    refuse: bool = False  # sendMail answers 400 ErrorInvalidRecipients
    inbox: list[Inbox] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)  # ids whose $value was read
    unauthorised: int = 0

    def messages(self) -> list[EmailMessage]:
        out = []
        for raw in self.sent:
            m = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(m, EmailMessage)
            out.append(m)
        return out


def _authorised(request: web.Request) -> bool:
    return request.headers.get("Authorization") == f"Bearer {TOKEN}"


@asynccontextmanager
async def graph_server(mailbox: str) -> AsyncIterator[tuple[str, str, GraphState]]:
    """Yields (token URL, API base URL, state)."""
    state = GraphState()

    async def token(request: web.Request) -> web.Response:
        form = dict(await request.post())
        state.token_requests.append({k: str(v) for k, v in form.items()})
        good = (
            form.get("client_id") == CLIENT_ID
            and form.get("client_secret") == CLIENT_SECRET
            and form.get("grant_type") == "client_credentials"
            and form.get("scope") == "https://graph.microsoft.com/.default"
        )
        if not good:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": TOKEN, "expires_in": 3599})

    def mine(request: web.Request) -> bool:
        return request.match_info["user"].lower() == mailbox.lower()

    async def send_mail(request: web.Request) -> web.Response:
        if not _authorised(request) or not mine(request):
            return web.json_response({"error": {"code": "InvalidAuthenticationToken"}}, status=401)
        if state.throttle > 0:
            state.throttle -= 1
            return web.json_response(
                {"error": {"code": "TooManyRequests"}},
                status=429,
                headers={"Retry-After": str(state.retry_after)},
            )
        if state.refuse:
            return web.json_response({"error": {"code": "ErrorInvalidRecipients"}}, status=400)
        if request.content_type != "text/plain":
            return web.json_response({"error": {"code": "ErrorMimeContentInvalid"}}, status=400)
        state.sent.append(base64.b64decode(await request.read(), validate=True))
        return web.Response(status=202)

    async def sent_items(request: web.Request) -> web.Response:
        if not _authorised(request) or not mine(request):
            return web.json_response({}, status=401)
        wanted = request.query.get("$filter", "")
        found = [
            {"id": f"sent-{n}"}
            for n, m in enumerate(state.messages())
            if f"internetMessageId eq '{m['Message-ID']}'" == wanted
        ]
        return web.json_response({"value": found})

    async def inbox(request: web.Request) -> web.Response:
        if not _authorised(request) or not mine(request):
            return web.json_response({}, status=401)
        since = request.query.get("$filter", "")
        rows = []
        for m in state.inbox:
            stamp = m.received.strftime("%Y-%m-%dT%H:%M:%SZ")
            if since and stamp < since.removeprefix("receivedDateTime ge "):
                continue
            rows.append(
                {
                    "id": m.id,
                    "receivedDateTime": stamp,
                    "subject": m.subject,
                    "toRecipients": [{"emailAddress": {"address": m.to}}],
                }
            )
        return web.json_response({"value": rows})

    async def value(request: web.Request) -> web.Response:
        if not _authorised(request) or not mine(request):
            return web.json_response({}, status=401)
        for m in state.inbox:
            if m.id == request.match_info["id"]:
                state.fetched.append(m.id)
                return web.Response(body=m.raw, content_type="message/rfc822")
        return web.json_response({"error": {"code": "ErrorItemNotFound"}}, status=404)

    app = web.Application(client_max_size=50 * 1024 * 1024)
    app.router.add_post(f"/{TENANT}/oauth2/v2.0/token", token)
    app.router.add_post("/v1.0/users/{user}/sendMail", send_mail)
    app.router.add_get("/v1.0/users/{user}/mailFolders/sentitems/messages", sent_items)
    app.router.add_get("/v1.0/users/{user}/mailFolders/inbox/messages", inbox)
    app.router.add_get("/v1.0/users/{user}/messages/{id}/$value", value)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    try:
        yield f"{base}/{TENANT}/oauth2/v2.0/token", f"{base}/v1.0", state
    finally:
        await runner.cleanup()


def settings_env(token_url: str, api_url: str, mailbox: str) -> dict[str, Any]:
    return {
        "GRAPH_MAILBOX": mailbox,
        "MAIL_FROM": mailbox,
        "MicrosoftAppId": CLIENT_ID,
        "MicrosoftAppPassword": CLIENT_SECRET,
        "MicrosoftAppTenantId": TENANT,
        "GRAPH_API_URL": api_url,
        "GRAPH_TOKEN_URL": token_url,
    }
