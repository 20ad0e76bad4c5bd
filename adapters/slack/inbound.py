"""What Slack sends us, checked before anything else reads it.

Every request to ``POST /slack/events`` and every Socket Mode envelope passes here first:

- :func:`signed_text`: Slack's v0 signature over the raw bytes (HTTP only). Headers that are
  missing, repeated, non-ASCII or malformed, a stale timestamp or a body that is not UTF-8 all
  mean "not from Slack" (401), and nothing has parsed the body yet.
- :func:`check_payload`: the parsed payload has the shape Slack gives it, for every field this
  app (or bolt, routing it) reads. Anything else (a list where Slack sends an object, a number
  where it sends text, text longer than Slack allows, a lone UTF-16 surrogate) is refused
  (400, or an acknowledged and dropped Socket Mode envelope), so the handlers can trust the
  types they read and nothing reaches the core or the database.

Fields nobody reads are not checked: they never leave the payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from multidict import CIMultiDictProxy
from slack_sdk.signature import SignatureVerifier

from chatbot.interaction import readable

_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # not \d: int() would also take "١٢" or "1_0"
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class Refused(ValueError):
    """A payload Slack would not send; ``str()`` names the field, never its value."""

    def __init__(self, at: str, why: str):
        super().__init__(f"{at}: {why}")


# ----- the signature -----


def _one(headers: CIMultiDictProxy[str], name: str) -> str | None:
    """The header's value, or None if it is missing or repeated (which copy would be signed?)."""
    values = headers.getall(name, [])
    return values[0] if len(values) == 1 else None


def signed_text(
    verifier: SignatureVerifier, headers: CIMultiDictProxy[str], raw: bytes
) -> str | None:
    """The body as text if Slack signed it (``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``
    within five minutes), else None.

    slack_sdk's verifier does the HMAC and the time window; it raises on a non-numeric
    timestamp and on a non-ASCII signature, and reads more than ASCII digits as a number, so
    both headers are checked against Slack's own format first."""
    timestamp = _one(headers, "X-Slack-Request-Timestamp")
    signature = _one(headers, "X-Slack-Signature")
    if timestamp is None or signature is None:
        return None
    if not (_TIMESTAMP.fullmatch(timestamp) and _SIGNATURE.fullmatch(signature)):
        return None
    try:
        text = raw.decode("utf-8")  # Slack sends UTF-8; the verifier signs the same bytes
    except UnicodeDecodeError:
        return None
    return text if verifier.is_valid(text, timestamp, signature) else None


def is_ssl_check(raw: bytes) -> bool:
    """Slack's certificate check when a command URL is saved: ``ssl_check=1`` and perhaps a
    ``token``, nothing else. Bolt answers it before any signature check, and so do we; with
    nothing else in it there is nothing to process."""
    if len(raw) > 200:
        return False
    fields = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    keys = [k for k, _ in fields]
    return ("ssl_check", "1") in fields and sorted(keys) in (["ssl_check"], ["ssl_check", "token"])


# ----- the payload's shape -----

Check = Callable[[Any, str], None]


def text(limit: int) -> Check:
    def check(value: Any, at: str) -> None:
        if not isinstance(value, str):
            raise Refused(at, "expected text")
        if len(value) > limit:
            raise Refused(at, f"longer than {limit} characters")
        if not readable(value):
            raise Refused(at, "unreadable text (a lone surrogate)")

    return check


_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


def slack_id(value: Any, at: str) -> None:
    """A user, team, channel, view or trigger id, a timestamp or a hash: Slack's are short
    and ASCII (``U0123ABCD``, ``1780000001.000001``), and they must fit the database's columns."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise Refused(at, "not a Slack id")


def boolean(value: Any, at: str) -> None:
    if not isinstance(value, bool):
        raise Refused(at, "expected true or false")


def nullable(check: Check) -> Check:
    def nullable_check(value: Any, at: str) -> None:
        if value is not None:
            check(value, at)

    return nullable_check


def obj(*required: str, **fields: Check) -> Check:
    """An object; the named fields, when present, pass their checks. Others are not read."""

    def check(value: Any, at: str) -> None:
        if not isinstance(value, dict):
            raise Refused(at, "expected an object")
        for key in required:
            if key not in value:
                raise Refused(f"{at}.{key}", "missing")
        for key, field_check in fields.items():
            if key in value:
                field_check(value[key], f"{at}.{key}")

    return check


def list_of(item: Check, most: int, least: int = 0) -> Check:
    def check(value: Any, at: str) -> None:
        if not isinstance(value, list):
            raise Refused(at, "expected a list")
        if not least <= len(value) <= most:
            raise Refused(at, f"expected {least} to {most} items")
        for x in value:
            item(x, f"{at}[]")

    return check


def map_of(item: Check, most: int, key: Check) -> Check:
    """An object used as a map (``state.values``: block id -> action id -> element)."""

    def check(value: Any, at: str) -> None:
        if not isinstance(value, dict):
            raise Refused(at, "expected an object")
        if len(value) > most:
            raise Refused(at, f"more than {most} entries")
        for k, v in value.items():
            key(k, f"{at} key")
            item(v, f"{at}.*")

    return check


def one_of(*allowed: str) -> Check:
    def check(value: Any, at: str) -> None:
        if value not in allowed:
            raise Refused(at, "not one this app takes")

    return check


def command_name(value: Any, at: str) -> None:
    text(32)(value, at)  # Slack's limit for a command name, slash included
    if len(value) < 2 or not value.startswith("/"):
        raise Refused(at, "not a slash command")


def form_state(value: Any, at: str) -> None:
    """``private_metadata``: empty, or the JSON object of text the app's own form put there."""
    text(3000)(value, at)
    if not value:
        return
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        raise Refused(at, "not JSON") from None
    map_of(scalar, 50, key=text(100))(data, at)


def scalar(value: Any, at: str) -> None:
    if isinstance(value, str):
        text(3000)(value, at)
    elif not isinstance(value, int | float):
        raise Refused(at, "expected text or a number")


# Slack's own limits, so a real payload always fits (and ids fit the database's columns).
ID = slack_id
NAME = text(255)  # action, block and callback ids; user names
URL = text(1000)
TYPED = text(3000)  # a text input's value: Slack allows at most 3000 characters

OPTION = obj(value=text(150))
ELEMENT = obj(
    "type",
    type=ID,
    value=nullable(TYPED),
    selected_date=nullable(text(20)),
    selected_time=nullable(text(20)),
    selected_option=nullable(OPTION),
    selected_options=list_of(OPTION, 100),
    selected_user=nullable(ID),
    selected_users=list_of(ID, 100),
)
STATE = obj(values=map_of(map_of(ELEMENT, 10, key=NAME), 100, key=NAME))
VIEW_FIELDS: dict[str, Check] = {
    "id": ID,
    "hash": ID,
    "type": ID,
    "team_id": nullable(ID),
    "app_installed_team_id": nullable(ID),
    "callback_id": NAME,
    "private_metadata": form_state,
    "title": obj(text=NAME),
    "blocks": list_of(obj(type=ID, block_id=NAME), 100),
    "state": STATE,
}
USER = obj("id", id=ID, team_id=ID, username=NAME, name=NAME)
ACTION = obj(
    "action_id",
    action_id=NAME,
    block_id=NAME,
    value=text(2000),
    selected_option=nullable(OPTION),
    type=ID,
)

# Read from every payload by bolt (routing, its context) or by the handlers.
COMMON: dict[str, Check] = {
    "type": ID,
    "team": nullable(obj(id=ID)),
    "team_id": ID,
    "enterprise": nullable(obj(id=ID)),
    "enterprise_id": nullable(ID),
    "is_enterprise_install": boolean,
    "is_ext_shared_channel": boolean,
    "authorizations": list_of(obj(team_id=nullable(ID), enterprise_id=nullable(ID)), 10),
    "user": USER,
    "user_id": ID,
    "channel": nullable(obj(id=ID)),
    "channel_id": ID,
    "thread_ts": ID,
    "trigger_id": ID,
    "response_url": URL,
    "response_urls": list_of(obj(response_url=URL), 10),
    "container": obj(type=ID, channel_id=ID, message_ts=ID, is_ephemeral=boolean, view_id=ID),
    "message": obj(ts=ID, thread_ts=ID),
    "view": obj(**VIEW_FIELDS),
    "state": STATE,
}

PAYLOADS: dict[str, Check] = {
    # Clicks and submissions always carry a trigger id: it is what makes a retry a repeat.
    "block_actions": obj(
        "user", "actions", "trigger_id", **{**COMMON, "actions": list_of(ACTION, 25, 1)}
    ),
    "view_submission": obj(
        "user",
        "view",
        "trigger_id",
        **{**COMMON, "view": obj("id", "type", "callback_id", **VIEW_FIELDS)},
    ),
    "block_suggestion": obj(
        "user", "action_id", **{**COMMON, "action_id": NAME, "block_id": NAME, "value": TYPED}
    ),
    "event_callback": obj(
        "event",
        **COMMON,
        event_id=ID,
        # The only event the manifest subscribes to.
        event=obj("type", type=one_of("app_home_opened"), user=ID, channel=ID, tab=ID),
    ),
    "url_verification": obj("challenge", challenge=text(255)),
}

# A slash command is a flat form: every field is text.
COMMAND = obj(
    "command",
    "user_id",
    "team_id",
    command=command_name,
    text=text(10_000),
    user_name=NAME,
    **{k: COMMON[k] for k in ("team_id", "user_id", "channel_id", "trigger_id", "response_url")},
)


def check_payload(body: Any) -> None:
    """Raise :class:`Refused` unless ``body`` is a payload of a kind this app takes, shaped as
    Slack sends it. Bolt routes anything with a ``command`` field as a slash command, so that
    is checked first, the same way."""
    if not isinstance(body, dict):
        raise Refused("payload", "expected an object")
    if "command" in body:
        COMMAND(body, "payload")
        if not all(isinstance(v, str) for v in body.values()):
            raise Refused("payload.*", "expected text")
        return
    kind = body.get("type")
    check = PAYLOADS.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise Refused("payload.type", "not a kind of request this app takes")
    check(body, "payload")
