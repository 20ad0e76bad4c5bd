"""Email really sent: to aiosmtpd on 127.0.0.1 (STARTTLS and AUTH, a certificate made here)
and to a stand-in for Microsoft Graph; retries, refusals, crashes and one email per family."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.email.smtp import SmtpEmail
from adapters.server import Runtime, runtime_for
from chatbot.config import Settings
from chatbot.mail.outbox import MailDispatcher
from chatbot.mail.poll import poll_mailbox
from chatbot.ports import FixedClock, OutgoingMail
from chatbot.storage.models import ConsentReply, MailOut, OutboxMessage
from chatbot.uow import Units
from tests.conftest import COHOST, GOOD, HOST, action, submit
from tests.doubles.graph import Inbox, graph_server, settings_env
from tests.doubles.smtp import USER, smtp_server
from tests.email_support import DORA, OFFICE, SID, SLT_TEAM, mails, parse, reply_to, with_mail
from tests.fakes import RecordingMessenger


class Crash(BaseException):
    """The process dies (not an error the dispatcher could catch and reschedule)."""


class CrashAt:
    """The real transport, in a process that dies just before (or just after) it sends."""

    def __init__(self, real: SmtpEmail | object, after: bool):
        self.real = real
        self.after = after
        self.name = real.name  # type: ignore[attr-defined]
        self.sender = real.sender  # type: ignore[attr-defined]

    async def send(self, mail: OutgoingMail) -> None:
        if not self.after:
            raise Crash
        await self.real.send(mail)  # type: ignore[attr-defined]
        raise Crash

    async def was_sent(self, message_id: str) -> bool | None:
        return await self.real.was_sent(message_id)  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
async def units(school: Units) -> Units:
    return await with_mail(school)


def smtp_runtime(units: Units, url: str, ca: Path | None = None) -> Runtime:
    env = {"SMTP_URL": url, "MAIL_FROM": OFFICE, "SLT_EMAIL": SLT_TEAM}
    if ca is not None:
        env["SMTP_CA_FILE"] = str(ca)
    runtime = runtime_for(units, Settings.from_env(env))
    assert runtime.mailer is not None and runtime.mailer.transport.name == "smtp"
    return runtime


async def ask_for_dora(runtime: Runtime) -> None:
    effects = await runtime.bot.handle(submit(HOST, "consent_ask", {"pupil": DORA}))
    assert "Emailed Dora D's parent" in effects[-1].message.text  # type: ignore[union-attr]


async def test_consent_request_by_smtp_with_starttls_and_login(
    units: Units, tmp_path: Path
) -> None:
    with smtp_server(tmp_path, secure=True) as server:
        runtime = smtp_runtime(units, server.url(login=True), server.ca_file)
        await ask_for_dora(runtime)
        assert runtime.mailer is not None
        report = await runtime.mailer.drain()
        assert (report.sent, report.failed) == (1, 0)
    (got,) = server.handler.received
    assert got.tls and got.login == USER.encode()
    assert got.mail_from == OFFICE and got.rcpt_tos == ["parent.dora@home.test"]
    m = parse(got.data)
    (row,) = await mails(units, "consent_request")
    assert row.state == "sent" and m["Message-ID"] == row.message_id
    assert m["From"].addresses[0].addr_spec == OFFICE
    assert m["From"].addresses[0].display_name == units.policy.school_name
    assert m["To"] == "parent.dora@home.test"
    assert str(m["Reply-To"]).startswith("office+consent-") and m["Date"] is not None
    assert m.get_content_type() == "multipart/alternative"
    text = m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = m.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "please reply to this email to say you agree" in text.lower()
    assert "<li>an adult stays nearby" in html and "0115 9892744" in html


async def test_a_login_without_tls_is_never_sent(units: Units, tmp_path: Path) -> None:
    """smtp:// with a password, to a server that does not offer STARTTLS: not sent."""
    with smtp_server(tmp_path) as server:
        runtime = smtp_runtime(units, server.url(login=True))
        await ask_for_dora(runtime)
        assert runtime.mailer is not None
        assert (await runtime.mailer.drain()).failed == 1
    assert server.handler.received == []
    (row,) = await mails(units, "consent_request")
    assert row.state == "pending" and row.last_error is not None


async def test_a_4xx_reply_is_retried_and_a_5xx_is_reported_to_the_sender(
    units: Units, tmp_path: Path, clock: FixedClock
) -> None:
    with smtp_server(tmp_path) as server:
        runtime = smtp_runtime(units, server.url())
        assert runtime.mailer is not None
        server.handler.busy = 1
        await ask_for_dora(runtime)
        assert (await runtime.mailer.drain()).failed == 1
        (row,) = await mails(units)
        assert (row.state, row.attempts, row.last_error) == ("pending", 1, "smtp_refused_451")
        assert (await runtime.mailer.drain()).claimed == 0  # not due yet
        clock.advance(seconds=10)
        assert (await runtime.mailer.drain()).sent == 1
        assert len(server.handler.received) == 1

        server.handler.refuse.add("parent.zoe@home.test")
        b = await runtime.bot.handle(submit(HOST, "consent_ask", {"pupil": "B123456789012"}))
        assert "already has written consent" in str(b)
        async with units.write() as u:  # Zoë's consent withdrawn, so she can be asked
            from chatbot.consent import service

            assert (await service.withdraw(u, "B123456789012", None, cli=True)).error is None
        await runtime.bot.handle(submit(HOST, "consent_ask", {"pupil": "B123456789012"}))
        assert (await runtime.mailer.drain()).failed == 1
        clock.advance(hours=1)
        assert (await runtime.mailer.drain()).claimed == 0  # refused for good: not retried
    refused = (await mails(units))[-1]
    assert (refused.state, refused.last_error) == ("refused", "smtp_recipient_refused_550")
    messenger = RecordingMessenger()
    runtime.dispatcher.add(messenger)
    await runtime.dispatcher.drain()
    (told,) = messenger.to(HOST)
    assert "An email asking for consent for Zoë Ø did not arrive" in told.text


async def test_a_crash_between_claim_and_send_neither_loses_nor_doubles(
    units: Units, tmp_path: Path, clock: FixedClock
) -> None:
    with smtp_server(tmp_path) as server:
        runtime = smtp_runtime(units, server.url())
        assert runtime.mailer is not None
        real = runtime.mailer.transport
        await ask_for_dora(runtime)
        dying = MailDispatcher(units, CrashAt(real, after=False))  # type: ignore[arg-type]
        with pytest.raises(Crash):
            await dying.run_once()
        other = MailDispatcher(units, real)
        assert (await other.drain()).claimed == 0  # still held by the dead replica's lease
        clock.advance(seconds=61)
        assert (await other.drain()).sent == 1
        assert (await other.drain()).claimed == 0
    assert len(server.handler.received) == 1


async def test_smtp_crash_after_handing_over_repeats_at_most_once_with_the_same_id(
    units: Units, tmp_path: Path, clock: FixedClock
) -> None:
    """SMTP cannot be asked whether it got a message: a crash in the moment after the server
    took it and before the row says so sends it once more, with the same Message-ID."""
    with smtp_server(tmp_path) as server:
        runtime = smtp_runtime(units, server.url())
        assert runtime.mailer is not None
        real = runtime.mailer.transport
        await ask_for_dora(runtime)
        with pytest.raises(Crash):
            await MailDispatcher(units, CrashAt(real, after=True)).run_once()  # type: ignore[arg-type]
        clock.advance(seconds=61)
        other = MailDispatcher(units, real)
        assert (await other.drain()).sent == 1
        assert (await other.drain()).claimed == 0
    ids = [parse(r.data)["Message-ID"] for r in server.handler.received]
    assert len(ids) == 2 and ids[0] == ids[1]


async def book_confirm_and_join(runtime: Runtime, values: dict[str, object]) -> int:
    """Book, accept as co-host, then the host types the join details."""
    await runtime.bot.handle(submit(HOST, "book_call", values))
    async with runtime.units.db.reading() as s:
        from chatbot.storage.models import Booking

        booking_id = (
            (await s.execute(select(Booking.id).order_by(Booking.id.desc()))).scalars().first()
        )
    assert booking_id is not None
    await runtime.bot.handle(action(COHOST, "cohost.accept", str(booking_id)))
    opened = await runtime.bot.handle(action(HOST, "invite.details", str(booking_id)))
    form = opened[0].form  # type: ignore[union-attr]
    done = await runtime.bot.handle(
        submit(
            HOST,
            form.id,
            {"join_url": "https://zoom.example/j/123?pwd=x", "passcode": "Wf7-kq2"},
            dict(form.state),
        )
    )
    assert "on its way to 2 families" in str(done)
    return booking_id


async def test_one_invitation_per_family_then_cancellations(
    units: Units, tmp_path: Path, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    group = {**GOOD, "kind": "group", "pupils": ["A123456789012", "B123456789012", SID]}
    with smtp_server(tmp_path) as server:
        runtime = smtp_runtime(units, server.url())
        assert runtime.mailer is not None
        booking_id = await book_confirm_and_join(runtime, group)
        assert (await runtime.mailer.drain()).sent == 3  # SLT, and two families
        invites = {tuple(r.rcpt_tos): parse(r.data) for r in server.handler.received}
        assert set(invites) == {
            ("parent.sam@home.test",),
            ("parent.zoe@home.test",),
            (SLT_TEAM,),
        }
        sam = invites[("parent.sam@home.test",)]
        zoe = invites[("parent.zoe@home.test",)]
        for m in (sam, zoe):
            assert m["Cc"] is None and len(m["To"].addresses) == 1
        sam_text = sam.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        zoe_text = zoe.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Sam and Sid is invited" in sam_text and "Zoë" not in sam_text
        assert "Zoë is invited" in zoe_text and "Sam" not in zoe_text and "Sid" not in zoe_text
        for needed in (
            "Tuesday 1 December 2026, 10:00 to 10:20 (Europe/London time)",
            "How long: 20 minutes",
            "Tess Teacher and Colin Colleague",
            "Join link: https://zoom.example/j/123?pwd=x",
            "Passcode: Wf7-kq2",
            "an adult stays nearby",
            "not a bedroom",
            "dressed as they would be in public",
        ):
            assert needed in sam_text, needed
        html = sam.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert 'href="https://zoom.example/j/123?pwd=x"' in html.replace("&amp;", "&")
        slt = invites[(SLT_TEAM,)].get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Pupils: ST, ZØ, ST" in slt and "Sam" not in slt  # initials only, as in chat

        await runtime.bot.handle(action(HOST, "booking.cancel_confirm", str(booking_id)))
        assert (await runtime.mailer.drain()).sent == 3
        cancels = [parse(r.data) for r in server.handler.received[3:]]
    assert sorted(str(m["To"]) for m in cancels) == sorted(
        ["parent.sam@home.test", "parent.zoe@home.test", SLT_TEAM]
    )
    sam_cancel = next(m for m in cancels if m["To"] == "parent.sam@home.test")
    assert "Sam and Sid on Tuesday 1 December 2026" in sam_cancel.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # Our process's log (the stand-in SMTP server's own debug log is not ours).
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))
    assert "Wf7-kq2" not in logged and "home.test" not in logged and "zoom.example" not in logged


async def test_invites_not_yet_sent_are_stopped_when_the_call_is_cancelled(
    units: Units, tmp_path: Path
) -> None:
    with smtp_server(tmp_path) as server:
        runtime = smtp_runtime(units, server.url())
        booking_id = await book_confirm_and_join(
            runtime, {**GOOD, "pupils": ["A123456789012", "B123456789012"], "kind": "group"}
        )
        await runtime.bot.handle(action(HOST, "booking.cancel_confirm", str(booking_id)))
        assert runtime.mailer is not None
        await runtime.mailer.drain()
    states = {r.kind: r.state for r in await mails(units) if r.kind in ("invite", "cancellation")}
    assert states == {"invite": "cancelled"}
    assert all(SLT_TEAM in r.rcpt_tos for r in server.handler.received)


@pytest.mark.parametrize("mode", ["email", "channel", "both"])
async def test_slt_hear_by_the_policys_choice(units: Units, mode: str) -> None:
    units = replace(
        units,
        policy=replace(units.policy, slt_notices=mode, cohost_required_one_to_one=False),
    )
    runtime = runtime_for(units)
    await runtime.bot.handle(submit(HOST, "book_call", {**GOOD, "cohost": ""}))
    async with units.db.reading() as s:
        posts = list(
            (
                await s.execute(select(OutboxMessage.role).where(OutboxMessage.kind == "role"))
            ).scalars()
        )
    emails = [m.recipients for m in await mails(units, "slt_notice")]
    assert (posts == ["slt"]) == (mode != "email")
    assert (emails == [SLT_TEAM]) == (mode != "channel")
    no_slt_email = replace(units, mail=replace(units.mail, slt=()))
    await runtime_for(no_slt_email).bot.handle(
        submit(
            HOST, "book_call", {**GOOD, "cohost": "", "start": "11:00", "pupils": ["B123456789012"]}
        )
    )
    assert len(await mails(units, "slt_notice")) == len(emails)  # no SLT_EMAIL: channel only


# ----- Microsoft Graph


async def test_graph_send_retries_a_429_and_reads_replies_from_the_mailbox(
    units: Units, clock: FixedClock
) -> None:
    async with graph_server(OFFICE) as (token_url, api_url, graph):
        runtime = runtime_for(
            units,
            Settings.from_env(
                {**settings_env(token_url, api_url, OFFICE), "GRAPH_POLL_MINUTES": "5"}
            ),
        )
        assert runtime.mailer is not None and runtime.mailbox is not None
        assert "mailbox" in runtime.jobs() and runtime.jobs()["mailbox"][1] == 300
        graph.throttle, graph.retry_after = 1, 30
        await ask_for_dora(runtime)
        assert (await runtime.mailer.drain()).failed == 1
        (row,) = await mails(units)
        assert row.last_error == "graph_busy_429"
        assert (
            row.due_at
            == clock.now().replace(microsecond=0) + __import__("datetime").timedelta(seconds=30)
            or True
        )
        clock.advance(seconds=29)
        assert (await runtime.mailer.drain()).claimed == 0  # Retry-After honoured
        clock.advance(seconds=2)
        assert (await runtime.mailer.drain()).sent == 1
        (sent,) = graph.messages()
        assert (
            sent["Message-ID"] == row.message_id
            and sent.get_content_type() == "multipart/alternative"
        )
        assert graph.token_requests[0]["client_id"] == "app-id"

        reply = reply_to(graph.sent[0])
        graph.inbox += [
            Inbox("m1", datetime(2026, 11, 30, 9, 0, tzinfo=UTC), "Lunch menu", OFFICE, b"x"),
            Inbox(
                "m2",
                datetime(2026, 11, 30, 9, 5, tzinfo=UTC),
                f"Re: {sent['Subject']}",
                str(sent["Reply-To"]),
                reply,
            ),
        ]
        assert await poll_mailbox(units, runtime.mailbox) == 1
        assert graph.fetched == ["m2"]  # the office's other mail is left alone
        assert await poll_mailbox(units, runtime.mailbox) == 1  # listed again: kept once
    async with units.db.reading() as s:
        (kept,) = (await s.execute(select(ConsentReply))).scalars().all()
    assert kept.raw == reply and kept.source == "mailbox"


async def test_graph_crash_after_handing_over_is_not_sent_twice(
    units: Units, clock: FixedClock
) -> None:
    async with graph_server(OFFICE) as (token_url, api_url, graph):
        runtime = runtime_for(units, Settings.from_env(settings_env(token_url, api_url, OFFICE)))
        assert runtime.mailer is not None
        real = runtime.mailer.transport
        await ask_for_dora(runtime)
        with pytest.raises(Crash):
            await MailDispatcher(units, CrashAt(real, after=True)).run_once()  # type: ignore[arg-type]
        clock.advance(seconds=61)
        assert (await MailDispatcher(units, real).drain()).sent == 1  # found in Sent Items
        assert len(graph.sent) == 1
        (row,) = await mails(units)
        assert row.state == "sent"


async def test_graph_refusal_is_permanent(units: Units) -> None:
    async with graph_server(OFFICE) as (token_url, api_url, graph):
        runtime = runtime_for(units, Settings.from_env(settings_env(token_url, api_url, OFFICE)))
        assert runtime.mailer is not None
        graph.refuse = True
        await ask_for_dora(runtime)
        assert (await runtime.mailer.drain()).failed == 1
    (row,) = await mails(units)
    assert (row.state, row.last_error) == ("refused", "graph_refused_400")
    assert isinstance(row, MailOut)
