"""Email through Microsoft Graph, for Microsoft 365 schools (where SMTP logins with passwords
are being switched off): ``sendMail`` from one mailbox with an app registration's
client-credentials token, and reading that mailbox's inbox for replies and bounces.

The email goes as MIME (the bytes the core built), so its Message-ID, Reply-To and both parts
are exactly ours. Before sending again after a crash, Sent Items is searched for the
Message-ID, so a restart never sends the same email twice. 429 and 5xx replies are retried
(after Retry-After when Graph gives one); 400 (a recipient or message refused) is permanent.
"""

from __future__ import annotations

import base64
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from chatbot.config import Settings
from chatbot.ports import DeliveryError, MailboxItem, OutgoingMail

log = logging.getLogger("chatbot.mail.graph")
SCOPE = "https://graph.microsoft.com/.default"
TIMEOUT = aiohttp.ClientTimeout(total=60)
PAGES = 10  # at most this many pages of 50 messages per poll


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    try:
        return float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None


class GraphEmail:
    name = "graph"

    def __init__(
        self,
        mailbox: str,
        client_id: str,
        client_secret: str,
        token_url: str,
        api_url: str,
    ):
        self.sender = mailbox
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_url = token_url
        self.api_url = api_url.rstrip("/")
        self._token: tuple[str, float] | None = None

    @classmethod
    def from_settings(cls, s: Settings) -> GraphEmail:
        return cls(
            s.graph_mailbox,
            s.graph_client_id,
            s.graph_client_secret,
            s.graph_token_endpoint,
            s.graph_api_url,
        )

    @property
    def _user(self) -> str:
        return f"{self.api_url}/users/{quote(self.sender, safe='@')}"

    async def _bearer(self, http: aiohttp.ClientSession) -> str:
        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        form = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": SCOPE,
            "grant_type": "client_credentials",
        }
        async with http.post(self.token_url, data=form) as resp:
            if resp.status != 200:
                raise DeliveryError(f"graph_token_{resp.status}", retry_after=_retry_after(resp))
            body = await resp.json()
        token = str(body.get("access_token", ""))
        if not token:
            raise DeliveryError("graph_token_missing")
        life = float(body.get("expires_in", 3599))
        self._token = (token, time.monotonic() + max(life - 60, 30))
        return token

    async def _call(
        self, method: str, url: str, *, data: bytes | None = None, ctype: str | None = None
    ) -> Any:
        """The JSON body (or None) of one Graph call, with a fresh token after a 401."""
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            for _ in range(2):
                headers = {"Authorization": f"Bearer {await self._bearer(http)}"}
                if ctype:
                    headers["Content-Type"] = ctype
                async with http.request(method, url, data=data, headers=headers) as resp:
                    if resp.status == 401:
                        self._token = None
                        continue
                    if resp.status >= 400:
                        raise _failure(resp)
                    json = resp.content_type == "application/json"
                    return await resp.json() if json else None
        raise DeliveryError("graph_unauthorised_401")

    async def send(self, mail: OutgoingMail) -> None:
        try:
            await self._call(
                "POST",
                f"{self._user}/sendMail",
                data=base64.b64encode(mail.raw),
                ctype="text/plain",
            )
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"graph_{type(exc).__name__}") from None

    async def was_sent(self, message_id: str) -> bool | None:
        wanted = quote("internetMessageId eq '" + message_id.replace("'", "''") + "'")
        url = f"{self._user}/mailFolders/sentitems/messages?$select=id&$top=1&$filter={wanted}"
        try:
            body = await self._call("GET", url)
        except (DeliveryError, aiohttp.ClientError) as exc:
            log.warning("graph: could not look in Sent Items (%s)", getattr(exc, "kind", exc))
            return None
        return bool(body and body.get("value"))

    # ----- the Mailbox port: replies and bounces

    async def received_since(self, since: datetime | None) -> list[MailboxItem]:
        params = "$select=id,receivedDateTime,subject,toRecipients,ccRecipients"
        params += "&$orderby=receivedDateTime&$top=50"
        if since is not None:
            stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            params += "&$filter=" + quote(f"receivedDateTime ge {stamp}")
        url: str | None = f"{self._user}/mailFolders/inbox/messages?{params}"
        items: list[MailboxItem] = []
        for _ in range(PAGES):
            if url is None or not url.startswith(self.api_url):  # never send the token elsewhere
                break
            body = await self._call("GET", url)
            for m in (body or {}).get("value", []):
                item = _item(m)
                if item is not None:
                    items.append(item)
            url = (body or {}).get("@odata.nextLink")
        return items

    async def raw(self, ref: str, limit: int) -> bytes | None:
        url = f"{self._user}/messages/{quote(ref, safe='')}/$value"
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            headers = {"Authorization": f"Bearer {await self._bearer(http)}"}
            async with http.get(url, headers=headers) as resp:
                if resp.status >= 400:
                    raise _failure(resp)
                data = await resp.content.read(limit + 1)
                return None if len(data) > limit else data


def _failure(resp: aiohttp.ClientResponse) -> DeliveryError:
    status = resp.status
    if status == 429 or status >= 500:
        return DeliveryError(f"graph_busy_{status}", retry_after=_retry_after(resp))
    if status in (403, 404):
        # The app may not use this mailbox (see the README's application access policy).
        return DeliveryError(f"graph_mailbox_not_allowed_{status}")
    return DeliveryError(f"graph_refused_{status}", permanent=True)


def _item(m: Any) -> MailboxItem | None:
    if not isinstance(m, dict) or not isinstance(m.get("id"), str):
        return None
    try:
        at = datetime.fromisoformat(str(m.get("receivedDateTime", "")).replace("Z", "+00:00"))
    except ValueError:
        return None
    to: list[str] = []
    for key in ("toRecipients", "ccRecipients"):
        for r in m.get(key) or []:
            address = (r.get("emailAddress") or {}).get("address") if isinstance(r, dict) else None
            if isinstance(address, str):
                to.append(address)
    subject = m.get("subject") if isinstance(m.get("subject"), str) else ""
    return MailboxItem(
        m["id"][:500], at if at.tzinfo else at.replace(tzinfo=UTC), subject, tuple(to)
    )
