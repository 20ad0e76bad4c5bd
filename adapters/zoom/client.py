"""The Zoom REST API client behind the core's :class:`chatbot.ports.Meetings` port (aiohttp).

Authentication is a Server-to-Server OAuth app: ``POST {ZOOM_OAUTH_URL}?grant_type=
account_credentials&account_id=...`` with the client id and secret as HTTP Basic auth gives an
``access_token`` and its ``expires_in`` (seconds). The token is kept until shortly before it
expires; a 401 from the API (Zoom code 124, invalid or expired token) fetches a new one once
and repeats the request.

Endpoints and fields relied on (Zoom API v2 reference; the types in zoom/rivet-javascript):

- ``POST /users/{userId}/meetings`` (Create a meeting; userId may be the email): ``topic``,
  ``type`` 2 (scheduled), ``start_time`` (local ``yyyy-MM-ddTHH:mm:ss`` read in ``timezone``),
  ``duration`` (minutes), ``timezone``, ``password``, ``agenda``, ``settings.host_video``,
  ``participant_video``, ``join_before_host``, ``waiting_room``, ``alternative_hosts``.
  Answer: ``id``, ``uuid``, ``join_url``, ``password``, ``start_time`` (UTC), ``settings``.
- ``GET /meetings/{meetingId}``, ``PATCH /meetings/{meetingId}`` (204),
  ``DELETE /meetings/{meetingId}`` (204; 404 with code 3001 when it is already gone).
- ``GET /users/{userId}/meetings?type=scheduled`` (List meetings: ``meetings[].id``,
  ``agenda``; paged with ``next_page_token``).
- ``GET`` / ``PATCH /users/{userId}/settings``: ``in_meeting.screen_sharing``,
  ``in_meeting.who_can_share_screen`` ("host" | "all"),
  ``in_meeting.allow_participants_to_rename``.

Errors: 429 carries ``Retry-After`` (seconds, an HTTP date or an ISO time) and, for the daily
per-user limit on creating and updating meetings, ``X-RateLimit-Type: Daily-limit`` or a
message saying so (it resets at 00:00 UTC). Zoom's error ``message`` can quote an email, so
only the numeric ``code`` goes into errors and logs. So does nothing else from the bodies:
``join_url``, ``start_url`` and ``password`` never reach a log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp

from chatbot.config import Settings
from chatbot.ports import MeetingError, MeetingInfo, MeetingSettings, MeetingSpec, UserSettings

log = logging.getLogger("chatbot.zoom")

TOKEN_MARGIN_SECONDS = 60.0  # a token is renewed this long before Zoom says it expires
TIMEOUT_SECONDS = 15.0
PAGE_SIZE = 300  # the most List meetings returns per page
MAX_PAGES = 20


class ZoomClient:
    def __init__(self, settings: Settings, monotonic: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.api = settings.zoom_api_url.rstrip("/")
        self.monotonic = monotonic
        self.scopes: frozenset[str] = frozenset()  # granted, as the last token said
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
            )
        return self._session

    # ----- the access token

    async def token(self, stale: str = "") -> str:
        """A valid access token; a new one if the cached one is ``stale`` (refused with 401)
        or about to expire. One request at a time, so a burst shares one new token."""
        async with self._lock:
            if self._token and self._token != stale and self.monotonic() < self._expires:
                return self._token
            s = self.settings
            try:
                async with self._http().post(
                    s.zoom_oauth_url,
                    params={"grant_type": "account_credentials", "account_id": s.zoom_account_id},
                    headers={"Authorization": _basic(s.zoom_client_id, s.zoom_client_secret)},
                ) as resp:
                    status = resp.status
                    body = await _json(resp)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise MeetingError(f"zoom_oauth_unreachable_{type(exc).__name__}") from None
            token = body.get("access_token") if isinstance(body, dict) else None
            if status != 200 or not isinstance(token, str) or not token:
                log.error(
                    "Zoom refused the bot's credentials (HTTP %s): check ZOOM_ACCOUNT_ID, "
                    "ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET (`chatbot zoom check`)",
                    status,
                )
                raise MeetingError(f"zoom_oauth_{status}")
            expires_in = body.get("expires_in")
            seconds = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
            self._token = token
            self._expires = self.monotonic() + max(seconds - TOKEN_MARGIN_SECONDS, 0.0)
            scope = body.get("scope")
            self.scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
            return token

    # ----- requests

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """The JSON answer (None for 204); MeetingError for anything else."""
        token = await self.token()
        for attempt in (1, 2):
            try:
                async with self._http().request(
                    method,
                    self.api + path,
                    json=body,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                ) as resp:
                    status = resp.status
                    answer = await _json(resp)
                    headers = resp.headers
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise MeetingError(f"zoom_unreachable_{type(exc).__name__}") from None
            if status == 401 and attempt == 1:
                token = await self.token(stale=token)  # expired or revoked: once more
                continue
            break
        if 200 <= status < 300:
            return answer
        raise _error(status, answer, headers)

    # ----- the port

    async def create(self, host_email: str, spec: MeetingSpec) -> MeetingInfo:
        answer = await self._call("POST", f"/users/{_id(host_email)}/meetings", _body(spec))
        return _info(answer)

    async def find(self, host_email: str, marker: str) -> MeetingInfo | None:
        params = {"type": "scheduled", "page_size": str(PAGE_SIZE)}
        for _ in range(MAX_PAGES):
            page = await self._call("GET", f"/users/{_id(host_email)}/meetings", params=params)
            page = page if isinstance(page, dict) else {}
            for item in page.get("meetings") or []:
                if isinstance(item, dict) and marker in str(item.get("agenda") or ""):
                    return await self.get(str(item.get("id")))
            following = page.get("next_page_token")
            if not following:
                return None
            params = {**params, "next_page_token": str(following)}
        return None

    async def get(self, meeting_id: str) -> MeetingInfo:
        return _info(await self._call("GET", f"/meetings/{_id(meeting_id)}"))

    async def update(self, meeting_id: str, spec: MeetingSpec) -> None:
        await self._call("PATCH", f"/meetings/{_id(meeting_id)}", _body(spec))

    async def delete(self, meeting_id: str) -> None:
        try:
            await self._call("DELETE", f"/meetings/{_id(meeting_id)}")
        except MeetingError as e:
            if not e.not_found:
                raise

    async def user_settings(self, email: str) -> UserSettings:
        answer = await self._call("GET", f"/users/{_id(email)}/settings")
        found = answer.get("in_meeting") if isinstance(answer, dict) else None
        found = found if isinstance(found, dict) else {}

        def flag(key: str) -> bool | None:
            value = found.get(key)
            return value if isinstance(value, bool) else None

        who = found.get("who_can_share_screen")
        return UserSettings(
            screen_sharing=flag("screen_sharing"),
            who_can_share_screen=who if isinstance(who, str) else None,
            allow_participants_to_rename=flag("allow_participants_to_rename"),
        )

    async def update_user_settings(self, email: str, changes: UserSettings) -> None:
        in_meeting = {
            k: v
            for k, v in (
                ("screen_sharing", changes.screen_sharing),
                ("who_can_share_screen", changes.who_can_share_screen),
                ("allow_participants_to_rename", changes.allow_participants_to_rename),
            )
            if v is not None
        }
        await self._call("PATCH", f"/users/{_id(email)}/settings", {"in_meeting": in_meeting})


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _id(value: str) -> str:
    """A user id, email or meeting id as one path segment."""
    return quote(value, safe="@.")


def _body(spec: MeetingSpec) -> dict[str, Any]:
    local = spec.start.astimezone(ZoneInfo(spec.timezone)).replace(tzinfo=None)
    settings: dict[str, Any] = {
        "waiting_room": spec.settings.waiting_room,
        "host_video": spec.settings.host_video,
        "participant_video": spec.settings.participant_video,
        "join_before_host": spec.settings.join_before_host,
        "alternative_hosts": spec.alternative_host or "",
    }
    return {
        "topic": spec.topic,
        "type": 2,
        "start_time": local.isoformat(timespec="seconds"),
        "duration": spec.minutes,
        "timezone": spec.timezone,
        "password": spec.passcode,
        "agenda": f"Booked by the school's video call bot. Ref {spec.marker}",
        "settings": settings,
    }


def _info(answer: Any) -> MeetingInfo:
    if not isinstance(answer, dict) or answer.get("id") is None:
        raise MeetingError("zoom_unexpected_answer")
    s = answer.get("settings") if isinstance(answer.get("settings"), dict) else {}
    assert isinstance(s, dict)

    def flag(key: str) -> bool | None:
        value = s.get(key)
        return value if isinstance(value, bool) else None

    alternative = str(s.get("alternative_hosts") or "")
    duration = answer.get("duration")
    return MeetingInfo(
        meeting_id=str(answer["id"]),
        uuid=str(answer.get("uuid") or ""),
        join_url=str(answer.get("join_url") or ""),
        passcode=str(answer.get("password") or ""),
        start=zoom_time(answer.get("start_time")),
        minutes=duration if isinstance(duration, int) else None,
        alternative_hosts=tuple(
            x.strip().lower() for x in alternative.replace(",", ";").split(";") if x.strip()
        ),
        settings=MeetingSettings(
            waiting_room=flag("waiting_room"),
            host_video=flag("host_video"),
            participant_video=flag("participant_video"),
            join_before_host=flag("join_before_host"),
        ),
    )


def zoom_time(value: Any) -> datetime | None:
    """Zoom's times: ISO 8601 in UTC (``2026-12-01T10:00:00Z``)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait, from a ``Retry-After`` given as seconds, an HTTP date or an ISO time."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    at = zoom_time(value)
    if at is None:
        try:
            at = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return max((at - now).total_seconds(), 0.0)


def _error(status: int, answer: Any, headers: Any) -> MeetingError:
    code = answer.get("code") if isinstance(answer, dict) else None
    code_part = f"_{code}" if isinstance(code, int) else ""
    message = str(answer.get("message", "")) if isinstance(answer, dict) else ""
    if status == 429:
        now = datetime.now(UTC)
        wait = retry_after(headers.get("Retry-After"), now)
        daily = (
            headers.get("X-RateLimit-Type", "").lower() == "daily-limit"
            or "daily" in message.lower()
        )
        if daily and wait is None:  # the per-user daily limit resets at midnight UTC
            midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            wait = (midnight - now).total_seconds()
        return MeetingError(
            "zoom_daily_limit" if daily else "zoom_429", retry_after=wait, daily_limit=daily
        )
    if status >= 500 or status == 401:
        return MeetingError(f"zoom_{status}{code_part}")
    return MeetingError(
        f"zoom_{status}{code_part}",
        permanent=True,
        not_found=status == 404 or code in (1001, 3001),
    )


async def _json(resp: aiohttp.ClientResponse) -> Any:
    raw = await resp.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
