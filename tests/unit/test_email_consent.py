"""Consent by email, the whole path: the request, the parent's reply kept as evidence, and
the requester's confirming click; replies that must be refused or held (#13)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from chatbot.bootstrap import build_bot
from chatbot.consent import by_email
from chatbot.effects import CloseForm, Effect, Ephemeral, FormErrors, OpenForm, UpdateMessage
from chatbot.mail.inbound import MAX_MESSAGE_BYTES
from chatbot.outbox import Dispatcher
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, Consent, ConsentReply, ConsentRequest, Pupil
from chatbot.ui import Message, Section, spans, unmarked
from chatbot.uow import Units
from tests.conftest import action, command, snapshot, submit
from tests.email_support import DORA, OFFICE, mails, parse, reply_to, with_mail
from tests.fakes import RecordingMessenger

TEACHER = "teacher@school.test"


def said(effects: list[Effect]) -> str:
    return " ".join(e.message.text for e in effects if isinstance(e, Ephemeral))


async def ask(units: Units, bot: Bot, upn: str = DORA, who: str = TEACHER) -> list[Effect]:
    opened = await bot.handle(command(who, "consent", "ask"))
    assert isinstance(opened[0], OpenForm) and opened[0].form.id == by_email.ASK_FORM_ID
    return await bot.handle(submit(who, by_email.ASK_FORM_ID, {"pupil": upn}))


async def take_in(units: Units, raw: bytes) -> by_email.Intake:
    async with units.write() as u:
        return await by_email.take_in(u, raw, "file")


async def delivered(units: Units, clock: FixedClock) -> RecordingMessenger:
    messenger = RecordingMessenger()
    await Dispatcher(units.db, clock, messenger).drain()
    return messenger


async def count(units: Units, model: type) -> int:
    async with units.db.reading() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


@pytest.fixture
async def units(school: Units) -> Units:
    return await with_mail(school)


@pytest.fixture
def mail_bot(units: Units) -> Bot:
    return build_bot(units)


async def test_request_reply_and_confirming_click_record_consent(
    units: Units, mail_bot: Bot, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    effects = await ask(units, mail_bot)
    assert isinstance(effects[0], CloseForm)
    assert "Dora shows as consent requested (30 Nov 2026)" in said(effects)

    (request,) = await mails(units, "consent_request")
    assert request.recipients == "parent.dora@home.test" and request.state == "pending"
    sent = parse(request.raw)
    async with units.db.reading() as s:
        req = (await s.execute(select(ConsentRequest))).scalar_one()
    assert sent["Reply-To"] == f"office+consent-{req.token}@school.test"
    assert f"[ref consent-{req.token}]" in sent["Subject"]
    assert sent["Message-ID"] == request.message_id
    text = sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "This email is about Dora." in text and "reply to this email to say you agree" in text

    listed = await mail_bot.handle(command(TEACHER, "consent", "requests"))
    assert "Dora D: consent requested 30 Nov 2026 by teacher@school.test" in unmarked(
        listed[0].message.blocks[1].text  # type: ignore[union-attr]
    )

    raw = reply_to(request.raw)
    outcome = await take_in(units, raw)
    assert outcome.kept and "Tess Teacher has been asked to confirm" in outcome.text
    async with units.db.reading() as s:
        kept = (await s.execute(select(ConsentReply))).scalar_one()
    assert kept.raw == raw and kept.size == len(raw) and kept.state == "to_confirm"
    assert kept.from_address == "parent.dora@home.test"
    assert await count(units, Consent) == 3  # Sam, Zoë, Sid: nothing recorded yet

    chat = await delivered(units, clock)
    (ask_msg,) = chat.to(TEACHER)
    shown = " ".join(unmarked(b.text) for b in ask_msg.blocks if isinstance(b, Section))
    assert "Yes, I agree to the video calls." in shown
    assert "> " not in shown and "the school wrote" not in shown  # quoted text left out
    agree = next(b for b in ask_msg.buttons() if b.action_id == "consent.reply.agree")

    other = await mail_bot.handle(action("other@school.test", agree.action_id, agree.value))
    assert "Only the person who sent the request" in said(other)
    assert await count(units, Consent) == 3

    done = await mail_bot.handle(action(TEACHER, agree.action_id, agree.value))
    assert isinstance(done[0], UpdateMessage)
    assert "Recorded written consent for Dora D" in said(done)
    async with units.db.reading() as s:
        c = (await s.execute(select(Consent).order_by(Consent.id.desc()).limit(1))).scalar_one()
        actions = list(
            (await s.execute(select(AuditEvent.action).order_by(AuditEvent.id))).scalars()
        )
    assert (c.evidence_kind, c.evidence, c.parent_email) == (
        "email_reply",
        kept.sha256,
        "parent.dora@home.test",
    )
    assert ["consent.request", "consent.reply_kept", "consent.grant", "consent.reply_agreed"] == [
        a for a in actions if a.startswith("consent.")
    ][-4:]
    again = await mail_bot.handle(action(TEACHER, agree.action_id, agree.value))
    assert "Already decided" in said(again) and await count(units, Consent) == 4

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "parent.dora" not in logged and "home.test" not in logged


async def test_reply_from_another_address_is_held_until_accepted_with_a_reason(
    units: Units, mail_bot: Bot, clock: FixedClock
) -> None:
    await ask(units, mail_bot)
    (request,) = await mails(units, "consent_request")
    outcome = await take_in(units, reply_to(request.raw, sender="stranger@elsewhere.test"))
    assert outcome.kept and "is held" in outcome.text
    (msg,) = (await delivered(units, clock)).to(TEACHER)
    assert "not the parent email on the roster" in msg.text
    buttons = {b.action_id: b for b in msg.buttons()}
    assert "consent.reply.agree" not in buttons  # no one-click acceptance
    held = buttons["consent.reply.held"]
    refused = await mail_bot.handle(
        action(TEACHER, "consent.reply.agree", held.value)  # a forged click
    )
    assert "use “Accept it (give a reason)”" in said(refused)

    form = await mail_bot.handle(action(TEACHER, held.action_id, held.value))
    assert isinstance(form[0], OpenForm)
    state = dict(form[0].form.state)
    empty = await mail_bot.handle(submit(TEACHER, by_email.HELD_FORM_ID, {"reason": " "}, state))
    assert isinstance(empty[0], FormErrors) and await count(units, Consent) == 3
    reason = "Dora's father; spoke to him by phone on 30 Nov."
    ok = await mail_bot.handle(submit(TEACHER, by_email.HELD_FORM_ID, {"reason": reason}, state))
    assert isinstance(ok[0], CloseForm)
    async with units.db.reading() as s:
        grant = (
            (await s.execute(select(AuditEvent).where(AuditEvent.action == "consent.grant")))
            .scalars()
            .all()[-1]
        )
    assert grant.detail["reason"] == reason and grant.detail["roster_address"] is False


async def test_hand_recorded_consent_from_another_address_needs_a_reason(
    units: Units, mail_bot: Bot
) -> None:
    values = {
        "pupil": DORA,
        "parent_email": "someone.else@home.test",
        "received_date": "2026-11-29",
        "evidence": "<x@home.test> Re: video calls",
    }
    first = await mail_bot.handle(submit(TEACHER, "consent", values))
    assert (
        isinstance(first[0], FormErrors)
        and "not the parent email on the roster" in (first[0].errors["reason"])
    )
    ok = await mail_bot.handle(
        submit(TEACHER, "consent", {**values, "reason": "Grandmother, legal guardian"})
    )
    assert isinstance(ok[0], CloseForm)
    roster = await mail_bot.handle(
        submit(
            TEACHER,
            "consent",
            {**values, "pupil": "A123456789012", "parent_email": "parent.sam@home.test"},
        )
    )
    assert isinstance(roster[0], CloseForm)  # the roster's own address needs no reason


def _html_only(request: bytes) -> bytes:
    return reply_to(request, text=None, html="<p>Yes <b>I agree</b></p>")


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda r: b"\x00\xffnot an email at all\r\n\r\n", "not an email the bot can read"),
        (lambda r: reply_to(r, subject="Re: video calls", to=OFFICE), "not a reply to one"),
        (
            lambda r: reply_to(
                r,
                subject="Re: [ref consent-aaaaaaaaaaaaaaaaaaaa]",
                to="office+consent-aaaaaaaaaaaaaaaaaaaa@school.test",
            ),
            "No consent request has that reference",
        ),
        (_html_only, "no plain-text part"),
        (
            lambda r: b"From: parent.dora@home.test\r\n\r\n" + b"x" * (30 * 1024 * 1024),
            "the most the bot keeps is 10.0 MB",
        ),
    ],
    ids=["malformed", "no-token", "forged-token", "no-text-part", "30MB"],
)
async def test_bad_replies_are_refused_and_nothing_is_kept(
    units: Units, mail_bot: Bot, make: object, why: str
) -> None:
    await ask(units, mail_bot)
    (request,) = await mails(units, "consent_request")
    before = await snapshot(units.db)
    raw = make(request.raw)  # type: ignore[operator]
    assert raw != b"" and (len(raw) > MAX_MESSAGE_BYTES) == (why.startswith("the most"))
    outcome = await take_in(units, raw)
    assert not outcome.kept and why in outcome.text
    assert await snapshot(units.db) == before


async def test_parents_html_and_markup_are_shown_as_text(
    units: Units, mail_bot: Bot, clock: FixedClock
) -> None:
    await ask(units, mail_bot)
    (request,) = await mails(units, "consent_request")
    words = "I agree **totally** <script>alert(1)</script> \\*"
    await take_in(units, reply_to(request.raw, text=words, html="<h1>HTML IS NOT SHOWN</h1>"))
    (msg,) = (await delivered(units, clock)).to(TEACHER)
    runs = [run for b in msg.blocks if isinstance(b, Section) for run in spans(b.text)]
    shown = "".join(t for t, _ in runs)
    assert words in shown and "HTML IS NOT SHOWN" not in shown
    assert not any(bold and "totally" in t for t, bold in runs)


async def test_the_same_reply_twice_is_kept_once(units: Units, mail_bot: Bot) -> None:
    await ask(units, mail_bot)
    (request,) = await mails(units, "consent_request")
    raw = reply_to(request.raw)
    assert (await take_in(units, raw)).kept
    again = await take_in(units, raw)
    assert not again.kept and "already kept" in again.text
    assert await count(units, ConsentReply) == 1


async def test_asking_needs_the_mail_set_up_and_a_parent_address(
    school: Units, bot: Bot, units: Units, mail_bot: Bot
) -> None:
    off = await bot.handle(command(TEACHER, "consent", "ask"))
    assert "can't send email yet" in said(off)
    noah = await mail_bot.handle(submit(TEACHER, by_email.ASK_FORM_ID, {"pupil": "C123456789012"}))
    assert isinstance(noah[0], FormErrors) and "no parent email" in noah[0].errors["pupil"]
    sam = await mail_bot.handle(submit(TEACHER, by_email.ASK_FORM_ID, {"pupil": "A123456789012"}))
    assert (
        isinstance(sam[0], FormErrors) and "already has written consent" in sam[0].errors["pupil"]
    )
    async with units.write() as u:
        dora = (await u.session.execute(select(Pupil).where(Pupil.upn == DORA))).scalar_one()
        dora.parent_email = "not an address@@home"
    bad = await mail_bot.handle(submit(TEACHER, by_email.ASK_FORM_ID, {"pupil": DORA}))
    assert isinstance(bad[0], FormErrors) and "not a usable address" in bad[0].errors["pupil"]
    assert await mails(units) == []


async def test_a_bounce_tells_whoever_asked(units: Units, mail_bot: Bot, clock: FixedClock) -> None:
    await ask(units, mail_bot)
    (request,) = await mails(units, "consent_request")
    report = (
        "From: MAILER-DAEMON@home.test\r\n"
        f"To: {OFFICE}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.home.test\r\n\r\n"
        "Final-Recipient: rfc822; parent.dora@home.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {request.message_id}\r\nSubject: Video calls\r\n"
        "--b1--\r\n"
    ).encode()
    outcome = await take_in(units, report)
    assert not outcome.kept and "bounce" in outcome.text
    (row,) = await mails(units, "consent_request")
    assert row.state == "bounced"
    (told,) = (await delivered(units, clock)).to(TEACHER)
    assert "An email asking for consent for Dora D did not arrive." in told.text
    assert isinstance(told, Message)


def test_email_html_shows_peoples_text_as_text() -> None:
    from chatbot.mail.compose import Facts, Letter, Link, Para, render_html, render_text

    hostile = '<script>alert(1)</script> "quoted" & <b>bold</b>'
    letter = Letter(
        "s", (Para(hostile), Facts((("Plan", hostile),)), Link(hostile, 'https://x.example/"><b>'))
    )
    html = render_html(letter)
    assert "<script>" not in html and "<b>" not in html
    assert 'href="https://x.example/&#34;&gt;&lt;b&gt;"' in html  # the link cannot break out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert hostile in render_text(letter)  # the text part is plain text: shown as written
