"""Call invitations and cancellations emailed to families, one email per family.

When a call is confirmed each family gets the invitation: when (school time), how long, who
will be on the call, the join link and passcode, and what the policy asks of families. The
join details come from the Zoom integration when it is set up (it calls :func:`record_join`
when it creates the meeting; ``MailSetup.zoom_supplies_join`` stops the host being asked), or
the host types them (the "Add join details" button). The invitations wait for them.

A family is a parent email address: two pupils with the same parent address get one email
naming both; pupils of other families are never named, and no email has more than one family
in its To line. A call called off after its invitations were written gets a short
cancellation (or, if they had not gone out yet, they are stopped).
"""

from __future__ import annotations

import re
from collections import defaultdict
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from chatbot.bookings.notices import ref, when
from chatbot.fields import FieldError, text
from chatbot.interaction import SubmittedValue
from chatbot.mail.compose import BadAddress, Bullets, Facts, Letter, Link, Para, checked_address
from chatbot.mail.outbox import queue
from chatbot.storage.db import rows_changed
from chatbot.storage.models import Booking, CallJoin, MailOut, Pupil, Staff
from chatbot.ui import Actions, Button, Context, Form, Input, Message, Section, esc
from chatbot.uow import Unit

FORM_ID = "invite_details"
URL_MAX = 1000
PASSCODE_MAX = 100
_PASSCODE = re.compile(r"[A-Za-z0-9!@#$%^&*()_\-+=.,:;?~]{1,100}\Z")


def join_form(booking_id: int) -> Form:
    return Form(
        id=FORM_ID,
        title="Join details for families",
        intro=(
            "The families get these in their invitation email. Use the meeting's link and "
            "passcode from your school video account."
        ),
        submit_label="Email the invitations",
        inputs=(
            Input("join_url", "Join link", "text", placeholder="https://", max_length=URL_MAX),
            Input("passcode", "Passcode", "text", max_length=PASSCODE_MAX),
        ),
        state={"booking_id": str(booking_id)},
    )


def check_join(join_url: str, passcode: str) -> dict[str, str]:
    """Field errors for join details (empty when they are fine)."""
    errors: dict[str, str] = {}
    parts = urlsplit(join_url) if len(join_url) <= URL_MAX else None
    if (
        parts is None
        or parts.scheme != "https"
        or not parts.hostname
        or re.search(r"[\s<>\"'\\]", join_url)
    ):
        errors["join_url"] = "Give the meeting's web link, starting https://"
    if not _PASSCODE.match(passcode):
        errors["passcode"] = "Give the meeting's passcode (letters, digits and punctuation)."
    return errors


async def _families(u: Unit, b: Booking) -> tuple[dict[str, list[Pupil]], list[Pupil]]:
    """Pupils grouped by their parent's (checked) address, and those with no usable one."""
    families: dict[str, list[Pupil]] = defaultdict(list)
    missing: list[Pupil] = []
    for bp in b.pupils:
        try:
            families[checked_address(bp.pupil.parent_email or "")].append(bp.pupil)
        except BadAddress:
            missing.append(bp.pupil)
    return families, missing


def _names(pupils: list[Pupil]) -> str:
    first = [p.forename for p in pupils]
    return first[0] if len(first) == 1 else ", ".join(first[:-1]) + " and " + first[-1]


def _staff_names(host: Staff, cohost: Staff | None) -> str:
    return f"{host.name} and {cohost.name}" if cohost else host.name


def _time(b: Booking, zone: ZoneInfo) -> tuple[str, str]:
    s, e = b.starts_at.astimezone(zone), b.ends_at.astimezone(zone)
    minutes = int((b.ends_at - b.starts_at).total_seconds() // 60)
    return f"{s:%A} {s.day} {s:%B %Y}, {s:%H:%M} to {e:%H:%M}", f"{minutes} minutes"


def invite_letter(
    u: Unit, b: Booking, pupils: list[Pupil], host: Staff, cohost: Staff | None, join: CallJoin
) -> Letter:
    p = u.policy
    day, length = _time(b, u.zone)
    s = b.starts_at.astimezone(u.zone)
    names = _names(pupils)
    return Letter(
        f"Video call with {p.school_name}: {s:%a} {s.day} {s:%b}, {s:%H:%M}",
        (
            Para("Dear parent or carer,"),
            Para(f"{names} is invited to a video call with {p.school_name} on {b.platform}."),
            Facts(
                (
                    ("When", f"{day} ({p.timezone} time)"),
                    ("How long", length),
                    ("On the call from school", _staff_names(host, cohost)),
                    ("Join link", join.join_url),
                    ("Passcode", join.passcode),
                )
            ),
            Link("Join the call", join.join_url),
            Para("To keep everyone safe during the call:"),
            Bullets(p.family_reminders),
            Para(
                "Joining is your choice. If you can't make it, or have a question, reply to "
                "this email."
            ),
            Para(
                f"If you are ever worried about a call, phone the school on "
                f"{p.contacts.school_phone}. If a child is in immediate danger, call "
                f"{p.contacts.police_phone}. You can also report worries about online contact "
                f"to CEOP: {p.contacts.ceop_url}"
            ),
            Para(f"With thanks, {p.school_name}"),
        ),
    )


def cancellation_letter(u: Unit, b: Booking, names: str) -> Letter:
    p = u.policy
    day, _ = _time(b, u.zone)
    s = b.starts_at.astimezone(u.zone)
    return Letter(
        f"Cancelled: video call with {p.school_name} on {s:%a} {s.day} {s:%b}, {s:%H:%M}",
        (
            Para("Dear parent or carer,"),
            Para(
                f"The video call for {names} on {day} will not take place, so please "
                "don't use the link we sent. We are sorry for any trouble this causes."
            ),
            Para("If you have a question, reply to this email."),
            Para(f"With thanks, {p.school_name}"),
        ),
    )


def ask_host(b: Booking, zone: ZoneInfo, families: int) -> Message:
    head = (
        f"Your call on {when(b, zone)} is confirmed. Add its join link and passcode and I'll "
        f"email the invitation to the {families} famil{'y' if families == 1 else 'ies'}."
    )
    return Message(
        head,
        (
            Section(esc(head)),
            Actions((Button("invite.details", "Add join details", str(b.id), "primary"),)),
            Context((ref(b),)),
        ),
    )


def _no_address(b: Booking, zone: ZoneInfo, missing: list[Pupil]) -> Message:
    who = ", ".join(p.short_name for p in missing)
    head = (
        f"No invitation email for {who}: the roster has no usable parent email address. "
        f"Invite that family yourself for the call on {when(b, zone)}."
    )
    return Message(head, (Section(esc(head)), Context((ref(b),))))


async def _people(u: Unit, b: Booking) -> tuple[Staff, Staff | None]:
    host = await u.session.get(Staff, b.host_id)
    assert host is not None
    cohost = await u.session.get(Staff, b.cohost_id) if b.cohost_id else None
    return host, cohost


async def call_confirmed(u: Unit, b: Booking) -> None:
    """A call was confirmed: invite the families now, or once the join details are known."""
    if not u.mail.sending or not b.pupils:
        return
    join = await u.session.get(CallJoin, b.id)
    if join is not None:
        await _queue_invites(u, b, join)
    elif not u.mail.zoom_supplies_join:
        families, missing = await _families(u, b)
        if families:
            u.to_staff(b.host_id, ask_host(b, u.zone, len(families)), thread_key=f"join:{b.id}")
        else:  # nobody to email: say so now rather than ask for details no one will get
            u.to_staff(b.host_id, _no_address(b, u.zone, missing))


async def record_join(
    u: Unit, b: Booking, join_url: str, passcode: str, source: str, actor: Staff | None = None
) -> dict[str, str]:
    """Record how families join ``b`` (the Zoom integration calls this too); invite them
    if the call is confirmed. Returns field errors, empty when recorded."""
    join_url, passcode = join_url.strip(), passcode.strip()
    errors = check_join(join_url, passcode)
    if errors:
        return errors
    join = await u.session.get(CallJoin, b.id)
    if join is not None and join.invites_queued_at is not None:
        return {"join_url": "The invitations for this call have already been sent."}
    if join is None:
        join = CallJoin(booking_id=b.id, join_url="", passcode="", source=source)
        u.session.add(join)
    join.join_url, join.passcode, join.source, join.recorded_at = (
        join_url,
        passcode,
        source,
        u.now,
    )
    await u.session.flush()
    u.audit(actor or source, "invite.join_details", "booking", b.id, {"source": source})
    if b.status == "confirmed" and b.ends_at > u.now:
        await _queue_invites(u, b, join)
    return {}


async def _queue_invites(u: Unit, b: Booking, join: CallJoin) -> None:
    claimed = await rows_changed(
        u.session,
        update(CallJoin)
        .where(CallJoin.booking_id == b.id, CallJoin.invites_queued_at.is_(None))
        .values(invites_queued_at=u.now),
    )
    if not claimed or not u.mail.sending:
        return
    host, cohost = await _people(u, b)
    families, missing = await _families(u, b)
    for address, pupils in families.items():
        mail = queue(
            u.session,
            u.now,
            u.mail,
            u.policy.school_name,
            kind="invite",
            to=(address,),
            letter=invite_letter(u, b, pupils, host, cohost, join),
            about=", ".join(p.short_name for p in pupils),
            subject=("booking", b.id),
            caused_by_id=host.id,
        )
        await u.session.flush()
        u.audit(host, "invite.queued", "booking", b.id, {"mail_id": mail.id})
    if missing:
        u.to_staff(host.id, _no_address(b, u.zone, missing))


async def call_off(u: Unit, b: Booking) -> None:
    """The call was cancelled or lapsed: stop invitations not yet sent; for those that went
    (or may have), email each family a short cancellation."""
    if not u.mail.sending:
        return
    invites = (
        await u.session.execute(
            select(MailOut).where(
                MailOut.kind == "invite",
                MailOut.subject_type == "booking",
                MailOut.subject_id == b.id,
                MailOut.state.in_(("pending", "sent")),
            )
        )
    ).scalars()
    families, _ = await _families(u, b)
    for invite in list(invites):
        stopped = await rows_changed(
            u.session,
            update(MailOut)
            .where(
                MailOut.id == invite.id,
                MailOut.state == "pending",
                MailOut.send_started_at.is_(None),
            )
            .values(state="cancelled"),
        )
        if stopped:
            continue
        # Name only this family's children (the roster may have changed since: then none).
        family = families.get(invite.recipients)
        names = _names(family) if family else "your child"
        queue(
            u.session,
            u.now,
            u.mail,
            u.policy.school_name,
            kind="cancellation",
            to=(invite.recipients,),
            letter=cancellation_letter(u, b, names),
            about=invite.about,
            subject=("booking", b.id),
            caused_by_id=b.host_id,
        )


async def submit_join(
    u: Unit, actor: Staff, booking_id: int | None, values: dict[str, SubmittedValue]
) -> tuple[dict[str, str], str]:
    """The host's "Add join details" form. Returns (field errors, what to tell them)."""
    from chatbot.bookings.service import load

    b = await load(u.session, booking_id)
    if b is None or actor.id not in (b.host_id, b.cohost_id):
        return {"join_url": "That call is not one of yours."}, ""
    if b.status != "confirmed" or b.ends_at <= u.now:
        return {"join_url": f"This call is {b.status.replace('_', ' ')}; no invitations."}, ""
    try:
        url = text(values, "join_url", "The join link", URL_MAX)
        code = text(values, "passcode", "The passcode", PASSCODE_MAX)
    except FieldError as e:
        return {e.field: e.message}, ""
    errors = await record_join(u, b, url, code, "host", actor)
    if errors:
        return errors, ""
    families, _ = await _families(u, b)
    n = len(families)
    return {}, f"Thank you. The invitation is on its way to {n} famil{'y' if n == 1 else 'ies'}."
