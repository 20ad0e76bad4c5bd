"""Neutral message templates for bookings: what people are told, in our own words.

Pupils are shown to colleagues by forename and surname initial, and to SLT by initials only.
Names, plans and checklist labels go into sections (markup) through :func:`esc`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from chatbot.policy import ChecklistItem, Policy
from chatbot.storage.models import Booking, Staff
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


def cohost_request(b: Booking, host: Staff, cohost: Staff, zone: ZoneInfo) -> Message:
    return Message(
        text=f"{host.name} asks you to co-host a video call on {when(b, zone)}.",
        blocks=(
            Section(
                f"**{esc(host.name)}** asks you to be the second member of staff on a video call."
            ),
            details(b, host, cohost, zone),
            Section(f"**Plan:** {esc(b.plan)}"),
            Actions(
                (
                    Button("cohost.accept", "Accept", str(b.id), "primary"),
                    Button("cohost.decline", "Decline", str(b.id), "danger"),
                )
            ),
            Context((f"{ref(b)} · The call cannot go ahead until you answer.",)),
        ),
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
    b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo, initials_only: bool, by: str
) -> Message:
    return Message(
        text=f"Cancelled by {by}: video call on {when(b, zone)} (host {host.name}).",
        blocks=(
            Section(f"**Cancelled** by {esc(by)}: this call will not take place."),
            details(b, host, cohost, zone, initials_only=initials_only),
            Context((ref(b),)),
        ),
    )


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
    meeting: MeetingFacts | None = None,
) -> Message:
    """``meeting``: the call's Zoom meeting, when the bot made one (its join details go with
    the "invitation with passcode" item, to paste into the invitation)."""
    zone = policy.zone
    blocks: list[Section | Actions | Context | Fields] = []
    head = intro or f"Safety checklist for your call on {when(b, zone)}."
    blocks.append(Section(esc(head)))
    for stage in ("before", "start", "environment"):
        items: tuple[ChecklistItem, ...] = policy.checklist_stage(stage)
        if not items:
            continue
        lines = []
        for i in items:
            lines.append(f"{'☑' if i.key in ticked else '☐'} {esc(i.label)}")
            if i.key == "invite_passcode" and meeting is not None:
                lines.extend(f"    {line}" for line in zoom_lines(meeting))
        blocks.append(Section(f"**{STAGE_LABEL[stage]}**\n" + "\n".join(lines)))
    if meeting is not None and all(i.key != "invite_passcode" for i in policy.checklist):
        blocks.insert(1, Section("\n".join(zoom_lines(meeting))))
    todo = [i for i in policy.checklist if i.key not in ticked]
    if todo:
        for start in range(0, len(todo), 5):
            blocks.append(
                Actions(
                    tuple(
                        Button("checklist.tick", f"Done: {i.label}"[:75], f"{b.id}:{i.key}")
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
