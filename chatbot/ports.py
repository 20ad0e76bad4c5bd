"""Ports the core needs from the outside world; adapters implement them, tests fake them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from chatbot.interaction import UserRef
from chatbot.ui import Message

Role = Literal["dsl", "slt"]


@dataclass(frozen=True)
class StaffAddress:
    """Everything a messenger may need to reach a staff member directly."""

    staff_id: int
    email: str
    display_name: str
    platform_user_id: str | None  # known id on this messenger's platform, if any


class DeliveryError(Exception):
    """A delivery failed; the outbox will retry it later.

    ``retry_after`` (seconds) is honoured when the platform said how long to wait (HTTP 429).
    ``kind`` is a short code safe for logs (never message content).
    """

    def __init__(self, kind: str, retry_after: float | None = None, permanent: bool = False):
        super().__init__(kind)
        self.kind = kind
        self.retry_after = retry_after
        self.permanent = permanent


class ChannelUnavailable(DeliveryError):
    """The role channel is not configured, missing, or the bot is not in it."""

    def __init__(self, kind: str = "channel_unavailable"):
        super().__init__(kind, permanent=True)


class Messenger(Protocol):
    """Sends neutral messages on one platform. Each method returns the platform's message ref
    (used to update the message in place later) and raises :class:`DeliveryError` on failure.

    ``outbox_id`` names the outbox row being delivered; a messenger attaches it to the message
    where its platform allows (Slack: message metadata), so a repeat after a crash can be
    recognised."""

    platform: str

    async def send_to_staff(
        self, to: StaffAddress, message: Message, *, outbox_id: int | None = None
    ) -> str: ...

    async def post_to_role(
        self, role: Role, message: Message, *, outbox_id: int | None = None
    ) -> str: ...

    async def update(self, ref: str, message: Message) -> None: ...


class Directory(Protocol):
    """Resolves a platform user to an email address (matched against the roster)."""

    async def email_for(self, user: UserRef) -> str | None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock tests (and the console's demo) can set and advance."""

    def __init__(self, at: datetime):
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at

    def advance(self, **kwargs: float) -> None:
        from datetime import timedelta

        self._at = self._at + timedelta(**kwargs)


@dataclass(frozen=True)
class OutgoingMail:
    """One email, built whole before the first attempt: every attempt sends these bytes."""

    message_id: str
    recipients: tuple[str, ...]
    raw: bytes


class Email(Protocol):
    """Sends email through the school's own mail (SMTP or Microsoft Graph).

    ``send`` raises :class:`DeliveryError`: ``permanent=True`` when the mail server refused the
    message or a recipient for good (SMTP 5xx, Graph 400), else it is tried again later.
    ``was_sent`` says whether a message with that Message-ID already went out (Graph can look
    in Sent Items), or None when the transport cannot tell (SMTP)."""

    name: str
    sender: str  # the envelope sender, the school office address

    async def send(self, mail: OutgoingMail) -> None: ...

    async def was_sent(self, message_id: str) -> bool | None: ...


@dataclass(frozen=True)
class MailboxItem:
    """A message in the school mailbox, as listed before its content is fetched."""

    ref: str  # the mailbox's own id for it
    received_at: datetime
    subject: str
    recipients: tuple[str, ...]


class Mailbox(Protocol):
    """Reads the school mailbox (Microsoft 365 through Graph) for replies and bounces."""

    async def received_since(self, since: datetime | None) -> list[MailboxItem]: ...

    async def raw(self, ref: str, limit: int) -> bytes | None:
        """The whole message, or None when it is larger than ``limit`` bytes."""
        ...
