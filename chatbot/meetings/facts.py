"""What the rest of the bot may know about a call's meeting (the checklist, /my-calls, the
invitation email): its join details and whether it is flagged. Only the call's own staff
are ever shown the join link and passcode."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MeetingFacts:
    state: str  # see chatbot.storage.models.Meeting
    join_url: str | None
    passcode: str | None
    problems: tuple[str, ...]  # settings that break the policy, as people are told them

    @property
    def ready(self) -> bool:
        return bool(self.join_url) and self.state in ("created", "ready")

    @property
    def flagged(self) -> bool:
        return bool(self.problems)
