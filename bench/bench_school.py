"""The school the benchmarks book in: 100 staff (plus an SLT and a DSL member) and 1,100
pupils, every one with written consent on file, and the bookings its rules allow ahead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from chatbot.consent import service as consent
from chatbot.policy import Policy
from chatbot.roster import importer as roster
from chatbot.uow import Units

STAFF = 100
PUPILS = 1100


def email(n: int) -> str:
    return f"staff{n:03d}@school.test"


def upn(n: int) -> str:
    return f"P{n:012d}"


async def seed(core: Units) -> None:
    checked = ",2024-09-02,2025-09-01"  # DBS and training on record, as in a real school
    staff = ["email,forename,surname,roles,dbs_checked,safeguarding_training"]
    staff += [f"{email(n)},Staff{n},Member{n},staff{checked}" for n in range(STAFF)]
    staff += [
        f"slt@school.test,Sally,Leader,staff;slt{checked}",
        f"dsl@school.test,Dee,Lead,staff;dsl{checked}",
    ]
    await roster.import_staff(core, "\n".join(staff) + "\n")
    pupils = ["upn,forename,surname,class,parent_email"]
    pupils += [
        f"{upn(n)},Pupil{n},Surname{n},Year {n % 6 + 1},p{n}@home.test" for n in range(PUPILS)
    ]
    await roster.import_pupils(core, "\n".join(pupils) + "\n")
    received = core.now() - timedelta(days=1)
    async with core.write() as u:
        for n in range(PUPILS):
            await consent.grant(
                u,
                upn=upn(n),
                parent_email=f"p{n}@home.test",
                received_at=received,
                evidence_kind="message_id",
                evidence=f"<{n}@home.test> Re: video calls",
                actor=None,
            )


HOSTS = STAFF // 2  # staff 0..49 host; staff 50..99 co-host (host + HOSTS)
SLOTS = 12  # a day's call times: 09:00, 09:30 ... 14:30, each call 20 minutes
PER_WEEK = PUPILS  # every pupil once a week: the weekly limit is one call


@dataclass(frozen=True)
class Planned:
    host: int
    cohost: int
    pupil: int
    day: date
    start: str  # HH:MM, school time

    def values(self, cohost: str) -> dict[str, Any]:
        """The booking form's values, as the core reads them (``cohost`` as the platform
        names the co-host: an email, or a Slack user id)."""
        return {
            "pupils": [upn(self.pupil)],
            "kind": "one_to_one",
            "date": self.day.isoformat(),
            "start": self.start,
            "duration": "20",
            "cohost": cohost,
            "platform": "Zoom",
            "plan": "Share a reading book.",
        }


class BookingPlan:
    """Bookings every rule allows, each handed out once: the n-th never shares a host's or
    co-host's time with another, nor a pupil's week, so none is refused for a rule and each
    one costs what a stored booking costs. Starts a week after ``start``, on whole weeks."""

    def __init__(self, policy: Policy, start: date):
        monday = start + timedelta(days=7 - start.weekday() + 7)
        self.policy = policy
        self.weeks: list[list[date]] = []
        self._next_monday = monday

    def _week(self, w: int) -> list[date]:
        # A week needs two school days: 1,100 pupils at 50 hosts x 12 slots a day.
        while len(self.weeks) <= w:
            days = [
                d
                for d in (self._next_monday + timedelta(days=i) for i in range(7))
                if not self.policy.closed_reason(d)
            ]
            self._next_monday += timedelta(days=7)
            if len(days) * HOSTS * SLOTS >= PER_WEEK:
                self.weeks.append(days)
        return self.weeks[w]

    def __getitem__(self, n: int) -> Planned:
        week, k = divmod(n, PER_WEEK)
        j, host = divmod(k, HOSTS)  # k = j * HOSTS + host: (host, j) is unique in the week
        day, slot = divmod(j, SLOTS)
        start = datetime(2000, 1, 1, 9, 0) + timedelta(minutes=30 * slot)
        return Planned(host, HOSTS + host, k, self._week(week)[day], f"{start:%H:%M}")
