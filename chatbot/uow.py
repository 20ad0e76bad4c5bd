"""What every service needs: the database, the school's policy and the time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from chatbot.policy import Policy
from chatbot.ports import Clock, SystemClock
from chatbot.storage.db import Database


@dataclass
class Core:
    db: Database
    policy: Policy
    clock: Clock = field(default_factory=SystemClock)

    def now(self) -> datetime:
        return self.clock.now()

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.policy.zone)
