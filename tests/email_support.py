"""Shared set-up for the email tests: a school whose mail is set up, and parents' replies."""

from __future__ import annotations

from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid

from sqlalchemy import select

from chatbot.consent import service as consent
from chatbot.mail import MailSetup
from chatbot.roster import importer as roster
from chatbot.storage.models import MailOut
from chatbot.uow import Units
from tests.conftest import MONDAY_8AM

OFFICE = "office@school.test"
SLT_TEAM = "slt-team@school.test"
DORA = "D123456789012"  # a parent email on the roster, no consent yet
SID = "E123456789012"  # Sam's brother: the same parent address, with consent
EXTRA_PUPILS = """upn,forename,surname,class,parent_email
D123456789012,Dora,Day,Year 4,parent.dora@home.test
E123456789012,Sid,Taylor,Year 1,parent.sam@home.test
"""


async def with_mail(school: Units, slt: tuple[str, ...] = (SLT_TEAM,)) -> Units:
    """The test school, with Dora and Sid, whose mail is set up (MAIL_FROM, SLT_EMAIL)."""
    await roster.import_pupils(school, EXTRA_PUPILS)
    async with school.write() as u:
        res = await consent.grant(
            u,
            upn=SID,
            parent_email="parent.sam@home.test",
            received_at=MONDAY_8AM,
            evidence_kind="message_id",
            evidence="<sid@home.test> Re: video calls",
            actor=None,
        )
        assert not res.errors
    return replace(school, mail=MailSetup(sender=OFFICE, slt=slt))


def parse(raw: bytes) -> EmailMessage:
    m = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(m, EmailMessage)
    return m


async def mails(units: Units, kind: str | None = None) -> list[MailOut]:
    async with units.db.reading() as s:
        q = select(MailOut).order_by(MailOut.id)
        if kind:
            q = q.where(MailOut.kind == kind)
        return list((await s.execute(q)).scalars())


def reply_to(
    request: bytes,
    *,
    sender: str = "Dora's Mum <parent.dora@home.test>",
    text: str | None = "Yes, I agree to the video calls.\n\nThanks, Jo",
    html: str | None = None,
    subject: str | None = None,
    to: str | None = None,
) -> bytes:
    """A parent's reply to the email ``request``, as their mail program would save it."""
    original = parse(request)
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to if to is not None else str(original["Reply-To"])
    m["Subject"] = subject if subject is not None else f"Re: {original['Subject']}"
    m["In-Reply-To"] = str(original["Message-ID"])
    m["Message-ID"] = make_msgid(domain="home.test")
    m["Date"] = format_datetime(MONDAY_8AM)
    quoted = "\n".join(
        "> " + line for line in original.get_body(("plain",)).get_content().splitlines()[:5]
    )  # type: ignore[union-attr]
    if text is not None:
        m.set_content(f"{text}\n\nOn Mon, 30 Nov 2026 the school wrote:\n{quoted}\n")
        if html is not None:
            m.add_alternative(html, subtype="html")
    elif html is not None:
        m.set_content(html, subtype="html")
    return m.as_bytes()
