"""``POST /zoom/events``: Zoom's event notifications, checked before anything reads them.

Every request must carry ``x-zm-signature: v0=<hex>``, the HMAC-SHA256 keyed with the app's
secret token (``ZOOM_WEBHOOK_SECRET``) of ``v0:{x-zm-request-timestamp}:{raw body}``, and a
timestamp (seconds) within five minutes of ours; otherwise 401 and nothing is read. Zoom signs
its ``endpoint.url_validation`` challenge too; the answer is ``{"plainToken",
"encryptedToken"}`` with ``encryptedToken`` the hex HMAC-SHA256 of ``plainToken``.

Events used (payload fields as in Zoom's webhook reference / rivet-javascript types):
``meeting.started`` (``object.start_time``), ``meeting.ended`` (``object.end_time``),
``meeting.participant_joined`` (``participant.join_time``), ``meeting.participant_left``
(``participant.leave_time``) and the waiting-room events
``meeting.participant_joined_waiting_room``, ``meeting.participant_left_waiting_room``,
``meeting.participant_admitted``, ``meeting.participant_put_in_waiting_room``
(``participant.date_time``); each with
``object.id`` (the meeting), ``object.uuid`` (this run of it), ``object.host_id`` and
``participant.{participant_uuid, id, user_id, user_name, email}``. Other events are answered
200 and ignored. Zoom repeats a delivery it thinks failed: the core stores each event once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from adapters.server import Runtime
from adapters.zoom.client import zoom_time
from chatbot.meetings.events import CallEvent, EventKind, Participant, record

log = logging.getLogger("chatbot.zoom")

MAX_SKEW_SECONDS = 300
MAX_BODY_BYTES = 256 * 1024
KINDS: dict[str, EventKind] = {
    "meeting.started": "started",
    "meeting.ended": "ended",
    "meeting.participant_joined": "joined",
    "meeting.participant_left": "left",
    "meeting.participant_joined_waiting_room": "waiting",
    "meeting.participant_left_waiting_room": "left_waiting",
    "meeting.participant_admitted": "admitted",
    "meeting.participant_put_in_waiting_room": "sent_to_waiting",
}
# Where each event says when it happened.
TIME_FIELD = {"started": "start_time", "ended": "end_time", "joined": "join_time"}
MEETING_ID = re.compile(r"[0-9]{1,20}")
TIMESTAMP = re.compile(r"[0-9]{1,13}")


class Refused(Exception):
    """A signed body that is not shaped as Zoom sends it (400)."""


def signature(secret: str, timestamp: str, raw: bytes) -> str:
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256)
    return "v0=" + digest.hexdigest()


class ZoomEvents:
    def __init__(self, runtime: Runtime, secret: str, clock: Callable[[], float] = time.time):
        self.runtime = runtime
        self.secret = secret
        self.clock = clock

    def signed(self, request: web.Request, raw: bytes) -> bool:
        timestamp = request.headers.get("x-zm-request-timestamp", "")
        given = request.headers.get("x-zm-signature", "")
        if not TIMESTAMP.fullmatch(timestamp) or not given.startswith("v0="):
            return False
        seconds = int(timestamp)
        if seconds > 10**11:  # milliseconds
            seconds //= 1000
        if abs(self.clock() - seconds) > MAX_SKEW_SECONDS:
            return False
        return hmac.compare_digest(signature(self.secret, timestamp, raw), given)

    async def handle(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return web.json_response({"error": "too large"}, status=413)
        raw = await request.read()
        if len(raw) > MAX_BODY_BYTES:
            return web.json_response({"error": "too large"}, status=413)
        if not self.signed(request, raw):
            log.info("zoom: refused an event with a missing, wrong or stale signature")
            return web.json_response({"error": "invalid signature"}, status=401)
        try:
            body = json.loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("event"), str):
                raise Refused("no event")
            if body["event"] == "endpoint.url_validation":
                return web.json_response(self.challenge(body))
            kind = KINDS.get(body["event"])
            if kind is None:
                return web.json_response({"ok": True, "ignored": True})
            event = to_event(kind, body)
        except (ValueError, Refused) as exc:
            log.info("zoom: refused a signed event not shaped as Zoom sends them (%s)", exc)
            return web.json_response({"error": "not a Zoom event"}, status=400)
        try:
            outcome = await record(self.runtime.units, event)
        except Exception as exc:  # the database: Zoom retries what it is not told arrived
            log.error("zoom: could not record a %s event (%s)", kind, type(exc).__name__)
            return web.json_response({"error": "try again"}, status=503)
        log.info("zoom: %s event %s", kind, outcome)
        return web.json_response({"ok": True})

    def challenge(self, body: dict[str, Any]) -> dict[str, str]:
        payload = body.get("payload")
        plain = payload.get("plainToken") if isinstance(payload, dict) else None
        if not isinstance(plain, str) or not 0 < len(plain) <= 200:
            raise Refused("no plainToken")
        digest = hmac.new(self.secret.encode(), plain.encode(), hashlib.sha256).hexdigest()
        return {"plainToken": plain, "encryptedToken": digest}


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def to_event(kind: EventKind, body: dict[str, Any]) -> CallEvent:
    """The core's view of a Zoom event (raises Refused when a field it needs is missing)."""
    payload = body.get("payload")
    obj = payload.get("object") if isinstance(payload, dict) else None
    if not isinstance(obj, dict):
        raise Refused("no payload.object")
    meeting_id = obj.get("id")
    if isinstance(meeting_id, int) and not isinstance(meeting_id, bool):
        meeting_id = str(meeting_id)
    if not isinstance(meeting_id, str) or not MEETING_ID.fullmatch(meeting_id):
        raise Refused("no meeting id")
    raw_p = obj.get("participant")
    p = raw_p if isinstance(raw_p, dict) else None
    if kind not in ("started", "ended") and p is None:
        raise Refused("no participant")
    event_ts = body.get("event_ts")
    sent = (
        datetime.fromtimestamp(event_ts / 1000, UTC)
        if isinstance(event_ts, int) and not isinstance(event_ts, bool) and event_ts > 0
        else None
    )
    field = TIME_FIELD.get(kind, "leave_time" if kind == "left" else "date_time")
    at = zoom_time((obj if kind in ("started", "ended") else p or {}).get(field)) or sent
    if at is None:
        raise Refused("no time")
    participant = None
    if p is not None:
        key = next(
            (_text(p.get(k), 100) for k in ("participant_uuid", "id", "user_id") if p.get(k)), ""
        )
        email = _text(p.get("email"), 320).strip().lower()
        host_id = _text(obj.get("host_id"), 100)
        participant = Participant(
            key=key or _text(p.get("user_name"), 100),
            name=_text(p.get("user_name"), 200),
            email=email or None,
            is_host=bool(host_id) and _text(p.get("id"), 100) == host_id,
        )
    uuid = _text(obj.get("uuid"), 100)
    identity = "|".join(
        (body["event"], str(event_ts), meeting_id, uuid, participant.key if participant else "")
    )
    return CallEvent(
        kind=kind,
        meeting_id=meeting_id,
        key=hashlib.sha256(identity.encode()).hexdigest(),
        at=at,
        participant=participant,
    )
