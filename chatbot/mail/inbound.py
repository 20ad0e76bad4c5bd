"""Reading an email that came in (a parent's reply, or a bounce) without trusting any of it.

Everything in a message is the sender's to write: headers, addresses, dates and parts. This
module turns the raw bytes into the few facts the bot acts on, or refuses the message with a
reason fit to show staff. It never renders HTML: the text shown to staff is the plain-text
part, and a message without one is refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from typing import Any

from chatbot.mail.compose import BadAddress, checked_address

MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # a reply with a photo or two fits; a 30 MB one does not
TEXT_SHOWN_MAX = 1500  # characters of the reply shown in chat
TOKEN_RE = re.compile(r"consent-([a-z0-9]{20})\b", re.IGNORECASE)
_ADDRESS_TOKEN = re.compile(r"\+consent-([a-z0-9]{20})@", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,240}>")


class Refused(Exception):
    """The message is not kept; ``reason`` says why, in words for staff; ``code`` for logs."""

    def __init__(self, code: str, reason: str):
        super().__init__(code)
        self.code = code
        self.reason = reason


@dataclass
class Incoming:
    raw: bytes
    sha256: str
    from_address: str
    message_id: str
    sent_at: datetime | None
    text: str | None  # the plain-text part, None when there is none
    tokens: set[str] = field(default_factory=set)
    bounced_ids: list[str] = field(default_factory=list)  # a bounce: the Message-IDs returned

    @property
    def is_bounce(self) -> bool:
        return bool(self.bounced_ids)


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def too_large(size: int) -> Refused:
    return Refused(
        "too_large",
        f"That email is {_megabytes(size)}; the most the bot keeps is "
        f"{_megabytes(MAX_MESSAGE_BYTES)}. Nothing was kept. Ask the parent to reply again "
        "without attachments.",
    )


NOT_AN_EMAIL = (
    "That file is not an email the bot can read (it needs a From line with one address). "
    "Save the reply from your mail program as an .eml file and try again. Nothing was kept."
)


def read(raw: bytes) -> Incoming:
    """The facts of one message, or :class:`Refused`."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise too_large(len(raw))
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        senders: tuple[Any, ...] = tuple(getattr(msg["From"], "addresses", ()))
        if len(senders) != 1:
            raise Refused("no_sender", NOT_AN_EMAIL)
        from_address = checked_address(senders[0].addr_spec)
        sent_at = _date(msg)
        found_id = _MESSAGE_ID.search(str(msg["Message-ID"] or ""))
        message_id = found_id.group() if found_id else ""
        tokens = _tokens(msg)
        bounced = _bounced_ids(msg)
        text = None if bounced else _text(msg)
    except Refused:
        raise
    except BadAddress:
        raise Refused("bad_sender", NOT_AN_EMAIL) from None
    except Exception:  # the parser is lenient, but header objects can still raise on junk
        raise Refused("unreadable", NOT_AN_EMAIL) from None
    return Incoming(
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
        from_address=from_address,
        message_id=message_id,
        sent_at=sent_at,
        text=text,
        tokens=tokens,
        bounced_ids=bounced,
    )


def _date(msg: EmailMessage) -> datetime | None:
    header = msg["Date"]
    at = getattr(header, "datetime", None) if header is not None else None
    if not isinstance(at, datetime):
        return None
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def _tokens(msg: EmailMessage) -> set[str]:
    """Consent-request references in the addresses the reply went to, and in its subject."""
    found: set[str] = set()
    for name in ("To", "Cc", "Delivered-To", "X-Original-To"):
        for value in msg.get_all(name) or ():
            found.update(t.lower() for t in _ADDRESS_TOKEN.findall(str(value)))
    found.update(t.lower() for t in TOKEN_RE.findall(str(msg["Subject"] or "")))
    return found


def _bounced_ids(msg: EmailMessage) -> list[str]:
    """For a delivery report (RFC 3464, which Google and Microsoft send), the Message-IDs of
    the returned email, from its attached headers; empty for anything else."""
    if msg.get_content_type() != "multipart/report":
        return []
    ids: list[str] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            headers: Message = HeaderParser().parsestr(text)
        elif kind == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if not isinstance(inner, Message):
                continue
            headers = inner
        else:
            continue
        ids += _MESSAGE_ID.findall(str(headers.get("Message-ID", "")))
    return ids


def _text(msg: EmailMessage) -> str | None:
    body = msg.get_body(preferencelist=("plain",))
    if body is None:
        return None
    try:
        content = body.get_content()
    except (LookupError, ValueError):  # an unknown charset: show what can be read
        payload = body.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else None


def shown_text(text: str) -> tuple[str, bool]:
    """The parent's own words for staff to read: quoted lines (our email, quoted back) left
    out, cut at a sensible length. Returns (text, whether anything was left out)."""
    lines = text.replace("\r\n", "\n").split("\n")
    own = [line for line in lines if not line.lstrip().startswith(">")]
    cut = False
    for n, line in enumerate(own):
        if (
            re.match(r"\s*On .{4,200} wrote:\s*$", line)
            or line.strip() == "-----Original Message-----"
        ):
            own, cut = own[:n], True
            break
    shown = "\n".join(own).strip()
    cut = cut or len(own) != len(lines)
    if len(shown) > TEXT_SHOWN_MAX:
        shown, cut = shown[:TEXT_SHOWN_MAX].rstrip() + "…", True
    return shown, cut
