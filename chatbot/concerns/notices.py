"""Message templates for safeguarding concerns, in our own words.

Alerts (channel posts and direct messages) carry the reference, category, urgency, reporter,
pupil initials and times: never the narrative, the pupil's name or the member of staff
concerned. Those are shown only in :func:`details`, which is a Popup for a DSL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from chatbot.policy import Policy
from chatbot.storage.models import Concern, ConcernEvent
from chatbot.ui import Actions, Button, Context, Fields, Message, Section, esc

AlertStage = Literal["new", "reminder", "escalation", "repeat"]

EVENT_LABEL = {
    "filed": "Filed",
    "delivered": "Alert delivered",
    "resent": "Alert re-sent (not acknowledged in time)",
    "escalated": "Escalated to DSLs and SLT by direct message",
    "repeated": "Sent again to DSLs and SLT (still not acknowledged)",
    "viewed": "Details viewed",
    "view_refused": "Details refused (not a DSL)",
    "acknowledged": "Acknowledged",
    "note": "Note added",
    "closed": "Closed",
    "exported": "Record exported",
    "legal_hold_on": "Legal hold placed",
    "legal_hold_off": "Legal hold lifted",
}


@dataclass(frozen=True)
class AlertFacts:
    """What an alert may show: nothing here identifies the pupil or says what happened."""

    concern_id: int
    reference: str
    category: str
    urgent: bool
    reporter: str
    pupil_initials: str  # "" when no pupil was named
    about_staff: bool
    happened_at: datetime
    filed_at: datetime
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    closed: bool = False


def at(when: datetime, zone: ZoneInfo) -> str:
    s = when.astimezone(zone)
    return f"{s:%a} {s.day} {s:%b %Y} {s:%H:%M}"


def urgency(urgent: bool) -> str:
    return "URGENT: a child may be at immediate risk" if urgent else "Not marked as immediate risk"


def alert(
    f: AlertFacts,
    zone: ZoneInfo,
    stage: AlertStage = "new",
    ack_minutes: int | None = None,
    repeat_every: int | None = None,
) -> Message:
    """The DSL alert, its reminder, escalation and repeats, and (once acknowledged) their
    update."""
    head = {
        "new": "New safeguarding concern",
        "reminder": "Reminder: safeguarding concern not yet acknowledged",
        "escalation": "Escalation: safeguarding concern not acknowledged",
        "repeat": "Safeguarding concern still not acknowledged",
    }[stage]
    if f.urgent:
        head = f"URGENT {head[0].lower()}{head[1:]}"
    if f.acknowledged_at is not None:
        head = "Safeguarding concern (acknowledged)"
    if f.closed:
        head = "Safeguarding concern (closed)"
    fields: list[tuple[str, str]] = [
        ("Reference", f.reference),
        ("Category", f.category),
        ("Urgency", urgency(f.urgent)),
        ("Reported by", f.reporter),
        ("Pupil", f.pupil_initials or "not named"),
        ("Reported at", at(f.filed_at, zone)),
        ("Happened", at(f.happened_at, zone)),
    ]
    if f.about_staff:
        fields.append(("About", "a member of staff (named in the details)"))
    blocks: list[Section | Fields | Actions | Context] = [
        Section(f"**{head}**"),
        Fields(tuple(fields)),
    ]
    view = Button("concern.view", "View details", str(f.concern_id), "primary")
    if f.acknowledged_at is not None:
        who = f.acknowledged_by or "a DSL"
        blocks.append(Context((f"Acknowledged by {who} at {at(f.acknowledged_at, zone)}.",)))
        buttons = [view]
        if not f.closed:
            buttons += [
                Button("concern.note", "Add note", str(f.concern_id)),
                Button("concern.close", "Close concern", str(f.concern_id)),
            ]
        blocks.append(Actions(tuple(buttons)))
    else:
        if stage == "repeat":
            since = f"Nobody has acknowledged this since it was reported at {at(f.filed_at, zone)}."
            blocks.append(Context((since,)))
        elif stage != "new" and ack_minutes is not None:
            blocks.append(Context((f"Nobody has acknowledged this within {ack_minutes} minutes.",)))
        if stage in ("escalation", "repeat") and repeat_every is not None:
            blocks.append(
                Context(
                    (
                        f"It will be sent again every {repeat_every} minutes until someone "
                        "acknowledges it.",
                    )
                )
            )
        blocks.append(Context((f"The details are shown only to {who_may_see(f.about_staff)}.",)))
        blocks.append(
            Actions(
                (
                    view,
                    Button(
                        "concern.ack",
                        "Acknowledge",
                        str(f.concern_id),
                        "danger" if f.urgent else "default",
                    ),
                )
            )
        )
    text = f"{head}: {f.reference} ({f.category})"
    return Message(text, tuple(blocks))


def receipt(reference: str, policy: Policy, urgent: bool, out_of_hours: bool) -> Message:
    c = policy.contacts
    lines = [
        f"Thank you. Your concern is recorded as **{reference}** and the Designated Safeguarding "
        "Lead has been alerted. Keep the reference; please don't copy the details anywhere else."
    ]
    if urgent:
        lines.append(
            f"**If a child may be at immediate risk of harm: call the police on {c.police_phone} "
            "now.** Then tell the DSL in person straight away; don't wait for a reply to this "
            f"message. The school's safeguarding phone number is {c.school_phone}."
        )
        lines.append(
            "If it is about a child being abused or groomed online, you can also report it to "
            f"CEOP, the police's online child protection service: {esc(c.ceop_url)}"
        )
    if out_of_hours:
        lines.append(
            f"The school is closed at the moment, so SLT have been alerted too. {c.out_of_hours}"
        )
    text = f"Concern recorded: {reference}."
    if urgent:
        text += f" If a child may be at immediate risk, call the police on {c.police_phone} now."
    return Message(text, tuple(Section(line) for line in lines))


def save_failed(policy: Policy) -> str:
    c = policy.contacts
    return (
        "Sorry, your concern could not be saved just now, so nothing has been sent. Please "
        "press Submit again. If a child may be at immediate risk, call the police on "
        f"{c.police_phone} and tell the DSL in person now (school phone {c.school_phone})."
    )


def who_may_see(about_staff: bool) -> str:
    """Who a concern goes to for action (see :func:`chatbot.concerns.access.may_see`)."""
    return (
        "the DSL, the deputy DSL and the head teacher" if about_staff else "the DSL and deputy DSL"
    )


def refused(what: str) -> str:
    return (
        f"Only the DSL and deputy DSL (and the head teacher, for a concern about a member of "
        f"staff) can {what} a concern. This attempt has been recorded in the audit trail."
    )


LIST_REFUSED = (
    "Only the DSL and deputy DSL (and the head teacher, for concerns about members of staff) "
    "can list open concerns. This attempt has been recorded in the audit trail."
)


@dataclass(frozen=True)
class ListedConcern:
    """One line of the list of open concerns: nothing says who or what it is about."""

    concern_id: int
    reference: str
    category: str
    urgent: bool
    filed_at: datetime
    acknowledged_by: str | None  # None: not acknowledged yet


def age(filed_at: datetime, now: datetime) -> str:
    """How long ago, roughly: "4 min", "2 h 5 min", "3 days"."""
    minutes = max(0, int((now - filed_at).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        h, m = divmod(minutes, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    return f"{minutes // (24 * 60)} days"


def listed_line(c: ListedConcern, now: datetime) -> str:
    """Plain text: reference, urgency, state, age and category."""
    state = f"acknowledged by {c.acknowledged_by}" if c.acknowledged_by else "NOT ACKNOWLEDGED"
    urgent = "URGENT · " if c.urgent else ""
    return f"{c.reference} · {urgent}{state} · {age(c.filed_at, now)} old · {c.category}"


def open_list(rows: list[ListedConcern], now: datetime, shown: int) -> Message:
    """/concerns: the open concerns, each with a button to its details (audited)."""
    if not rows:
        text = "There are no open safeguarding concerns for you."
        return Message(text, (Section(text),))
    waiting = sum(1 for c in rows if c.acknowledged_by is None)
    head = f"Open safeguarding concerns: {len(rows)}, {waiting} not acknowledged"
    blocks: list[Section | Actions | Context] = [Section(f"**{head}**")]
    for c in rows[:shown]:
        blocks.append(Section(esc(listed_line(c, now))))
        blocks.append(Actions((Button("concern.view", f"View {c.reference}", str(c.concern_id)),)))
    if len(rows) > shown:
        blocks.append(Context((f"…and {len(rows) - shown} more.",)))
    blocks.append(Context(("Not acknowledged first. Opening the details is recorded.",)))
    return Message(f"{head}.", tuple(blocks))


@dataclass(frozen=True)
class DetailFacts:
    reference: str
    category: str
    urgent: bool
    reporter: str
    pupil: str  # full name and class, or "not named"
    staff_concerned: str | None
    related_call: str | None
    happened_at: datetime
    filed_at: datetime
    narrative: str
    status: str
    acknowledged: str | None
    notes: tuple[tuple[datetime, str, str], ...]  # (when, who, note)
    outcome: str | None


def details(d: DetailFacts, zone: ZoneInfo) -> Message:
    fields: list[tuple[str, str]] = [
        ("Reference", d.reference),
        ("Category", d.category),
        ("Urgency", urgency(d.urgent)),
        ("Reported by", d.reporter),
        ("Pupil", d.pupil),
        ("Happened", at(d.happened_at, zone)),
        ("Reported at", at(d.filed_at, zone)),
        ("Status", d.status),
    ]
    if d.staff_concerned:
        fields.append(("Member of staff concerned", d.staff_concerned))
    if d.related_call:
        fields.append(("Related call", d.related_call))
    if d.acknowledged:
        fields.append(("Acknowledged", d.acknowledged))
    blocks: list[Section | Fields | Context] = [
        Fields(tuple(fields)),
        Section("**What happened**"),
        Section(esc(d.narrative)),
    ]
    for when, who, note in d.notes:
        blocks.append(Section(f"**Note, {at(when, zone)}, {esc(who)}:** {esc(note)}"))
    if d.outcome:
        blocks.append(Section(f"**Outcome:** {esc(d.outcome)}"))
    blocks.append(Context(("Confidential: shown only to you. Your view has been recorded.",)))
    return Message(f"Concern {d.reference}", tuple(blocks))


def acknowledged_for_reporter(reference: str, by: str) -> Message:
    text = f"Your concern {reference} has been acknowledged by {by}. Thank you for reporting it."
    return Message(text, (Section(esc(text)),))


def chronology_line(e: ConcernEvent, zone: ZoneInfo) -> str:
    label = EVENT_LABEL.get(e.kind, e.kind)
    line = f"{at(e.at, zone)}  {label}  by {e.actor_label}"
    if e.detail:
        line += f"  ({e.detail})"
    if e.note:
        line += f"\n    {e.note}"
    return line


def export_text(
    c: Concern,
    d: DetailFacts,
    events: list[ConcernEvent],
    zone: ZoneInfo,
    retain_until: str,
    exported_by: str,
    exported_at: datetime,
    school: str,
) -> str:
    """The record for a referral or a file transfer: plain text, one file per concern."""
    rows = [
        f"{school}: safeguarding concern record {c.reference}",
        "CONFIDENTIAL: child protection record. Share only with those who need to know.",
        "",
        f"Category:            {d.category}",
        f"Urgency:             {urgency(d.urgent)}",
        f"Reported by:         {d.reporter}",
        f"Pupil:               {d.pupil}",
        f"Member of staff:     {d.staff_concerned or '-'}",
        f"Related call:        {d.related_call or '-'}",
        f"Happened:            {at(d.happened_at, zone)}",
        f"Reported at:         {at(d.filed_at, zone)}",
        f"Status:              {d.status}",
        f"Acknowledged:        {d.acknowledged or 'not yet'}",
        f"Outcome:             {d.outcome or '-'}",
        f"Legal hold:          {'yes' if c.legal_hold else 'no'}",
        f"Keep until:          {retain_until}",
        "",
        "What happened (as reported):",
        d.narrative,
        "",
        "Chronology:",
        *(chronology_line(e, zone) for e in events),
        "",
        f"Exported by {exported_by} at {at(exported_at, zone)}.",
    ]
    return "\n".join(rows) + "\n"
