"""Neutral message templates for bookings: what people are told, in our own words.

Pupils are shown to colleagues by forename and surname initial, and to SLT by initials only.
Names, plans and checklist labels go into sections (markup) through :func:`esc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from chatbot.bookings.rules import CheckGaps
from chatbot.policy import ChecklistItem, Policy
from chatbot.storage.models import Booking, Pupil, Staff
from chatbot.ui import Actions, Button, Context, Fields, Message, Section, esc

if TYPE_CHECKING:
    from chatbot.meetings.facts import MeetingFacts

KIND_LABEL = {"one_to_one": "One-to-one", "group": "Group"}
STAGE_LABEL = {
    "before": "Before the call",
    "start": "When you start the meeting",
    "environment": "Your surroundings",
}


def when(b: Booking, zone: ZoneInfo) -> str:
    s = b.starts_at.astimezone(zone)
    e = b.ends_at.astimezone(zone)
    return f"{s:%a} {s.day} {s:%b %Y}, {s:%H:%M}–{e:%H:%M}"


def short_when(at: datetime, zone: ZoneInfo) -> str:
    s = at.astimezone(zone)
    return f"{s:%a} {s.day} {s:%b} {s:%H:%M}"


def pupil_names(b: Booking) -> str:
    return ", ".join(bp.pupil.short_name for bp in b.pupils)


def pupil_initials(b: Booking) -> str:
    return ", ".join(bp.pupil.initials for bp in b.pupils)


def classes(b: Booking) -> str:
    return ", ".join(sorted({bp.pupil.class_name for bp in b.pupils if bp.pupil.class_name})) or "-"


def details(
    b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo, initials_only: bool = False
) -> Fields:
    return Fields(
        (
            ("When", when(b, zone)),
            ("Host", host.name),
            ("Co-host", cohost.name if cohost else "none"),
            ("Class", classes(b)),
            ("Pupils", pupil_initials(b) if initials_only else pupil_names(b)),
            ("Type", KIND_LABEL.get(b.kind, b.kind)),
            ("Platform", b.platform),
        )
    )


def ref(b: Booking) -> str:
    return f"Call #{b.id}"


@dataclass(frozen=True)
class Reason:
    """Why a call was called off or put on hold, worded for each audience: colleagues see the
    pupil's short name, SLT their initials; the audit trail keeps only the code."""

    code: str
    staff: str
    slt: str

    def for_(self, initials_only: bool) -> str:
        return self.slt if initials_only else self.staff


# What a code means, with no names (for the audit trail's readers and a call's hold line).
REASONS = {
    "consent_withdrawn": "written parental consent for a pupil on this call was withdrawn",
    "video_unsuitable": "video calls were marked not suitable for a pupil on this call",
    "hold_deadline": "it was still on hold when the co-host's deadline to accept passed",
}


def consent_withdrawn(pupil: Pupil) -> Reason:
    return Reason(
        "consent_withdrawn",
        f"written parental consent for {pupil.short_name} was withdrawn",
        f"written parental consent for {pupil.initials} was withdrawn",
    )


def video_unsuitable(pupil: Pupil) -> Reason:
    return Reason(
        "video_unsuitable",
        f"video calls were marked not suitable for {pupil.short_name}",
        f"video calls were marked not suitable for {pupil.initials}",
    )


def hold_deadline() -> Reason:
    text = REASONS["hold_deadline"]
    return Reason("hold_deadline", text, text)


def cohost_request(b: Booking, host: Staff, cohost: Staff, zone: ZoneInfo) -> Message:
    """The request to co-host; while the call is on hold it can only be declined."""
    accept = Button("cohost.accept", "Accept", str(b.id), "primary")
    decline = Button("cohost.decline", "Decline", str(b.id), "danger")
    held = b.held_at is not None
    return Message(
        text=f"{host.name} asks you to co-host a video call on {when(b, zone)}."
        + (f" On hold: {b.held_reason}." if held else ""),
        blocks=(
            Section(
                f"**{esc(host.name)}** asks you to be the second member of staff on a video call."
            ),
            *([hold_line(b)] if held else []),
            details(b, host, cohost, zone),
            Section(f"**Plan:** {esc(b.plan)}"),
            Actions((decline,) if held else (accept, decline)),
            Context((f"{ref(b)} · The call cannot go ahead until you answer.",)),
        ),
    )


def hold_line(b: Booking) -> Section:
    return Section(
        f"**On hold:** {esc(b.held_reason or 'see SLT')}. This call must not go ahead unless "
        "that changes; until then it can't be accepted or started."
    )


def cohost_request_closed(
    b: Booking, host: Staff, cohost: Staff, zone: ZoneInfo, outcome: str
) -> Message:
    return Message(
        text=f"{ref(b)} on {when(b, zone)}: {outcome}",
        blocks=(
            Section(f"Co-host request from **{esc(host.name)}**: {outcome}"),
            details(b, host, cohost, zone),
            Context((ref(b),)),
        ),
    )


def booked_for_host(
    b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo, answer_by: datetime
) -> Message:
    if b.status == "confirmed":
        head = f"Booked and confirmed: {when(b, zone)}."
    else:
        assert cohost is not None
        head = (
            f"Booked {when(b, zone)}. Waiting for {cohost.name} to accept as co-host "
            f"(by {short_when(answer_by, zone)}, or the call will not go ahead)."
        )
    return Message(
        text=head,
        blocks=(
            Section(esc(head)),
            details(b, host, cohost, zone),
            Context(
                (
                    f"{ref(b)} · SLT are told once the call is confirmed. "
                    "You'll get the safety checklist before the call.",
                )
            ),
        ),
    )


def confirmed_for_host(
    b: Booking, host: Staff, cohost: Staff, zone: ZoneInfo, note: str = ""
) -> Message:
    """``note`` says what happens about the video meeting (see chatbot.meetings.service)."""
    return Message(
        text=f"{cohost.name} accepted: your call on {when(b, zone)} is confirmed.",
        blocks=(
            Section(
                f"**{esc(cohost.name)}** accepted. Your call is confirmed and SLT have been told."
            ),
            details(b, host, cohost, zone),
            Context((ref(b), note) if note else (ref(b),)),
        ),
    )


def declined_for_host(b: Booking, host: Staff, cohost: Staff, zone: ZoneInfo) -> Message:
    return Message(
        text=f"{cohost.name} can't co-host your call on {when(b, zone)}.",
        blocks=(
            Section(
                f"**{esc(cohost.name)}** declined, so the call on {when(b, zone)} is not booked. "
                "Choose another colleague to book it again."
            ),
            Actions(
                (Button("booking.rebook", "Book again with someone else", str(b.id), "primary"),)
            ),
            Context((ref(b),)),
        ),
    )


def lapsed(
    b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo, initials_only: bool
) -> Message:
    who = cohost.name if cohost else "The co-host"
    return Message(
        text=f"{ref(b)} on {when(b, zone)} will not go ahead: {who} did not answer in time.",
        blocks=(
            Section(
                f"**Not going ahead:** {esc(who)} did not accept in time, so this call has no "
                "second member of staff and is cancelled."
            ),
            details(b, host, cohost, zone, initials_only=initials_only),
            Context((ref(b),)),
        ),
    )


def check_gaps_for_slt(
    b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo, gaps: tuple[CheckGaps, ...]
) -> Message:
    """The policy lets the call be booked, but SLT should know whose checks are not on record."""
    lines = "\n".join(f"{esc(g.who)}: {esc('; '.join(g.gaps))}" for g in gaps)
    return Message(
        text=f"{ref(b)} on {when(b, zone)} was booked with staff whose checks are not on record.",
        blocks=(
            Section(f"**Staff checks not on record** for a call just booked:\n{lines}"),
            details(b, host, cohost, zone, initials_only=True),
            Context(
                (
                    f"{ref(b)} · Update the staff roster (dbs_checked, safeguarding_training) "
                    "or speak to the people named.",
                )
            ),
        ),
    )


def slt_notice(b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo) -> Message:
    return Message(
        text=f"Video call booked: {when(b, zone)}, host {host.name}.",
        blocks=(
            Section("**Video call booked**"),
            details(b, host, cohost, zone, initials_only=True),
            Context((ref(b),)),
        ),
    )


def cancelled_by(b: Booking, canceller: Staff) -> str:
    """Who called a call off, as people are told: the host, or the named member of SLT."""
    return "the host" if canceller.id == b.host_id else f"{canceller.name} (SLT)"


def cancelled(
    b: Booking,
    host: Staff,
    cohost: Staff | None,
    zone: ZoneInfo,
    initials_only: bool,
    by: str,
    why: Reason | None = None,
) -> Message:
    because = f" because {why.for_(initials_only)}" if why else ""
    return Message(
        text=f"Cancelled by {by}{because}: video call on {when(b, zone)} (host {host.name}).",
        blocks=(
            Section(f"**Cancelled** by {esc(by)}{esc(because)}: this call will not take place."),
            details(b, host, cohost, zone, initials_only=initials_only),
            Context((ref(b),)),
        ),
    )


def on_hold(
    b: Booking,
    host: Staff,
    cohost: Staff | None,
    zone: ZoneInfo,
    initials_only: bool,
    why: Reason,
    deadline: datetime,
) -> Message:
    what = why.for_(initials_only)
    rest = (
        "The call stays in the diary but must not go ahead unless consent is recorded again "
        f"by {short_when(deadline, zone)}; if it is not, the call is called off then."
    )
    return Message(
        text=f"{ref(b)} on {when(b, zone)} is on hold: {what}. {rest}",
        blocks=(
            Section(f"**On hold:** {esc(what)}. {esc(rest)}"),
            details(b, host, cohost, zone, initials_only=initials_only),
            Context((ref(b),)),
        ),
    )


def hold_lifted(
    b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo, initials_only: bool
) -> Message:
    head = "Consent is on file again: the call is no longer on hold."
    if b.status == "awaiting_cohost":
        head += " It still needs the co-host to accept."
    return Message(
        text=f"{ref(b)} on {when(b, zone)}: {head}",
        blocks=(
            Section(f"**Hold lifted.** {esc(head)}"),
            details(b, host, cohost, zone, initials_only=initials_only),
            Context((ref(b),)),
        ),
    )


def _item_link(policy: Policy, item: ChecklistItem) -> str | None:
    """A web address from the policy file that goes with a checklist item, if any."""
    if item.key == "code_of_conduct":
        return policy.contacts.code_of_conduct_url
    return None


def zoom_lines(meeting: MeetingFacts) -> list[str]:
    """Markup lines for the checklist: the meeting's join details (for the invitation) and
    whether the bot could confirm the policy's Zoom settings."""
    if not meeting.ready:
        if meeting.state in ("failed", "deleted"):
            return ["**Zoom:** the bot could not make this meeting; set it up yourself."]
        return ["**Zoom:** the bot is still creating the meeting."]
    lines = [
        f"**Join link:** {esc(meeting.join_url or '')}",
        f"**Passcode:** {esc(meeting.passcode or '')}",
    ]
    if meeting.problems:
        lines.append("**Zoom settings to fix:** " + esc("; ".join(meeting.problems)))
    elif meeting.state == "ready":
        lines.append(
            "**Zoom:** the bot set and checked the passcode, waiting room and video settings, "
            "and your account's screen sharing and renaming."
        )
    return lines


def checklist(
    b: Booking,
    policy: Policy,
    ticked: set[str],
    intro: str = "",
    now: datetime | None = None,
    meeting: MeetingFacts | None = None,
) -> Message:
    """The checklist; given ``now``, a stage that can't be ticked yet says from when.
    ``meeting``: the call's Zoom meeting, when the bot made one (its join details go with the
    "invitation with passcode" item, to paste into the invitation)."""
    zone = policy.zone
    blocks: list[Section | Actions | Context | Fields] = []
    head = intro or f"Safety checklist for your call on {when(b, zone)}."
    blocks.append(Section(esc(head)))
    if b.held_at is not None:
        blocks.append(hold_line(b))
    for stage in ("before", "start", "environment"):
        items: tuple[ChecklistItem, ...] = policy.checklist_stage(stage)
        if not items:
            continue
        heading = f"**{STAGE_LABEL[stage]}**"
        opens = policy.checklist_opens_at(items[0], b.starts_at)
        if now is not None and now < opens:
            heading += f" (tick these from {short_when(opens, zone)})"
        lines = []
        for i in items:
            line = f"{'☑' if i.key in ticked else '☐'} {esc(i.label)}"
            if link := _item_link(policy, i):
                line += f" · read it at {esc(link)}"
            lines.append(line)
            if i.key == "invite_passcode" and meeting is not None:
                lines.extend(f"    {line}" for line in zoom_lines(meeting))
        blocks.append(Section(heading + "\n" + "\n".join(lines)))
    if meeting is not None and all(i.key != "invite_passcode" for i in policy.checklist):
        blocks.insert(1, Section("\n".join(zoom_lines(meeting))))
    todo = [i for i in policy.checklist if i.key not in ticked]
    if todo:
        for start in range(0, len(todo), 5):
            blocks.append(
                Actions(
                    tuple(
                        # The whole label: each platform shortens it to its own limit at a
                        # word boundary (Slack's is 75 characters).
                        Button("checklist.tick", f"Done: {i.label}", f"{b.id}:{i.key}")
                        for i in todo[start : start + 5]
                    )
                )
            )
    else:
        blocks.append(Section("Every check is done. Thank you."))
    blocks.append(Context((f"{ref(b)} · {len(ticked)} of {len(policy.checklist)} done",)))
    return Message(text=head, blocks=tuple(blocks))


def unticked_at_start(b: Booking, policy: Policy, missing: list[ChecklistItem]) -> Message:
    lines = "\n".join(f"☐ {esc(i.label)}" for i in missing)
    return Message(
        text=f"Your call is starting and {len(missing)} safety checks are not ticked.",
        blocks=(
            Section(f"**Your call is starting.** These checks are not ticked yet:\n{lines}"),
            Actions((Button("checklist.open", "Open the checklist", str(b.id), "primary"),)),
            Context((ref(b),)),
        ),
    )


def log_request(b: Booking, zone: ZoneInfo, nudge: bool = False) -> Message:
    head = (
        f"Reminder: the Keeping in Touch log for your call on {when(b, zone)} is still missing."
        if nudge
        else f"Please write the Keeping in Touch log for your call on {when(b, zone)}."
    )
    return Message(
        text=head,
        blocks=(
            Section(head),
            Actions((Button("calllog.open", "Write the log", str(b.id), "primary"),)),
            Context((ref(b),)),
        ),
    )


def log_missing_for_slt(b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo) -> Message:
    return Message(
        text=f"No Keeping in Touch log yet for the call on {when(b, zone)} (host {host.name}).",
        blocks=(
            Section("**Keeping in Touch log missing**"),
            details(b, host, cohost, zone, initials_only=True),
            Context((ref(b),)),
        ),
    )


def _check_lines(missing: list[ChecklistItem]) -> str:
    return "\n".join(f"☐ {esc(i.label)}" for i in missing)


def unticked_for_slt(
    b: Booking,
    host: Staff,
    cohost: Staff | None,
    zone: ZoneInfo,
    missing: list[ChecklistItem],
    minutes: int,
) -> Message:
    return Message(
        text=f"{ref(b)}: {len(missing)} safety checks still not ticked {minutes} minutes "
        f"into the call (host {host.name}).",
        blocks=(
            Section(
                f"**Safety checks not ticked {minutes} minutes into the call**\n"
                f"{_check_lines(missing)}"
            ),
            details(b, host, cohost, zone, initials_only=True),
            Context((f"{ref(b)} · The host has been told.",)),
        ),
    )


def unticked_reported_to_host(b: Booking, missing: list[ChecklistItem], minutes: int) -> Message:
    head = (
        f"{len(missing)} safety checks were still not ticked {minutes} minutes into your call, "
        "so SLT have been told."
    )
    return Message(
        text=head,
        blocks=(
            Section(f"{esc(head)}\n{_check_lines(missing)}"),
            Actions((Button("checklist.open", "Open the checklist", str(b.id), "primary"),)),
            Context((ref(b),)),
        ),
    )


def log_points_for_slt(
    b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo, points: list[str]
) -> Message:
    """What a Keeping in Touch log told us that SLT must know (never the log's text)."""
    return Message(
        text=f"Keeping in Touch log for {ref(b)} (host {host.name}): " + " ".join(points),
        blocks=(
            Section("**From a Keeping in Touch log**\n" + "\n".join(esc(p) for p in points)),
            details(b, host, cohost, zone, initials_only=True),
            Context((ref(b),)),
        ),
    )


def worry_reminder(b: Booking, zone: ZoneInfo) -> Message:
    head = (
        f"Your Keeping in Touch log for the call on {when(b, zone)} says something was "
        "worrying, but no concern has been filed. Please report it to the DSL now."
    )
    return Message(
        text=head,
        blocks=(
            Section(esc(head)),
            Actions((Button("concern.open", "Report the concern", f"booking:{b.id}", "primary"),)),
            Context((f"{ref(b)} · The DSL will be told if no concern is filed.",)),
        ),
    )


def worry_unfiled_for_dsl(b: Booking, host: Staff, zone: ZoneInfo, minutes: int) -> Message:
    head = (
        f"A Keeping in Touch log for {ref(b)} says something was worrying, and no concern "
        f"about the call has been filed {minutes} minutes later."
    )
    return Message(
        text=head,
        blocks=(
            Section(f"**Worry logged, no concern filed**\n{esc(head)}"),
            Fields((("Call", f"{ref(b)}, {when(b, zone)}"), ("Host", host.name))),
            Context(("Please follow this up with the host.",)),
        ),
    )
