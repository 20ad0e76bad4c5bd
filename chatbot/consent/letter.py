"""The information parents must have, by email, before their child's first call.

Staff send it from their school email and keep the parent's written reply as the consent
evidence (recorded with /consent). Built from the school's policy settings, so the platform,
length and weekly limit in the letter are the ones the bot enforces.
"""

from __future__ import annotations

from chatbot.policy import Policy
from chatbot.ui import Context, Message, Section, esc


def _platforms(p: Policy) -> str:
    names = list(p.platforms)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


SUBJECT = "Video calls with school: please reply to agree"


def letter_text(p: Policy) -> str:
    """The email, ready to paste: its subject line, then the body."""
    return f"Subject: {SUBJECT}\n\n{letter_body(p)}"


def letter_body(p: Policy) -> str:
    """The email body (the bot also sends it itself: see chatbot.consent.by_email)."""
    per_week = p.calls_per_pupil_per_week
    how_often = "once a week" if per_week == 1 else f"up to {per_week} times a week"
    return "\n".join(
        (
            "Dear parent or carer,",
            "",
            f"Staff at {p.school_name} would like to keep in touch with your child through "
            f"short live video calls on {_platforms(p)}, using school accounts. A call lasts "
            f"at most {p.max_call_minutes} minutes, happens at most {how_often}, during school "
            f"hours ({p.hours_text()}), and two members of staff always take part.",
            "",
            "Before each call you will get an email invitation with the link and a passcode. "
            "To keep everyone safe during a call, please make sure that:",
            "- your child, and anyone else who may appear, is dressed as they would be in public;",
            "- an adult stays nearby throughout, and the sound plays aloud (no headphones);",
            "- the device is in a shared room, not a bedroom, with a plain background if you can;",
            "- nothing personal or worrying is talked about on the call: phone or email the "
            "school about those instead.",
            "",
            "A laptop or tablet usually gives better sound and picture than a phone, and using "
            "Wi-Fi avoids mobile data charges. Taking part is entirely your choice; nobody is "
            "expected to join.",
            "",
            "If you would like your child to join these calls, please reply to this email to "
            "say you agree. We will keep your reply as our record, and you can change your "
            "mind at any time by telling us.",
            "",
            f"If you are ever worried about a call, phone the school on "
            f"{p.contacts.school_phone}. If a child is in immediate danger, call "
            f"{p.contacts.police_phone}. You can also report concerns about online contact to "
            f"CEOP: {p.contacts.ceop_url}",
            "",
            "With thanks,",
            p.school_name,
        )
    )


def letter_message(p: Policy) -> Message:
    """Shown to staff by ``/consent letter``: the letter, then what to do with the reply."""
    body = letter_text(p)
    # One section per paragraph keeps each well inside Slack's 3,000-character limit.
    paragraphs = tuple(Section(esc(part)) for part in body.split("\n\n"))
    return Message(
        "The parent information email to send before a first call",
        (
            Section("**Parent information: send this from your school email before a first call**"),
            *paragraphs,
            Context(
                (
                    "When the parent replies to agree, record it with /consent "
                    "(the email's Message-ID or subject is the evidence). Keep the email. "
                    "Or let the bot send it and keep the reply: /consent ask.",
                )
            ),
        ),
    )
