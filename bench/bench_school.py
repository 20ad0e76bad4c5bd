"""The school the benchmarks book in: 100 staff (plus an SLT and a DSL member) and 1,100
pupils, every one with written consent on file, and the school days ahead."""

from __future__ import annotations

from datetime import date, timedelta

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
    staff = ["email,forename,surname,roles"]
    staff += [f"{email(n)},Staff{n},Member{n},staff" for n in range(STAFF)]
    staff += ["slt@school.test,Sally,Leader,staff;slt", "dsl@school.test,Dee,Lead,staff;dsl"]
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
                evidence=f"<{n}@home.test>",
                actor=None,
            )


def school_days(policy: Policy, start: date, count: int) -> list[date]:
    """The first ``count`` days from ``start`` on which the school is open."""
    days: list[date] = []
    d = start
    while len(days) < count:
        if not policy.closed_reason(d):
            days.append(d)
        d += timedelta(days=1)
    return days
