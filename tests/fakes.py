"""Test doubles for the ports (never for our own services)."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatbot.ports import ChannelUnavailable, DeliveryError, Role, StaffAddress
from chatbot.ui import Message


@dataclass
class Sent:
    kind: str  # "staff" | "role" | "update"
    to: str  # email, role, or ref
    message: Message
    ref: str
    outbox_id: int | None = None
    user_id: str | None = None  # the platform user id a direct message was addressed to


@dataclass
class RecordingMessenger:
    """Records what would be sent. ``fail_next`` makes the next N calls raise; ``down`` makes
    every call raise until cleared; ``missing_roles`` behave like a channel the bot is not in."""

    platform: str = "console"
    sent: list[Sent] = field(default_factory=list)
    fail_next: int = 0
    down: bool = False
    retry_after: float | None = None
    missing_roles: set[str] = field(default_factory=set)
    _n: int = 0

    def _maybe_fail(self) -> None:
        if self.down:
            raise DeliveryError("platform_down", retry_after=self.retry_after)
        if self.fail_next > 0:
            self.fail_next -= 1
            raise DeliveryError("server_error", retry_after=self.retry_after)

    def _ref(self) -> str:
        self._n += 1
        return f"msg-{self._n}"

    async def send_to_staff(
        self, to: StaffAddress, message: Message, *, outbox_id: int | None = None
    ) -> str:
        self._maybe_fail()
        ref = self._ref()
        self.sent.append(Sent("staff", to.email, message, ref, outbox_id, to.platform_user_id))
        return ref

    async def post_to_role(
        self, role: Role, message: Message, *, outbox_id: int | None = None
    ) -> str:
        self._maybe_fail()
        if role in self.missing_roles:
            raise ChannelUnavailable("channel_not_found")
        ref = self._ref()
        self.sent.append(Sent("role", role, message, ref, outbox_id))
        return ref

    async def update(self, ref: str, message: Message) -> None:
        self._maybe_fail()
        self.sent.append(Sent("update", ref, message, ref))

    def to(self, who: str) -> list[Message]:
        return [s.message for s in self.sent if s.to == who and s.kind != "update"]

    def updates(self) -> list[str]:
        """Refs of the messages edited, in order."""
        return [s.ref for s in self.sent if s.kind == "update"]

    def texts(self) -> list[str]:
        return [s.message.text for s in self.sent]
