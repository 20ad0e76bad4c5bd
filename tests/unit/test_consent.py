"""Written parental consent: grant, withdraw, list; bad input refused with nothing written."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from chatbot.consent import service as consent
from chatbot.effects import CloseForm, FormErrors, OpenForm
from chatbot.roster import importer as roster
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, Consent, Staff
from chatbot.uow import Units
from tests.conftest import MONDAY_8AM, command, submit

NOAH = "C123456789012"
SAM = "A123456789012"
RECEIVED = datetime(2026, 11, 29, 18, 5, tzinfo=UTC)


async def consents(core: Units) -> list[Consent]:
    async with core.db.transaction() as s:
        return list((await s.execute(select(Consent).order_by(Consent.id))).scalars())


async def audit_count(core: Units, action: str) -> int:
    async with core.db.transaction() as s:
        q = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        return int((await s.execute(q)).scalar_one())


async def grant(core: Units, **changes: object) -> consent.ConsentResult:
    args: dict[str, object] = {
        "upn": NOAH,
        "parent_email": "Parent.Noah@Home.test",
        "received_at": RECEIVED,
        "evidence_kind": "message_id",
        "evidence": "<CAF123@mail.home.test> Re: video calls",
        "actor": None,
    }
    args.update(changes)
    return await in_unit(core, consent.grant, **args)  # type: ignore[arg-type]


async def in_unit(units: Units, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one consent service function in a unit of work, as the CLI does."""
    async with units.write() as u:
        return await fn(u, *args, **kwargs)


async def test_grant_withdraw_list(school: Units) -> None:
    before = len(await consents(school))  # Sam and Zoë already have consent
    res = await grant(school)
    assert res.errors == {} and res.pupil is not None and res.pupil.upn == NOAH
    rows = await consents(school)
    assert len(rows) == before + 1
    c = rows[-1]
    assert c.parent_email == "parent.noah@home.test"
    assert c.received_at == RECEIVED and c.recorded_at == MONDAY_8AM
    assert c.evidence == "<CAF123@mail.home.test> Re: video calls"
    assert c.recorded_by_label == "cli" and c.withdrawn_at is None
    assert {p.upn for p, _ in await in_unit(school, consent.listing)} == {
        SAM,
        "B123456789012",
        NOAH,
    }

    assert (await in_unit(school, consent.withdraw, NOAH.lower(), None, cli=True)).error is None
    [c] = [x for x in await consents(school) if x.id == c.id]
    assert c.withdrawn_at == MONDAY_8AM and c.withdrawn_by_label == "cli"
    assert NOAH not in {p.upn for p, _ in await in_unit(school, consent.listing)}
    assert await audit_count(school, "consent.grant") == 3
    assert await audit_count(school, "consent.withdraw") == 1

    err = (await in_unit(school, consent.withdraw, NOAH, None, cli=True)).error
    assert err is not None and "no consent on file" in err
    err = (await in_unit(school, consent.withdraw, "Z999999999999", None, cli=True)).error
    assert err is not None and "not on the pupil roster" in err


async def test_listing_shows_pupils_by_name(school: Units) -> None:
    listed = await in_unit(school, consent.listing)
    assert sorted(p.short_name for p, _ in listed) == ["Sam T", "Zoë Ø"]


async def test_bad_input_refused_nothing_written(school: Units) -> None:
    before = await consents(school)
    cases: list[tuple[dict[str, object], str, str]] = [
        ({"parent_email": "not an email"}, "parent_email", "not an email address"),
        ({"parent_email": ""}, "parent_email", "not an email address"),
        ({"parent_email": "a" * 400 + "@home.test"}, "parent_email", "not an email address"),
        ({"evidence": ""}, "evidence", "Message-ID and subject"),
        ({"evidence": "   "}, "evidence", "Message-ID and subject"),
        ({"evidence": "x" * 10_000}, "evidence", "too long"),
        ({"upn": "Z999999999999"}, "pupil", "not on the pupil roster"),
        ({"upn": "Ørsted"}, "pupil", "not on the pupil roster"),
        ({"received_at": datetime(2026, 12, 25, tzinfo=UTC)}, "received_date", "future"),
        ({"received_at": datetime(1, 1, 1, tzinfo=UTC)}, "received_date", "25 years ago"),
        ({"received_at": datetime(2001, 11, 29, tzinfo=UTC)}, "received_date", "25 years ago"),
    ]
    for change, field, words in cases:
        res = await grant(school, **change)
        assert field in res.errors and words in res.errors[field], (change, res.errors)
        assert res.consent is None
    assert [c.id for c in await consents(school)] == [c.id for c in before]
    assert await audit_count(school, "consent.grant") == 2  # only the fixture's two


def test_eml_evidence_sha256(tmp_path: Path) -> None:
    eml = tmp_path / "reply.eml"
    body = "From: parent@home.test\r\nSubject: Re: video calls\r\n\r\nYes, we agree. Zoë\r\n"
    eml.write_bytes(body.encode("utf-8"))
    digest = consent.eml_evidence(eml)
    assert digest == hashlib.sha256(body.encode("utf-8")).hexdigest()
    assert len(digest) == 64


async def test_eml_evidence_stored(school: Units, tmp_path: Path) -> None:
    eml = tmp_path / "reply.eml"
    eml.write_bytes(b"Subject: Re: video calls\r\n\r\nYes.\r\n")
    res = await grant(school, evidence_kind="eml_sha256", evidence=consent.eml_evidence(eml))
    assert res.errors == {}
    c = (await consents(school))[-1]
    assert c.evidence_kind == "eml_sha256"
    assert c.evidence == hashlib.sha256(eml.read_bytes()).hexdigest()


FORM = {
    "pupil": NOAH,
    "parent_email": "parent.noah@home.test",
    "received_date": "2026-11-29",
    "received_time": "18:05",
    "evidence": "<CAF123@mail.home.test> Re: video calls",
}


async def test_consent_form_from_chat(school: Units, bot: Bot) -> None:
    [opened] = await bot.handle(command("teacher@school.test", "consent"))
    assert isinstance(opened, OpenForm) and opened.form.id == "consent"
    effects = await bot.handle(submit("teacher@school.test", "consent", FORM))
    assert isinstance(effects[0], CloseForm), effects
    assert "Noah N." in str(effects[1])
    c = (await consents(school))[-1]
    async with school.db.transaction() as s:
        tess = await s.execute(select(Staff).where(Staff.email == "teacher@school.test"))
        tess_id = tess.scalar_one().id
    assert (c.recorded_by_id, c.recorded_by_label) == (tess_id, "teacher@school.test")
    assert c.received_at == RECEIVED  # 18:05 London time in November is 18:05 UTC

    [opened] = await bot.handle(command("teacher@school.test", "consent", "withdraw"))
    assert isinstance(opened, OpenForm) and opened.form.id == "consent_withdraw"
    effects = await bot.handle(submit("teacher@school.test", "consent_withdraw", {"pupil": NOAH}))
    assert isinstance(effects[0], CloseForm), effects
    assert (await consents(school))[-1].withdrawn_by_label == "teacher@school.test"


async def test_consent_form_refuses_bad_input(school: Units, bot: Bot) -> None:
    before = len(await consents(school))
    cases: list[tuple[dict[str, object], str]] = [
        ({"parent_email": "nope"}, "parent_email"),
        ({"evidence": ""}, "evidence"),
        ({"pupil": ""}, "pupil"),
        ({"pupil": "Z999999999999"}, "pupil"),
        ({"received_date": "yesterday"}, "received_date"),
        ({"received_date": "0001-01-01"}, "received_date"),
        ({"received_date": "9999-12-31"}, "received_date"),
        ({"received_time": "25:00"}, "received_time"),
    ]
    for change, field in cases:
        [err] = await bot.handle(submit("teacher@school.test", "consent", {**FORM, **change}))
        assert isinstance(err, FormErrors) and field in err.errors, (change, err)
    assert len(await consents(school)) == before
    [err] = await bot.handle(
        submit("teacher@school.test", "consent_withdraw", {"pupil": "Z999999999999"})
    )
    assert isinstance(err, FormErrors) and "pupil" in err.errors


async def current_consent(core: Units, upn: str) -> bool:
    return upn in {p.upn for p, _ in await in_unit(core, consent.listing)}


async def test_who_may_withdraw_from_chat(school: Units, bot: Bot) -> None:
    """Withdrawal stops a pupil's calls, so from chat only the person who recorded the consent,
    SLT, the DSL or deputy, or an admin may; anyone else is told who can, and it is audited."""
    await roster.import_staff(
        school, "email,forename,surname,roles\nit@school.test,Ivy,Tech,admin\n"
    )
    # Tess records Noah's consent in chat; Sam's was recorded on the command line.
    effects = await bot.handle(submit("teacher@school.test", "consent", FORM))
    assert isinstance(effects[0], CloseForm), effects
    for who, upn, named in (
        ("other@school.test", NOAH, True),
        ("colleague@school.test", NOAH, True),
        ("teacher@school.test", SAM, False),
    ):
        [err] = await bot.handle(submit(who, "consent_withdraw", {"pupil": upn}))
        assert isinstance(err, FormErrors), (who, err)
        said = err.errors["pupil"]
        assert "SLT, the DSL or deputy DSL, or an admin can withdraw" in said, said
        assert ("Tess Teacher (who recorded it)" in said) == named, said
        assert "tell one of them today" in said
        assert await current_consent(school, upn), (who, upn)
    async with school.db.transaction() as s:
        refused = (
            await s.execute(
                select(AuditEvent.actor_label)
                .where(AuditEvent.action == "consent.withdraw_refused")
                .order_by(AuditEvent.id)
            )
        ).scalars()
        assert list(refused) == [
            "other@school.test",
            "colleague@school.test",
            "teacher@school.test",
        ]
    assert await audit_count(school, "consent.withdraw") == 0

    for who in ("slt@school.test", "dsl@school.test", "deputy@school.test", "it@school.test"):
        if not await current_consent(school, NOAH):
            assert not (await grant(school)).errors
        effects = await bot.handle(submit(who, "consent_withdraw", {"pupil": NOAH}))
        assert isinstance(effects[0], CloseForm), (who, effects)
        assert not await current_consent(school, NOAH), who
        assert (await consents(school))[-1].withdrawn_by_label == who
    assert await audit_count(school, "consent.withdraw") == 4


# ---------------------------------------------------------------- evidence and dates (#11)


async def test_evidence_must_find_the_email_again(school: Units, bot: Bot) -> None:
    """Evidence is the email's Message-ID as its headers show it, with its subject: "ok" or a
    subject alone can't be found again, so they are refused."""
    for evidence, words in (
        ("ok", "Message-ID as its headers show it"),
        ("Re: video calls", "Message-ID as its headers show it"),
        ("CAF9@mail.home.test Re: video calls", "angle brackets"),
        ("<not-an-id> Re: video calls", "angle brackets"),
        ("<CAF9@mail.home.test>", "Add the email's subject"),
        ("<CAF9@mail.home.test>   ", "Add the email's subject"),
    ):
        res = await grant(school, evidence=evidence)
        assert words in res.errors.get("evidence", ""), (evidence, res.errors)
        [err] = await bot.handle(
            submit("teacher@school.test", "consent", {**FORM, "evidence": evidence})
        )
        assert isinstance(err, FormErrors) and words in err.errors["evidence"], evidence
    res = await grant(school, evidence="Message-ID: <CAF9@mail.home.test>   Re:  video calls")
    assert res.errors == {} and res.consent is not None
    assert res.consent.evidence == "<CAF9@mail.home.test> Re: video calls"


def test_an_eml_that_is_not_an_email_is_refused(tmp_path: Path) -> None:
    eml = tmp_path / "ok.eml"
    eml.write_bytes(b"ok\r\n")
    try:
        consent.eml_evidence(eml)
    except consent.EvidenceError as exc:
        assert "not a saved email" in str(exc)
    else:
        raise AssertionError("an .eml with no mail headers was accepted")


async def test_the_form_reports_every_error_in_one_round(school: Units, bot: Bot) -> None:
    bad = {
        "pupil": "Z999999999999",
        "parent_email": "nope",
        "received_date": "yesterday",
        "received_time": "25:00",
        "evidence": "ok",
    }
    [err] = await bot.handle(submit("teacher@school.test", "consent", bad))
    assert isinstance(err, FormErrors)
    assert set(err.errors) == set(bad), err.errors
    # A readable date that is wrong is reported beside everything else too.
    [err] = await bot.handle(
        submit("teacher@school.test", "consent", {**bad, "received_date": "2026-12-25"})
    )
    assert isinstance(err, FormErrors) and "future" in err.errors["received_date"]
    assert set(err.errors) == set(bad), err.errors


async def test_a_date_without_a_time_is_stored_as_a_date(school: Units, bot: Bot) -> None:
    effects = await bot.handle(
        submit("teacher@school.test", "consent", {**FORM, "received_time": ""})
    )
    assert isinstance(effects[0], CloseForm), effects
    c = (await consents(school))[-1]
    assert c.received_at is None and c.received_on == datetime(2026, 11, 29).date()
    # With a time, both: the moment, and its day in the school's time zone.
    await in_unit(school, consent.withdraw, NOAH, None, cli=True)
    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 July in London
    res = await grant(school, received_at=summer)
    assert res.consent is not None and res.consent.received_at == summer
    assert res.consent.received_on == datetime(2026, 7, 2).date()
