"""A small demo school, so a newcomer can book a call in a minute."""

from __future__ import annotations

from datetime import date, timedelta

from chatbot.consent import service as consent
from chatbot.roster import importer as roster
from chatbot.uow import Units

STAFF = """email,forename,surname,roles,dbs_checked,safeguarding_training
teacher@ashlea.example,Tess,Teacher,staff,2024-09-02,2025-09-01
ta@ashlea.example,Tom,Assistant,staff,2024-09-02,2025-09-01
slt@ashlea.example,Sally,Leader,staff;slt,2024-09-02,2025-09-01
dsl@ashlea.example,Dee,Safeguarding,staff;dsl,2024-09-02,2025-09-01
deputy@ashlea.example,Dan,Deputy,staff;deputy_dsl,2024-09-02,2025-09-01
head@ashlea.example,Hal,Head,staff;slt;admin,2024-09-02,2025-09-01
"""
PUPILS = """UPN,Legal Forename,Legal Surname,Reg Group,Primary Contact Email
A100000000001,Amira,Khan,Year 2,amira.parent@home.example
A100000000002,Ben,Okafor,Year 2,ben.parent@home.example
A100000000003,Chloé,Dubois,Year 3,chloe.parent@home.example
A100000000004,Dylan,Evans,Year 3,dylan.parent@home.example
"""
WITH_CONSENT = ("A100000000001", "A100000000002", "A100000000003")
PARENTS = {
    "A100000000001": "amira.parent@home.example",
    "A100000000002": "ben.parent@home.example",
    "A100000000003": "chloe.parent@home.example",
}
DEMO_USER = "teacher@ashlea.example"


async def seed(units: Units) -> None:
    await roster.import_staff(units, STAFF, actor="demo")
    await roster.import_pupils(units, PUPILS, actor="demo")
    async with units.write() as u:
        current = {p.upn for p, _ in await consent.listing(u)}
        for upn in WITH_CONSENT:
            if upn in current:
                continue
            await consent.grant(
                u,
                upn=upn,
                parent_email=PARENTS[upn],
                received_at=u.now - timedelta(days=3),
                evidence_kind="message_id",
                evidence=f"<demo-{upn.lower()}@home.example> Re: video calls",
                actor=None,
                actor_label="demo",
            )


def next_school_day(units: Units) -> date:
    d = units.local(units.now()).date() + timedelta(days=1)
    while not units.policy.is_school_day(d):
        d += timedelta(days=1)
    return d


def intro(units: Units) -> str:
    day = next_school_day(units)
    return (
        "Demo school loaded: staff teacher@, ta@, slt@, dsl@, deputy@, head@ashlea.example; "
        "pupils Amira, Ben and Chloé have consent, Dylan has none.\n"
        f"Try: /book-call, pupils 'Amira', date {day.isoformat()}, start 10:00, co-host "
        "ta@ashlea.example. Then '/as ta@ashlea.example' and click Accept.\n"
        "Zoom is not connected in the demo. On a server connected to Zoom (chatbot serve with "
        "ZOOM_* set), accepting would also make the Zoom meeting with the policy's settings, "
        "check them, send the host and co-host its link and passcode, and watch who joins.\n"
    )
