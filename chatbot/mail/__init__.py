"""Email: what the bot writes to families and SLT through the school's own mail, and the
parents' replies it keeps as consent evidence.

The core builds each email whole (:mod:`compose`), stores it in the mail outbox in the same
transaction as the change that causes it (:mod:`outbox`), and a dispatcher hands it to the
``Email`` port (SMTP or Microsoft Graph, in ``adapters/email``). Replies come back through
``chatbot consent import`` or the Graph mailbox poller (:mod:`inbound`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MailSetup:
    """What the core needs to know about the school's mail (from the settings).

    ``sender`` is the office address mail comes from (MAIL_FROM); empty means the bot sends
    no email and staff use the letter by hand, as before. ``slt`` are the addresses SLT are
    told at (SLT_EMAIL). ``zoom_supplies_join``: the Zoom integration records each confirmed
    call's join link and passcode, so hosts are not asked to type them."""

    sender: str = ""
    slt: tuple[str, ...] = ()
    zoom_supplies_join: bool = False

    @property
    def sending(self) -> bool:
        return bool(self.sender)
