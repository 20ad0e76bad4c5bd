"""What people are told about a call's Zoom meeting, in our own words.

The join link and passcode appear only in messages to the call's host and co-host (``ready``);
every message to SLT is built without them and shows pupils by initials only.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from chatbot.bookings.notices import details, ref, short_when, when
from chatbot.meetings import rules
from chatbot.storage.models import Booking, Staff
from chatbot.ui import Block, Context, Fields, Message, Section, esc

KEEP_PRIVATE = "Share the link and passcode only in the invitation: never in a channel."


def thread(b: Booking, role: str) -> str:
    """The thread of the join details message of ``role`` ("host" or "cohost")."""
    return f"meeting:{b.id}:{role}"


def ready(
    b: Booking,
    zone: ZoneInfo,
    join_url: str,
    passcode: str,
    problems: list[str],
    for_cohost: bool,
    alt_host_refused: bool,
    changed: bool = False,
) -> Message:
    word = "updated" if changed else "ready"
    head = f"Zoom meeting {word} for your call on {when(b, zone)}."
    blocks: list[Block] = [
        Section(f"**Zoom meeting {word}** for your call on {esc(when(b, zone))}."),
        Fields((("Join link", join_url), ("Passcode", passcode))),
    ]
    if problems:
        blocks.append(
            Section(
                "**Not as the school's policy requires:** "
                + esc(", ".join(problems))
                + ". The call is flagged until this is fixed; the bot checks again before it."
            )
        )
    if for_cohost:
        blocks.append(
            Section(
                "You can't be an alternative host on this meeting (Zoom refused it), so the host "
                "must make you co-host once you join."
                if alt_host_refused
                else "You are an alternative host, so you can start the meeting if you need to."
            )
        )
    elif alt_host_refused:
        blocks.append(
            Section(
                "Zoom would not make your co-host an alternative host: make them co-host once "
                "they have joined."
            )
        )
    blocks.append(Context((f"{ref(b)} · {KEEP_PRIVATE}",)))
    return Message(text=head, blocks=tuple(blocks))


def deleted(b: Booking, zone: ZoneInfo) -> Message:
    text = (
        f"{ref(b)} on {when(b, zone)} is {b.status.replace('_', ' ')}, so its Zoom meeting "
        "was deleted and its link no longer works."
    )
    return Message(text=text, blocks=(Section(esc(text)), Context((ref(b),))))


def settings_wrong(
    b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo, keys: list[str], for_slt: bool
) -> Message:
    wrong = rules.names(keys)
    text = f"Zoom did not keep the school's settings for {ref(b)} on {when(b, zone)}: {wrong}."
    blocks: list[Block] = [
        Section(
            f"**Zoom meeting not as the policy requires:** {esc(wrong)}. "
            "The call is flagged until this is fixed."
        )
    ]
    if for_slt:
        blocks.append(details(b, host, cohost, zone, initials_only=True))
        blocks.append(Context((f"{ref(b)} · The host has been told.",)))
    else:
        blocks.append(
            Section(
                "Open the meeting in Zoom (Meetings → Upcoming → Edit) and set these back before "
                "the call. " + esc(rules.LOCKED_HINT)
            )
        )
        blocks.append(Context((f"{ref(b)} · SLT have been told.",)))
    return Message(text=text, blocks=tuple(blocks))


def settings_fixed(
    b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo, for_slt: bool
) -> Message:
    text = f"Fixed: the Zoom meeting for {ref(b)} on {when(b, zone)} now has the school's settings."
    blocks: list[Block] = [Section(esc(text))]
    if for_slt:
        blocks.append(details(b, host, cohost, zone, initials_only=True))
    blocks.append(Context((ref(b),)))
    return Message(text=text, blocks=tuple(blocks))


def account_settings(
    b: Booking, zone: ZoneInfo, remaining: list[rules.Breach], fixed: list[rules.Breach]
) -> Message:
    """To the host only: their Zoom account's settings that no meeting can carry."""
    blocks: list[Block] = []
    if fixed:
        blocks.append(
            Section(
                "**I changed your Zoom settings**, as the school's policy file allows: "
                + esc("; ".join(x.what for x in fixed))
                + " is now off."
            )
        )
    if remaining:
        lines = "\n".join(f"• {esc(x.what)}. To fix: {esc(x.how)}" for x in remaining)
        blocks.append(
            Section(
                f"**Your Zoom account breaks the school's policy** for your call on "
                f"{esc(when(b, zone))}:\n{lines}\n{esc(rules.LOCKED_HINT)}"
            )
        )
    blocks.append(Context((ref(b),)))
    what = "needs changing" if remaining else "was changed"
    return Message(text=f"Your Zoom account {what} before {ref(b)}.", blocks=tuple(blocks))


def not_made(
    b: Booking,
    host: Staff,
    cohost: Staff | None,
    zone: ZoneInfo,
    reason: str,
    for_slt: bool,
    made: bool = False,
) -> Message:
    """The bot could not make the meeting (or, ``made``, could not change or check it)."""
    what = "change the Zoom meeting" if made else "make the Zoom meeting"
    head = "Zoom meeting not brought up to date" if made else "No Zoom meeting yet"
    text = f"The bot could not {what} for {ref(b)} on {when(b, zone)}: {reason}"
    blocks: list[Block] = [Section(f"**{head}** for {ref(b)}: {esc(reason)}")]
    if for_slt:
        blocks.append(details(b, host, cohost, zone, initials_only=True))
        blocks.append(Context((f"{ref(b)} · The host has been told.",)))
    else:
        blocks.append(
            Section(
                "If it is not sorted before the call, check the meeting in Zoom yourself (a "
                "passcode, the waiting room and video on), and tell IT."
                if made
                else "If it is not sorted before the call, create the meeting yourself in Zoom "
                "with a passcode, the waiting room and video on, and tell IT."
            )
        )
        blocks.append(Context((ref(b),)))
    return Message(text=text, blocks=tuple(blocks))


def daily_limit_reason(host: Staff, until: datetime, zone: ZoneInfo) -> str:
    return (
        f"Zoom's daily limit on creating and changing meetings for {host.name} has been reached "
        f"(Zoom allows each user about 100 a day). The bot tries again at "
        f"{short_when(until, zone)}."
    )


def cohost_absent(
    b: Booking,
    host: Staff,
    cohost: Staff | None,
    zone: ZoneInfo,
    minutes: int,
    for_slt: bool,
) -> Message:
    who = cohost.name if cohost else "The second member of staff"
    text = (
        f"{who} has not joined the Zoom call {ref(b)} although the host has been in it for "
        f"{minutes} minutes."
    )
    blocks: list[Block] = [Section(f"**Co-host not in the call:** {esc(text)}")]
    if for_slt:
        blocks.append(details(b, host, cohost, zone, initials_only=True))
    else:
        blocks.append(
            Section(
                "The policy needs a second member of staff on the call. Keep pupils in the "
                "waiting room, or end the call, until your co-host joins (signed in to their "
                "school Zoom account, so the bot can see them)."
            )
        )
    blocks.append(Context((ref(b),)))
    return Message(text=text, blocks=tuple(blocks))


def overrun(
    b: Booking,
    host: Staff,
    cohost: Staff | None,
    zone: ZoneInfo,
    minutes: int,
    limit: int,
    for_slt: bool,
) -> Message:
    text = (
        f"The Zoom call {ref(b)} has run {minutes} minutes, longer than the {limit} minutes "
        "the school allows."
    )
    blocks: list[Block] = [Section(f"**Call running long:** {esc(text)}")]
    if for_slt:
        blocks.append(details(b, host, cohost, zone, initials_only=True))
    else:
        blocks.append(Section("Please bring the call to a close."))
    blocks.append(Context((ref(b),)))
    return Message(text=text, blocks=tuple(blocks))


def odd_start(
    b: Booking, host: Staff, cohost: Staff | None, zone: ZoneInfo, at: datetime, why: str
) -> Message:
    text = f"The Zoom meeting of {ref(b)} was started {short_when(at, zone)}: {why}."
    return Message(
        text=text,
        blocks=(
            Section(f"**Zoom meeting started unexpectedly:** {esc(text)}"),
            details(b, host, cohost, zone, initials_only=True),
            Context((ref(b),)),
        ),
    )
