"""Written parental consent: record it with its evidence, withdraw it, list it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.fields import FieldError, one, parse_date, parse_time, text, too_long_ago
from chatbot.interaction import SubmittedValue
from chatbot.roster.identity import normalise_email
from chatbot.roster.importer import EMAIL_RE
from chatbot.storage.models import Consent, Pupil, Staff
from chatbot.ui import Form, Input
from chatbot.uow import Unit

FORM_ID = "consent"
WITHDRAW_FORM_ID = "consent_withdraw"
EVIDENCE_MAX = 500
FUTURE_SLACK = timedelta(minutes=5)  # clocks differ a little


def consent_form() -> Form:
    return Form(
        id=FORM_ID,
        title="Record parental consent",
        intro=(
            "Record a parent's written agreement (their reply by email) to video calls. "
            "Keep the email itself; note its Message-ID or subject here as evidence."
        ),
        submit_label="Record",
        inputs=(
            Input("pupil", "Pupil", "pupil"),
            Input("parent_email", "Parent's email address", "text", max_length=320),
            Input("received_date", "Date their email arrived", "date"),
            Input("received_time", "Time it arrived", "time", required=False, placeholder="09:30"),
            Input(
                "evidence",
                "Evidence: the email's Message-ID or subject",
                "text",
                max_length=EVIDENCE_MAX,
            ),
            Input(
                "reason",
                "Only if it is not the parent email on the roster: why you accept it",
                "long_text",
                required=False,
                max_length=EVIDENCE_MAX,
            ),
        ),
    )


def withdraw_form() -> Form:
    return Form(
        id=WITHDRAW_FORM_ID,
        title="Withdraw parental consent",
        submit_label="Withdraw",
        inputs=(Input("pupil", "Pupil", "pupil"),),
    )


@dataclass
class ConsentResult:
    errors: dict[str, str] = field(default_factory=dict)
    consent: Consent | None = None
    pupil: Pupil | None = None


async def grant(
    u: Unit,
    *,
    upn: str,
    parent_email: str,
    received_at: datetime,
    evidence_kind: str,
    evidence: str,
    actor: Staff | None,
    actor_label: str = "cli",
    reason: str = "",
    sent_to: str | None = None,
) -> ConsentResult:
    """Record a parent's written agreement. From an address other than the roster's parent
    email (or ``sent_to``, the address a consent request went to) it needs a ``reason``,
    which the audit trail keeps."""
    res = ConsentResult()
    email = normalise_email(parent_email)
    if not EMAIL_RE.match(email) or len(email) > 320:
        res.errors["parent_email"] = "That is not an email address."
    if not evidence.strip():
        res.errors["evidence"] = "Give the email's Message-ID or subject, so it can be found."
    elif len(evidence) > EVIDENCE_MAX:
        res.errors["evidence"] = f"Evidence is too long; keep it under {EVIDENCE_MAX} characters."
    now = u.now
    if received_at > now + FUTURE_SLACK:
        res.errors["received_date"] = "The email can't have arrived in the future."
    elif old := too_long_ago(received_at.date(), u.local(now).date(), "That date"):
        res.errors["received_date"] = old
    s = u.session
    pupil = (
        await s.execute(select(Pupil).where(Pupil.upn == upn.strip().upper()))
    ).scalar_one_or_none()
    if pupil is None or not pupil.active:
        res.errors["pupil"] = f"{upn[:20]!r} is not on the pupil roster."
    on_record = pupil is not None and email in {(pupil.parent_email or "").lower(), sent_to}
    if pupil is not None and pupil.parent_email and not on_record and not reason.strip():
        res.errors["reason"] = (
            "That is not the parent email on the roster. Say why you are sure this agreement "
            "is from a parent or carer."
        )
    elif len(reason) > EVIDENCE_MAX:
        res.errors["reason"] = f"Keep the reason under {EVIDENCE_MAX} characters."
    if res.errors:
        return res
    assert pupil is not None
    c = Consent(
        pupil_id=pupil.id,
        parent_email=email,
        received_at=received_at,
        evidence_kind=evidence_kind,
        evidence=evidence.strip(),
        recorded_by_id=actor.id if actor else None,
        recorded_by_label=actor.email if actor else actor_label,
        recorded_at=now,
    )
    s.add(c)
    await s.flush()
    u.audit(
        actor or actor_label,
        "consent.grant",
        "pupil",
        pupil.id,
        {
            "consent_id": c.id,
            "evidence_kind": evidence_kind,
            "roster_address": on_record,
            **({"reason": reason.strip()} if reason.strip() else {}),
        },
    )
    res.consent, res.pupil = c, pupil
    return res


def eml_evidence(path: Path) -> str:
    """An .eml file is evidenced by its SHA-256, so the stored copy can be proved unchanged."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def grant_from_form(
    u: Unit, actor: Staff, values: dict[str, SubmittedValue]
) -> ConsentResult:
    res = ConsentResult()
    try:
        day = parse_date(values, "received_date", "Date")
    except FieldError as e:
        res.errors[e.field] = e.message
        day = None
    t = time(0, 0)
    if one(values, "received_time"):
        try:
            t = parse_time(values, "received_time", "Time")
        except FieldError as e:
            res.errors[e.field] = e.message
    try:
        evidence = text(values, "evidence", "Evidence", EVIDENCE_MAX)
    except FieldError as e:
        res.errors[e.field] = e.message
        evidence = ""
    upn = one(values, "pupil")
    if not upn:
        res.errors["pupil"] = "Choose the pupil."
    if res.errors:
        return res
    assert day is not None
    received = datetime.combine(day, t, tzinfo=u.zone)
    return await grant(
        u,
        upn=upn,
        parent_email=one(values, "parent_email"),
        received_at=received,
        evidence_kind="message_id",
        evidence=evidence,
        actor=actor,
        reason=one(values, "reason")[: EVIDENCE_MAX + 1],
    )


# Who may withdraw a consent from chat: withdrawing stops the pupil being booked, so it must
# not be a way for any member of staff to stop someone else's calls; yet a parent's withdrawal
# must be recorded at once, so it is open to the person who recorded the consent (they know
# the family) and to the people who oversee calls and safeguarding.
WITHDRAW_ROLES = ("slt", "dsl", "deputy_dsl", "admin")


def may_withdraw(staff: Staff | None, current: list[Consent]) -> bool:
    if staff is None or not staff.active:
        return False
    return staff.has_role(*WITHDRAW_ROLES) or any(c.recorded_by_id == staff.id for c in current)


async def withdraw(
    u: Unit, upn: str, actor: Staff | None, actor_label: str = "cli", *, cli: bool = False
) -> str | None:
    """Withdraw every current consent for the pupil. Returns an error message, or None.

    From chat only :func:`may_withdraw` people may; the CLI (``cli=True``) trusts whoever can
    run it on the server and records ``actor`` (its ``--as``) if given. Refusals are audited."""
    s, now = u.session, u.now
    pupil = (
        await s.execute(select(Pupil).where(Pupil.upn == upn.strip().upper()))
    ).scalar_one_or_none()
    if pupil is None:
        return f"{upn[:20]!r} is not on the pupil roster."
    current = list(
        (
            await s.execute(
                select(Consent).where(Consent.pupil_id == pupil.id, Consent.withdrawn_at.is_(None))
            )
        ).scalars()
    )
    if not current:
        return f"{pupil.short_name} has no consent on file to withdraw."
    if not cli and not may_withdraw(actor, current):
        u.audit(actor or actor_label, "consent.withdraw_refused", "pupil", pupil.id)
        recorders = [
            x.name for x in await _people(s, {c.recorded_by_id for c in current}) if x.active
        ]
        who = f"{' or '.join(recorders)} (who recorded it), " if recorders else ""
        return (
            f"Only {who}SLT, the DSL or deputy DSL, or an admin can withdraw "
            f"{pupil.short_name}'s consent. If a parent has withdrawn it, tell one of "
            "them today."
        )
    for c in current:
        c.withdrawn_at = now
        c.withdrawn_by_label = actor.email if actor else actor_label
    u.audit(
        actor or actor_label,
        "consent.withdraw",
        "pupil",
        pupil.id,
        {"consent_ids": [c.id for c in current]},
    )
    return None


async def _people(s: AsyncSession, ids: set[int | None]) -> list[Staff]:
    wanted = sorted(i for i in ids if i is not None)
    if not wanted:
        return []
    return list((await s.execute(select(Staff).where(Staff.id.in_(wanted)))).scalars())


async def listing(u: Unit) -> list[tuple[Pupil, Consent]]:
    rows = await u.session.execute(
        select(Pupil, Consent)
        .join(Consent, Consent.pupil_id == Pupil.id)
        .where(Consent.withdrawn_at.is_(None))
        .order_by(Pupil.surname, Pupil.forename)
    )
    return [(p, c) for p, c in rows]
