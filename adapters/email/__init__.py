"""The ``Email`` port's adapters: SMTP (Google Workspace's relay, or any mail server), Microsoft
Graph (Microsoft 365), and a folder of .eml files (the console demo). Chosen by the settings."""

from __future__ import annotations

from pathlib import Path

from chatbot.config import Settings
from chatbot.mail import MailSetup
from chatbot.ports import Email, Mailbox


def mail_setup(settings: Settings) -> MailSetup:
    if settings.mail_transport is None:
        return MailSetup()
    return MailSetup(sender=settings.mail_from, slt=settings.slt_email)


def transport(settings: Settings) -> Email | None:
    kind = settings.mail_transport
    if kind == "smtp":
        from adapters.email.smtp import SmtpEmail

        return SmtpEmail.from_settings(settings)
    if kind == "graph":
        from adapters.email.graph import GraphEmail

        return GraphEmail.from_settings(settings)
    if kind == "folder":
        from adapters.email.folder import FolderEmail

        return FolderEmail(Path(settings.mail_folder), settings.mail_from)
    return None


def mailbox(settings: Settings, email: Email | None) -> Mailbox | None:
    """The mailbox to read replies from: the Graph mailbox, when polling is turned on."""
    from adapters.email.graph import GraphEmail

    if isinstance(email, GraphEmail) and settings.graph_poll_minutes > 0:
        return email
    return None
