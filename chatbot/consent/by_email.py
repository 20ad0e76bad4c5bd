"""Asking a family for consent by email, and keeping their reply as the evidence.

1. :func:`request` emails the roster's parent address the information about calls (the
   letter of ``/consent letter``) and asks them to reply to agree. A token ties the reply to
   the request: it is in the Reply-To address (``office+consent-TOKEN@school``) and in the
   subject. The pupil shows as "consent requested" from then on.
2. :func:`take_in` receives a reply (``chatbot consent import REPLY.eml``, or the Graph
   mailbox poller), refuses anything it cannot tie to a request, keeps the whole message
   (bytes, size, SHA-256) and asks the member of staff who sent the request to read the
   reply and confirm. A reply from an address other than the roster's parent email is held
   for that person to decide, with a reason; it is never accepted silently.
3. Only their click records the consent (:func:`agree`, or :func:`accept_held` with a
   reason); :func:`decline` records that the reply does not agree.
"""

from __future__ import annotations

import logging
import secrets
import string
from dataclasses import dataclass

from sqlalchemy import select, update

from chatbot.consent import service
from chatbot.consent.letter import SUBJECT, letter_body
from chatbot.mail.compose import BadAddress, Bullets, Letter, Para, checked_address
from chatbot.mail.inbound import Incoming, Refused, read, shown_text
from chatbot.mail.outbox import queue, tell_sender
from chatbot.roster.pupils import with_consent
from chatbot.storage.db import rows_changed
from chatbot.storage.models import ConsentReply, ConsentRequest, MailOut, Pupil, Staff
from chatbot.ui import Actions, Button, Context, Fields, Form, Input, Message, Section, esc
from chatbot.uow import Unit

log = logging.getLogger("chatbot.consent.email")

ASK_FORM_ID = "consent_ask"
HELD_FORM_ID = "consent_held"
REASON_MAX = 500
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
OPEN = ("requested", "replied")
NOT_SET_UP = (
    "The bot can't send email yet: your IT technician needs to set MAIL_FROM with SMTP_URL "
    "or GRAPH_MAILBOX (see the README). Meanwhile use /consent letter and send it yourself."
)


def ask_form() -> Form:
    return Form(
        id=ASK_FORM_ID,
        title="Ask parents for consent",
        intro=(
            "I'll email the parent address on the roster the information about video calls, "
            "from the school office address, and ask them to reply to agree. Their reply "
            "comes back to you to check before anything is recorded."
        ),
        submit_label="Send the email",
        inputs=(Input("pupil", "Pupil", "pupil"),),
    )


def held_form(reply_id: int) -> Form:
    return Form(
        id=HELD_FORM_ID,
        title="Accept a reply from another address",
        intro=(
            "This reply did not come from the parent email on the roster. Say why you are "
            "sure it is from a parent or carer who can agree; your reason is kept in the "
            "audit trail."
        ),
        submit_label="Record consent",
        inputs=(Input("reason", "Reason", "long_text", max_length=REASON_MAX),),
        state={"reply_id": str(reply_id)},
    )


def _token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(20))


def request_letter(u: Unit, pupil: Pupil, token: str) -> Letter:
    """Today's parent information letter, with the child's name and the reference."""
    blocks: list[Para | Bullets] = [Para(f"This email is about {pupil.forename}.")]
    for paragraph in letter_body(u.policy).split("\n\n"):
        lines = paragraph.split("\n")
        bullets = tuple(line[2:] for line in lines if line.startswith("- "))
        prose = " ".join(line for line in lines if not line.startswith("- "))
        if prose:
            blocks.append(Para(prose))
        if bullets:
            blocks.append(Bullets(bullets))
    blocks.append(Para(f"Our reference: consent-{token} (please keep it in the subject)."))
    return Letter(f"{SUBJECT} [ref consent-{token}]", tuple(blocks))


async def _pupil(u: Unit, upn: str) -> Pupil | None:
    return (
        await u.session.execute(select(Pupil).where(Pupil.upn == upn.strip().upper()[:20]))
    ).scalar_one_or_none()


async def request(u: Unit, actor: Staff, upn: str) -> tuple[str, ConsentRequest | None]:
    """Email the information letter to the pupil's parent. Returns (what to say, request)."""
    if not u.mail.sending:
        return NOT_SET_UP, None
    pupil = await _pupil(u, upn)
    if pupil is None or not pupil.active:
        return f"{upn[:20]!r} is not on the pupil roster.", None
    if not pupil.parent_email:
        return (
            f"The roster has no parent email for {pupil.short_name}, so I can't ask them. "
            "Add it in the school's records (it comes in with the next roster import).",
            None,
        )
    try:
        address = checked_address(pupil.parent_email)
    except BadAddress as exc:
        return (
            f"The roster's parent email for {pupil.short_name} is not a usable address "
            f"({exc}). Correct it in the school's records.",
            None,
        )
    if await with_consent(u.session, [pupil.id]):
        return f"{pupil.short_name} already has written consent on file.", None
    token = _token()
    req = ConsentRequest(
        token=token,
        pupil_id=pupil.id,
        parent_email=address,
        requested_by_id=actor.id,
        requested_by_label=actor.email,
        requested_at=u.now,
        state="requested",
    )
    u.session.add(req)
    await u.session.flush()
    mail = queue(
        u.session,
        u.now,
        u.mail,
        u.policy.school_name,
        kind="consent_request",
        to=(address,),
        letter=request_letter(u, pupil, token),
        about=pupil.short_name,
        subject=("consent_request", req.id),
        caused_by_id=actor.id,
        reply_tag=f"consent-{token}",
    )
    await u.session.flush()
    req.mail_id = mail.id
    u.audit(actor, "consent.request", "pupil", pupil.id, {"request_id": req.id, "mail": mail.id})
    day = u.local(u.now)
    return (
        f"Emailed {pupil.short_name}'s parent the information about video calls, asking them "
        f"to reply to agree. {pupil.forename} shows as consent requested "
        f"({day.day} {day:%b %Y}); I'll message you when they reply.",
        req,
    )


@dataclass
class Intake:
    kept: bool
    text: str  # what to tell whoever brought the message in
    code: str  # for the log: never personal


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MB"


async def take_in(u: Unit, raw: bytes, source: str) -> Intake:
    """A message that came in: a reply to a consent request (kept, and the requester asked
    to confirm), a bounce of one of our emails (the member of staff told), or refused."""
    try:
        mail = read(raw)
    except Refused as r:
        return Intake(False, r.reason, r.code)
    if mail.is_bounce:
        return await _bounce(u, mail)
    if not mail.tokens:
        return Intake(
            False,
            "That email is not a reply to one of the bot's consent requests (it has no "
            "reference like consent-… in its subject or address). Nothing was kept.",
            "no_token",
        )
    if len(mail.tokens) > 1:
        return Intake(
            False, "That email refers to more than one request. Nothing was kept.", "two_tokens"
        )
    (token,) = mail.tokens
    req = (
        await u.session.execute(select(ConsentRequest).where(ConsentRequest.token == token))
    ).scalar_one_or_none()
    if req is None:
        return Intake(
            False, "No consent request has that reference. Nothing was kept.", "unknown_token"
        )
    pupil = await u.session.get(Pupil, req.pupil_id)
    assert pupil is not None
    if req.state not in OPEN:
        return Intake(
            False,
            f"The consent request for {pupil.short_name} was already answered "
            f"({req.state.replace('_', ' ')}). Nothing was kept.",
            "request_closed",
        )
    dup = (
        await u.session.execute(select(ConsentReply.id).where(ConsentReply.sha256 == mail.sha256))
    ).scalar_one_or_none()
    if dup is not None:
        return Intake(False, f"That email is already kept (reply #{dup}).", "duplicate")
    if mail.text is None or not mail.text.strip():
        return Intake(
            False,
            "That email has no plain-text part, so its words can't be shown safely. Ask the "
            "parent to reply again, or record consent by hand with /consent. Nothing was kept.",
            "no_text",
        )
    roster = {req.parent_email, (pupil.parent_email or "").strip().lower()}
    matches = mail.from_address in roster
    received = min(mail.sent_at or u.now, u.now)
    reply = ConsentReply(
        request_id=req.id,
        raw=mail.raw,
        size=len(mail.raw),
        sha256=mail.sha256,
        message_id=mail.message_id,
        from_address=mail.from_address,
        received_at=received,
        source=source,
        imported_at=u.now,
        state="to_confirm" if matches else "held",
    )
    u.session.add(reply)
    req.state = "replied"
    await u.session.flush()
    u.audit(
        source,
        "consent.reply_kept",
        "pupil",
        pupil.id,
        {
            "request_id": req.id,
            "reply_id": reply.id,
            "sha256": reply.sha256,
            "size": reply.size,
            "sender_on_roster": matches,
        },
    )
    requester = await u.session.get(Staff, req.requested_by_id) if req.requested_by_id else None
    who = requester.name if requester else "SLT"
    if requester is not None:
        u.to_staff(requester.id, reply_message(u, reply, req, pupil, mail.text))
    else:
        u.to_role("slt", reply_message(u, reply, req, pupil, mail.text))
    kept = f"Kept the reply for {pupil.short_name} ({_size(reply.size)}, SHA-256 {reply.sha256})."
    if matches:
        return Intake(True, f"{kept} {who} has been asked to confirm that it agrees.", "kept")
    return Intake(
        True,
        f"{kept} It came from an address that is not the parent email on the roster, so it "
        f"is held: {who} has been asked to decide.",
        "held",
    )


def reply_message(
    u: Unit, reply: ConsentReply, req: ConsentRequest, pupil: Pupil, text: str
) -> Message:
    words, cut = shown_text(text)
    asked = u.local(req.requested_at)
    got = u.local(reply.received_at)
    note = " (quoted text and anything long left out)" if cut else ""
    details = Context(
        (
            f"Reply #{reply.id} · received {got.day} {got:%b %Y %H:%M} · "
            f"{_size(reply.size)} · SHA-256 {reply.sha256[:16]}… · the whole email is kept",
        )
    )
    if reply.state == "held":
        head = (
            f"A reply to your consent request for {pupil.short_name} came from an address "
            "that is not the parent email on the roster."
        )
        return Message(
            head,
            (
                Section(
                    f"**{esc(head)}** It could be another parent or carer, or someone else. "
                    "Only accept it if you are sure, and say why."
                ),
                Fields((("From", reply.from_address), ("Roster's parent email", req.parent_email))),
                Section(f"**What the email says{note}:**\n{esc(words)}"),
                Actions(
                    (
                        Button("consent.reply.held", "Accept it (give a reason)", str(reply.id)),
                        Button("consent.reply.decline", "Don't accept it", str(reply.id), "danger"),
                    )
                ),
                details,
            ),
        )
    head = f"{pupil.short_name}'s parent replied to your consent request of {asked.day} {asked:%b}."
    return Message(
        head,
        (
            Section(f"**{esc(head)}** Read their words: do they agree to video calls?"),
            Section(f"**What the email says{note}:**\n{esc(words)}"),
            Actions(
                (
                    Button(
                        "consent.reply.agree",
                        "They agree: record consent",
                        str(reply.id),
                        "primary",
                    ),
                    Button("consent.reply.decline", "They don't agree", str(reply.id), "danger"),
                )
            ),
            details,
        ),
    )


def decided(head: str, reply: ConsentReply) -> Message:
    return Message(head, (Section(esc(head)), Context((f"Reply #{reply.id}",))))


async def _reply_for(
    u: Unit, actor: Staff, reply_id: int | None
) -> tuple[str, ConsentReply | None, ConsentRequest | None, Pupil | None]:
    reply = await u.session.get(ConsentReply, reply_id) if reply_id is not None else None
    if reply is None:
        return "There is no such reply.", None, None, None
    req = await u.session.get(ConsentRequest, reply.request_id)
    assert req is not None
    if req.requested_by_id != actor.id and not actor.has_role(*service.WITHDRAW_ROLES):
        return (
            "Only the person who sent the request (or SLT, the DSL or an admin) can decide.",
            None,
            None,
            None,
        )
    pupil = await u.session.get(Pupil, req.pupil_id)
    return "", reply, req, pupil


async def _claim(u: Unit, reply: ConsentReply, state: str, to: str) -> bool:
    return bool(
        await rows_changed(
            u.session,
            update(ConsentReply)
            .where(ConsentReply.id == reply.id, ConsentReply.state == state)
            .values(state=to, decided_at=u.now),
        )
    )


async def _record(
    u: Unit, actor: Staff, reply: ConsentReply, req: ConsentRequest, pupil: Pupil, reason: str
) -> str | None:
    res = await service.grant(
        u,
        upn=pupil.upn,
        parent_email=reply.from_address,
        received_at=reply.received_at,
        evidence_kind="email_reply",
        evidence=reply.sha256,
        actor=actor,
        reason=reason,
        sent_to=req.parent_email,
    )
    if res.errors:  # e.g. the pupil has left: put the reply back as it was
        await rows_changed(
            u.session,
            update(ConsentReply).where(ConsentReply.id == reply.id).values(state=reply.state),
        )
        return " ".join(res.errors.values())
    assert res.consent is not None
    await u.session.refresh(reply)
    reply.consent_id, reply.decided_by_id = res.consent.id, actor.id
    req.state = "agreed"
    u.audit(actor, "consent.reply_agreed", "pupil", pupil.id, {"reply_id": reply.id})
    return None


async def agree(u: Unit, actor: Staff, reply_id: int | None) -> tuple[str, Message | None]:
    """The requester read the reply and says it agrees: record the consent."""
    err, reply, req, pupil = await _reply_for(u, actor, reply_id)
    if reply is None or req is None or pupil is None:
        return err, None
    if reply.state == "held":
        return "This reply is from another address: use “Accept it (give a reason)”.", None
    if not await _claim(u, reply, "to_confirm", "agreed"):
        return f"Already decided: {reply.state.replace('_', ' ')}.", None
    problem = await _record(u, actor, reply, req, pupil, "")
    if problem:
        return problem, None
    text = f"Recorded written consent for {pupil.short_name}; their email is kept as evidence."
    return text, decided(text, reply)


async def accept_held(
    u: Unit, actor: Staff, reply_id: int | None, reason: str
) -> tuple[dict[str, str], str]:
    """A reply from another address accepted, with the reason why (audited)."""
    err, reply, req, pupil = await _reply_for(u, actor, reply_id)
    if reply is None or req is None or pupil is None:
        return {"reason": err}, ""
    if not reason.strip():
        return {"reason": "Say why you are sure this reply is from a parent or carer."}, ""
    if not await _claim(u, reply, "held", "agreed"):
        return {"reason": f"Already decided: {reply.state.replace('_', ' ')}."}, ""
    problem = await _record(u, actor, reply, req, pupil, reason.strip())
    if problem:
        return {"reason": problem}, ""
    return {}, f"Recorded written consent for {pupil.short_name}, with your reason."


async def decline(u: Unit, actor: Staff, reply_id: int | None) -> tuple[str, Message | None]:
    err, reply, req, pupil = await _reply_for(u, actor, reply_id)
    if reply is None or req is None or pupil is None:
        return err, None
    held = reply.state == "held"
    if reply.state not in ("to_confirm", "held") or not await _claim(
        u, reply, reply.state, "not_agreed"
    ):
        return f"Already decided: {reply.state.replace('_', ' ')}.", None
    reply.decided_by_id = actor.id
    # A stranger's reply leaves the request open for the parent's own answer.
    req.state = "requested" if held else "not_agreed"
    u.audit(
        actor, "consent.reply_not_agreed", "pupil", pupil.id, {"reply_id": reply.id, "held": held}
    )
    text = (
        f"Not accepted. The request for {pupil.short_name} stays open for the parent's reply."
        if held
        else f"Noted: {pupil.short_name}'s parent has not agreed. Nothing was recorded as consent."
    )
    return text, decided(text, reply)


async def _bounce(u: Unit, mail: Incoming) -> Intake:
    rows = list(
        (
            await u.session.execute(select(MailOut).where(MailOut.message_id.in_(mail.bounced_ids)))
        ).scalars()
    )
    if not rows:
        return Intake(False, "That is a bounce of an email the bot did not send.", "bounce_unknown")
    for row in rows:
        if row.state == "bounced":
            continue
        row.state = "bounced"
        tell_sender(u.session, u.now, row, "bounced")
        u.audit(None, "mail.bounced", "mail", row.id, {"kind": row.kind})
    return Intake(False, "That is a bounce: whoever caused the email has been told.", "bounce")


async def open_requests(u: Unit) -> list[tuple[ConsentRequest, Pupil]]:
    """Requests still waiting: the pupils shown as "consent requested"."""
    rows = await u.session.execute(
        select(ConsentRequest, Pupil)
        .join(Pupil, Pupil.id == ConsentRequest.pupil_id)
        .where(ConsentRequest.state.in_(OPEN))
        .order_by(ConsentRequest.requested_at.desc())
        .limit(50)
    )
    return [(r, p) for r, p in rows]


def status_line(u: Unit, req: ConsentRequest, pupil: Pupil) -> str:
    day = u.local(req.requested_at)
    state = "consent requested" if req.state == "requested" else "reply waiting to be checked"
    return f"{pupil.short_name}: {state} {day.day} {day:%b %Y} by {req.requested_by_label}"
