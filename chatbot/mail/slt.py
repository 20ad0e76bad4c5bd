"""SLT told of calls by email (the policy asks staff to inform SLT by email), as well as or
instead of the SLT channel: see ``Unit.tell_slt`` and the policy's ``[email] slt_notices``."""

from __future__ import annotations

from chatbot.mail.compose import letter_from_message
from chatbot.mail.outbox import queue
from chatbot.ui import Message
from chatbot.uow import Unit


def queue_slt_email(u: Unit, message: Message) -> None:
    """One email to every SLT_EMAIL address (staff, so one To line is fine). The notices
    name pupils by initials only, as the SLT channel does."""
    subject = message.text.splitlines()[0][:200] if message.text else "Video call notice"
    queue(
        u.session,
        u.now,
        u.mail,
        u.policy.school_name,
        kind="slt_notice",
        to=u.mail.slt,
        letter=letter_from_message(subject, message),
        about="SLT",
    )
