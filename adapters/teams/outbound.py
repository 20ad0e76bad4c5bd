"""Replies to the Bot Connector over one shared aiohttp session.

The stock path (``TurnContext.send_activity`` -> msrest ``ConnectorClient``) deep-copies each
activity, serialises it field by field through msrest's model layer and sends it with
``requests`` on a thread pool; for a form card with a hundred choices that is most of a
turn's cost. Here activities are plain JSON built by :mod:`adapters.teams.cards` and posted
with aiohttp. Authentication is unchanged: the bearer token comes from the same
``MicrosoftAppCredentials`` botbuilder would use (through the cached connector factory), and
nothing is sent without one when an app id is configured.

:meth:`Outbound.call` is the one way out: every reply, private reply, member look-up,
proactive send and conversation creation passes it, and it refuses any service URL that is
not allowed (:mod:`adapters.teams.hosts`) before anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import quote

import aiohttp
from botframework.connector.auth import ClaimsIdentity

from adapters.teams.auth import CachingBotFrameworkAuthentication
from adapters.teams.hosts import AllowedHosts, ServiceUrlRefused, describe
from chatbot.config import Settings

log = logging.getLogger("chatbot.teams")

TOKEN_REUSE_SECONDS = 600.0  # tokens live about an hour; msal refreshes well before that


class ConnectorError(Exception):
    def __init__(self, status: int, retry_after: str | None = None):
        super().__init__(f"Bot Connector answered {status}")
        self.status = status
        self.retry_after = retry_after


class Outbound:
    def __init__(
        self, auth: CachingBotFrameworkAuthentication, settings: Settings, hosts: AllowedHosts
    ):
        self.auth = auth
        self.hosts = hosts
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[str, tuple[float, str]] = {}

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=15),
                connector=aiohttp.TCPConnector(limit=100),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _headers(self, service_url: str) -> dict[str, str]:
        app_id = self.settings.teams_app_id
        if not app_id:
            return {}  # Emulator mode: the connector expects no token
        cached = self._tokens.get(service_url)
        if cached and time.monotonic() - cached[0] < TOKEN_REUSE_SECONDS:
            return {"Authorization": f"Bearer {cached[1]}"}
        claims = ClaimsIdentity({"aud": app_id, "appid": app_id}, True)
        client = await self.auth.create_connector_factory(claims).create(service_url, None)
        creds = client.config.credentials
        token = await asyncio.get_running_loop().run_in_executor(None, creds.get_access_token)
        self._tokens[service_url] = (time.monotonic(), token)
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, service_url: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if not self.hosts.allows(service_url):
            log.error(
                "refused a Bot Connector call to %s: not an allowed host", describe(service_url)
            )
            raise ServiceUrlRefused(service_url)
        url = service_url.rstrip("/") + path
        headers = await self._headers(service_url)
        # No redirects: a connector could otherwise send the request on to any host.
        async with self.session().request(
            method, url, json=body, headers=headers, allow_redirects=False
        ) as r:
            if r.status >= 300:
                raise ConnectorError(r.status, r.headers.get("Retry-After"))
            if r.content_length == 0:
                return {}
            try:
                data = await r.json(content_type=None)
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}

    async def send(
        self,
        service_url: str,
        conversation_id: str,
        activity: dict[str, Any],
        reply_to: str | None = None,
    ) -> str:
        path = f"/v3/conversations/{quote(conversation_id, safe='')}/activities"
        if reply_to:
            path += "/" + quote(reply_to, safe="")
        res = await self.call("POST", service_url, path, activity)
        return str(res.get("id") or "")

    async def update(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> None:
        path = (
            f"/v3/conversations/{quote(conversation_id, safe='')}/activities/"
            f"{quote(activity_id, safe='')}"
        )
        await self.call("PUT", service_url, path, dict(activity, id=activity_id))

    async def member(
        self, service_url: str, conversation_id: str, member_id: str
    ) -> dict[str, Any]:
        """A member's Teams profile (``email``, ``userPrincipalName``...): the same request
        botbuilder's ``TeamsInfo.get_member`` makes, through the one checked way out."""
        path = (
            f"/v3/conversations/{quote(conversation_id, safe='')}/members/"
            f"{quote(member_id, safe='')}"
        )
        return await self.call("GET", service_url, path)
