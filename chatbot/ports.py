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


# ----- meetings (Zoom): the adapter translates these to and from the platform's REST API


@dataclass(frozen=True)
class MeetingSettings:
    """The meeting settings the school's policy cares about (None: the platform did not say)."""

    waiting_room: bool | None = True
    host_video: bool | None = True
    participant_video: bool | None = True
    join_before_host: bool | None = False


@dataclass(frozen=True)
class MeetingSpec:
    """A scheduled meeting as the bot wants it. ``marker`` is unique to the booking and is
    written into the meeting (its agenda), so a meeting created just before a crash can be
    found again instead of created twice."""

    topic: str
    marker: str
    start: datetime
    minutes: int
    timezone: str
    passcode: str
    alternative_host: str | None
    settings: MeetingSettings = MeetingSettings()


@dataclass(frozen=True)
class MeetingInfo:
    """A meeting as the platform reports it. The join URL and passcode are secrets of the
    call: they go to its host and co-host only, never to a channel or a log."""

    meeting_id: str
    join_url: str
    passcode: str
    start: datetime | None
    minutes: int | None
    alternative_hosts: tuple[str, ...]
    settings: MeetingSettings
    uuid: str = ""


@dataclass(frozen=True)
class UserSettings:
    """A host's account-level settings that no meeting can carry (None: unknown / unchanged)."""

    screen_sharing: bool | None = None
    who_can_share_screen: str | None = None  # "host" or "all"
    allow_participants_to_rename: bool | None = None


class MeetingError(Exception):
    """A meetings call failed. ``kind`` is a short code safe for logs (no names, no links).

    ``retry_after`` (seconds) is honoured when the platform said how long to wait;
    ``daily_limit`` marks a per-user daily quota (people are told, it lasts until the quota
    resets); ``permanent`` errors (a refused request) are reported and not retried;
    ``not_found`` says the user or meeting does not exist."""

    def __init__(
        self,
        kind: str,
        retry_after: float | None = None,
        permanent: bool = False,
        daily_limit: bool = False,
        not_found: bool = False,
    ):
        super().__init__(kind)
        self.kind = kind
        self.retry_after = retry_after
        self.permanent = permanent
        self.daily_limit = daily_limit
        self.not_found = not_found


class Meetings(Protocol):
    """Scheduled video meetings on the school's platform, hosted by staff (by school email).
    Every method raises :class:`MeetingError` on failure."""

    async def create(self, host_email: str, spec: MeetingSpec) -> MeetingInfo: ...

    async def find(self, host_email: str, marker: str) -> MeetingInfo | None:
        """The host's meeting carrying ``marker``, if one exists."""
        ...

    async def get(self, meeting_id: str) -> MeetingInfo: ...

    async def update(self, meeting_id: str, spec: MeetingSpec) -> None: ...

    async def delete(self, meeting_id: str) -> None:
        """Delete the meeting; one that is already gone is not an error."""
        ...

    async def user_settings(self, email: str) -> UserSettings: ...

    async def update_user_settings(self, email: str, changes: UserSettings) -> None: ...


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
