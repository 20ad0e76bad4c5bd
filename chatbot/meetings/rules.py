"""What the school's policy requires of a Zoom meeting and of its host's Zoom account.

Pure functions: a booking in, the meeting the bot asks for out; a meeting as read back in,
the settings that break the policy out. The names in brackets are Zoom's own field names
(Create a meeting / Get a meeting: ``settings.waiting_room``, ``host_video``,
``participant_video``, ``join_before_host``, ``password``; Get user settings:
``in_meeting.screen_sharing``, ``who_can_share_screen``, ``allow_participants_to_rename``),
so the IT technician can find each one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from chatbot.policy import Policy
from chatbot.ports import MeetingInfo, MeetingSettings, MeetingSpec, UserSettings

# The policy's "before the meeting" settings, which a meeting carries itself.
REQUIRED = MeetingSettings(
    waiting_room=True, host_video=True, participant_video=True, join_before_host=False
)
SETTING_NAMES = {
    "passcode": "passcode (password)",
    "waiting_room": "waiting room on (waiting_room)",
    "host_video": "host video on (host_video)",
    "participant_video": "participant video on (participant_video)",
    "join_before_host": "join before host off (join_before_host)",
    "start": "start time (start_time)",
    "minutes": "length (duration)",
}
PASSCODE_DIGITS = 10  # Zoom's longest passcode; digits also work for people joining by phone


def new_passcode() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(PASSCODE_DIGITS))


def topic(policy: Policy, booking_id: int) -> str:
    """The meeting's title: the school and the call's number, never a pupil's name."""
    return f"{policy.school_name} video call #{booking_id}"[:200]


def spec_for(
    policy: Policy,
    booking_id: int,
    marker: str,
    start: datetime,
    minutes: int,
    passcode: str,
    alternative_host: str | None,
) -> MeetingSpec:
    return MeetingSpec(
        topic=topic(policy, booking_id),
        marker=marker,
        start=start,
        minutes=minutes,
        timezone=policy.timezone,
        passcode=passcode,
        alternative_host=alternative_host,
        settings=REQUIRED,
    )


def applied(spec: MeetingSpec) -> dict[str, object]:
    """What the platform is asked for that can change with the booking (stored, compared)."""
    return {
        "start": spec.start.isoformat(),
        "minutes": spec.minutes,
        "alternative_host": spec.alternative_host,
    }


def mismatches(spec: MeetingSpec, info: MeetingInfo) -> list[str]:
    """The keys of SETTING_NAMES whose read-back value breaks the policy or the booking. A
    setting the platform did not report counts: nobody can say it is right."""
    wrong: list[str] = []
    if not info.passcode:
        wrong.append("passcode")
    for key in ("waiting_room", "host_video", "participant_video", "join_before_host"):
        if getattr(info.settings, key) != getattr(REQUIRED, key):
            wrong.append(key)
    if info.start is None or info.start != spec.start:
        wrong.append("start")
    if info.minutes != spec.minutes:
        wrong.append("minutes")
    return wrong


def names(keys: list[str]) -> str:
    return ", ".join(SETTING_NAMES.get(k, k) for k in keys)


@dataclass(frozen=True)
class Breach:
    """An account setting that breaks the policy, how the host fixes it, and the change that
    would fix it."""

    key: str
    what: str
    how: str
    fix: UserSettings


WHERE = "Zoom web portal → Settings → Meeting → In Meeting (Basic)"
BREACHES = {
    "screen_sharing": Breach(
        "screen_sharing",
        "participants can share their screen (in_meeting.who_can_share_screen is not host)",
        f"{WHERE} → Screen sharing → Who can share?: Host Only",
        UserSettings(who_can_share_screen="host"),
    ),
    "rename": Breach(
        "rename",
        "participants can rename themselves (in_meeting.allow_participants_to_rename)",
        f"{WHERE} → Allow participants to rename themselves: off",
        UserSettings(allow_participants_to_rename=False),
    ),
}
LOCKED_HINT = (
    "If Zoom won't let you change it, the setting is locked for the school's whole account: "
    "ask IT to change it under Account Settings."
)


def breaches(s: UserSettings) -> list[Breach]:
    """The policy's "when you start the meeting" settings that the host's account breaks.
    Screen sharing switched off altogether is fine; so is sharing by the host only."""
    out: list[Breach] = []
    if s.screen_sharing is not False and s.who_can_share_screen != "host":
        out.append(BREACHES["screen_sharing"])
    if s.allow_participants_to_rename is not False:
        out.append(BREACHES["rename"])
    return out


def fixes(found: list[Breach]) -> UserSettings:
    """One change that fixes every breach in ``found``."""
    return UserSettings(
        who_can_share_screen="host" if any(b.key == "screen_sharing" for b in found) else None,
        allow_participants_to_rename=False if any(b.key == "rename" for b in found) else None,
    )
