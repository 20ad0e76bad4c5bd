"""Written parental consent: record it with its evidence, withdraw it, list it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.parser import BytesHeaderParser
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.bookings import holds, notices
from chatbot.fields import FieldError, one, parse_date, parse_time, text, too_long_ago
from chatbot.interaction import SubmittedValue
from chatbot.roster.identity import normalise_email
from chatbot.roster.importer import EMAIL_RE
from chatbot.storage.models import Booking, Consent, Pupil, Staff
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
            "Keep the email itself; note its Message-ID (from the email's headers, in angle "
            "brackets) and its subject here as evidence, so it can be found again."
        ),
        submit_label="Record",
        inputs=(
            Input("pupil", "Pupil", "pupil"),
            Input("parent_email", "Parent's email address", "text", max_length=320),
            Input("received_date", "Date their email arrived", "date"),
            Input("received_time", "Time it arrived", "time", required=False, placeholder="09:30"),
            Input(
                "evidence",
                "Evidence: the email's Message-ID and subject",
                "text",
                max_length=EVIDENCE_MAX,
                placeholder="<CA+abc123@mail.gmail.com> Re: video calls",
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
    released: list[Booking] = field(default_factory=list)  # calls no longer on hold


# Evidence of a parent's email: its Message-ID as the headers show it, then its subject.
MESSAGE_ID_EVIDENCE = re.compile(r"(?:message-id:\s*)?(<[^<>@\s]+@[^<>@\s]+>)\s*(.*)", re.I | re.S)
SHA256 = re.compile(r"[0-9a-f]{64}")
MAIL_HEADERS = ("from", "message-id", "subject", "date")


class EvidenceError(ValueError):
    """A file given as evidence is not a saved email."""


# Evidence that is the SHA-256 of a whole email kept as proof: a saved .eml, or a parent's
# reply to a consent request, stored by the bot itself (chatbot.consent.by_email).
SHA256_KINDS = ("eml_sha256", "email_reply")


def evidence_problem(kind: str, evidence: str) -> str | None:
    """What is wrong with the evidence of a parent's email, or None. An email is found again
    by its Message-ID (``<...@...>``, from its headers) and subject; "ok" finds nothing."""
    if kind in SHA256_KINDS:
        return None if SHA256.fullmatch(evidence) else "That is not the SHA-256 of a saved email."
    text = evidence.strip()
    if not text:
        return "Give the email's Message-ID and subject, so it can be found."
    if len(evidence) > EVIDENCE_MAX:
        return f"Evidence is too long; keep it under {EVIDENCE_MAX} characters."
    match = MESSAGE_ID_EVIDENCE.fullmatch(text)
    if match is None:
        return (
            "Start with the email's Message-ID as its headers show it, in angle brackets, "
            "then its subject: for example <CA+abc123@mail.gmail.com> Re: video calls."
        )
    if not match[2].strip():
        return "Add the email's subject after its Message-ID, so it can be found."
    return None


def _evidence_text(kind: str, evidence: str) -> str:
    """Evidence as stored: ``<message-id> subject`` (without a pasted "Message-ID:")."""
    match = MESSAGE_ID_EVIDENCE.fullmatch(evidence.strip())
    if kind in SHA256_KINDS or match is None:
        return evidence.strip()
    return f"{match[1]} {' '.join(match[2].split())}"


def received_day(received: date | datetime, zone: ZoneInfo) -> date:
    """The day an email arrived, in the school's time zone."""
    if not isinstance(received, datetime):
        return received
    try:
        return received.astimezone(zone).date()
    except OverflowError:  # year 1 or 9999: refused as a slip either way
        return received.date()


async def _current_pupil(u: Unit, upn: str) -> Pupil | None:
    return (
        await u.session.execute(select(Pupil).where(Pupil.upn == upn.strip().upper()))
    ).scalar_one_or_none()


async def grant(
    u: Unit,
    *,
    upn: str,
    parent_email: str,
    received_at: date | datetime | None,
    evidence_kind: str,
    evidence: str,
    actor: Staff | None,
    actor_label: str = "cli",
    reason: str = "",
    sent_to: str | None = None,
    errors: dict[str, str] | None = None,
) -> ConsentResult:
    """Record a parent's written consent, checking everything at once.

    ``received_at`` is when their email arrived: an aware datetime, or a date alone when the
    time is not known (stored as a date, not as midnight). ``errors`` are problems already
    found in the same submission (a form's unreadable date, say): they are reported together
    with these, and a field already in error is not checked again. From an address other than
    the roster's parent email (or ``sent_to``, the address a consent request went to) it needs
    a ``reason``, which the audit trail keeps. If the pupil had calls on hold for want of
    consent, the holds are lifted (see :mod:`chatbot.bookings.holds`)."""
    res = ConsentResult(errors=dict(errors or {}))
    problems = res.errors
    email = normalise_email(parent_email)
    if "parent_email" not in problems and (not EMAIL_RE.match(email) or len(email) > 320):
        problems["parent_email"] = "That is not an email address."
    if "evidence" not in problems and (bad := evidence_problem(evidence_kind, evidence)):
        problems["evidence"] = bad
    now, today = u.now, u.local(u.now).date()
    if received_at is not None and "received_date" not in problems:
        day = received_day(received_at, u.zone)
        if isinstance(received_at, datetime):
            future = received_at > now + FUTURE_SLACK
        else:
            future = day > today
        if future:
            problems["received_date"] = "The email can't have arrived in the future."
        elif old := too_long_ago(day, today, "That date"):
            problems["received_date"] = old
    pupil = None
    if "pupil" not in problems:
        pupil = await _current_pupil(u, upn)
        if pupil is None or not pupil.active:
            problems["pupil"] = f"{upn[:20]!r} is not on the pupil roster."
    on_record = pupil is not None and email in {(pupil.parent_email or "").lower(), sent_to}
    if pupil is not None and pupil.parent_email and not on_record and not reason.strip():
        problems["reason"] = (
            "That is not the parent email on the roster. Say why you are sure this agreement "
            "is from a parent or carer."
        )
    elif len(reason) > EVIDENCE_MAX:
        problems["reason"] = f"Keep the reason under {EVIDENCE_MAX} characters."
    if problems:
        return res
    assert pupil is not None and received_at is not None
    c = Consent(
        pupil_id=pupil.id,
        parent_email=email,
        received_on=received_day(received_at, u.zone),
        received_at=received_at if isinstance(received_at, datetime) else None,
        evidence_kind=evidence_kind,
        evidence=_evidence_text(evidence_kind, evidence),
        recorded_by_id=actor.id if actor else None,
        recorded_by_label=actor.email if actor else actor_label,
        recorded_at=now,
    )
    u.session.add(c)
    await u.session.flush()
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
    res.released = await holds.lift_holds(u, pupil, actor or actor_label)
    return res


def eml_evidence(path: Path) -> str:
    """An .eml file is evidenced by its SHA-256, so the stored copy can be proved unchanged.
    OSError if it can't be read; EvidenceError if it is not a saved email (no mail headers)."""
    data = path.read_bytes()
    headers = BytesHeaderParser().parsebytes(data)
    if not any(headers.get(name) for name in MAIL_HEADERS):
        raise EvidenceError(
            f"{path.name} is not a saved email: it has none of the headers From, Message-ID, "
            "Subject or Date. Save the parent's email itself (as .eml) from your mail program."
        )
    return hashlib.sha256(data).hexdigest()


async def grant_from_form(
    u: Unit, actor: Staff, values: dict[str, SubmittedValue]
) -> ConsentResult:
    """The chat form: every problem in the submission is reported in one round."""
    errors: dict[str, str] = {}
    received: date | datetime | None = None
    try:
        received = parse_date(values, "received_date", "Date")
    except FieldError as e:
        errors[e.field] = e.message
    if one(values, "received_time"):
        try:
            t = parse_time(values, "received_time", "Time")
            if received is not None:
                received = datetime.combine(received, t, tzinfo=u.zone)
        except FieldError as e:
            errors[e.field] = e.message
    try:
        evidence = text(values, "evidence", "Evidence", EVIDENCE_MAX)
    except FieldError as e:
        errors[e.field] = e.message
        evidence = ""
    upn = one(values, "pupil")
    if not upn:
        errors["pupil"] = "Choose the pupil."
    return await grant(
        u,
        upn=upn,
        parent_email=one(values, "parent_email"),
        received_at=received,
        evidence_kind="message_id",
        evidence=evidence,
        actor=actor,
        reason=one(values, "reason")[: EVIDENCE_MAX + 1],
        errors=errors,
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


@dataclass
class Withdrawal:
    error: str | None = None  # why nothing was withdrawn
    pupil: Pupil | None = None
    calls: list[Booking] = field(default_factory=list)  # called off or put on hold
    mode: str = "cancel"  # the policy's [consent] on_withdrawal

    def summary(self, zone: ZoneInfo) -> str:
        """What the person who withdrew is told (plain text)."""
        assert self.pupil is not None
        head = f"Consent withdrawn for {self.pupil.short_name}: they can't be booked until it "
        head += "is given again."
        if not self.calls:
            return head + " They had no calls booked."
        done = "put on hold" if self.mode == "hold" else "cancelled"
        which = "; ".join(f"{notices.ref(b)} on {notices.when(b, zone)}" for b in self.calls)
        return (
            f"{head} {len(self.calls)} call(s) {done}: {which}. The host, co-host and SLT "
            "have been told why."
        )


async def withdraw(
    u: Unit, upn: str, actor: Staff | None, actor_label: str = "cli", *, cli: bool = False
) -> Withdrawal:
    """Withdraw every current consent for the pupil, and cancel (or hold, as the policy's
    ``[consent] on_withdrawal`` says) every call they have still to come, in the same unit.

    From chat only :func:`may_withdraw` people may; the CLI (``cli=True``) trusts whoever can
    run it on the server and records ``actor`` (its ``--as``) if given. Refusals are audited."""
    s, now = u.session, u.now
    pupil = await _current_pupil(u, upn)
    if pupil is None:
        return Withdrawal(f"{upn[:20]!r} is not on the pupil roster.")
    current = list(
        (
            await s.execute(
                select(Consent).where(Consent.pupil_id == pupil.id, Consent.withdrawn_at.is_(None))
            )
        ).scalars()
    )
    if not current:
        return Withdrawal(f"{pupil.short_name} has no consent on file to withdraw.")
    if not cli and not may_withdraw(actor, current):
        u.audit(actor or actor_label, "consent.withdraw_refused", "pupil", pupil.id)
        recorders = [
            x.name for x in await _people(s, {c.recorded_by_id for c in current}) if x.active
        ]
        who = f"{' or '.join(recorders)} (who recorded it), " if recorders else ""
        return Withdrawal(
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
    mode = u.policy.consent_on_withdrawal
    calls = await holds.stop_calls(
        u, pupil, actor or actor_label, notices.consent_withdrawn(pupil), mode
    )
    return Withdrawal(pupil=pupil, calls=calls, mode=mode)


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
