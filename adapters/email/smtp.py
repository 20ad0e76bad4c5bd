"""Email through an SMTP server (aiosmtplib): Google Workspace's SMTP relay, or the school's
own mail server.

``SMTP_URL`` is ``smtp://host:port`` (STARTTLS when the server offers it; required when a
login is given, so a password never crosses the network in the clear) or ``smtps://host:port``
(TLS from the start), with ``user:password@`` before the host for servers that need a login,
or none for a relay that trusts the server's IP address.

Replies: 4xx (try later) and network trouble are retried by the mail outbox; a 5xx reply
(recipient or message refused for good) is permanent and reported to the member of staff.
Error codes only go to the log, never addresses or content.
"""

from __future__ import annotations

import logging
import ssl
from urllib.parse import unquote, urlsplit

import aiosmtplib

from chatbot.config import Settings
from chatbot.ports import DeliveryError, OutgoingMail

log = logging.getLogger("chatbot.mail.smtp")
TIMEOUT_SECONDS = 60.0


def _error(code: int, what: str) -> DeliveryError:
    return DeliveryError(f"smtp_{what}_{code}", permanent=500 <= code < 600)


class SmtpEmail:
    name = "smtp"

    def __init__(
        self,
        url: str,
        sender: str,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ):
        parts = urlsplit(url)
        self.sender = sender
        self.hostname = parts.hostname or "localhost"
        self.implicit_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.tls_context = tls_context
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpEmail:
        context = None
        if settings.smtp_ca_file:
            context = ssl.create_default_context(cafile=settings.smtp_ca_file)
        return cls(settings.smtp_url, settings.mail_from, context)

    async def send(self, mail: OutgoingMail) -> None:
        try:
            refused, _ = await aiosmtplib.send(
                mail.raw,
                sender=self.sender,
                recipients=list(mail.recipients),
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.implicit_tls,
                # STARTTLS when offered; insisted on before a login is sent.
                start_tls=None if self.implicit_tls or not self.username else True,
                tls_context=self.tls_context,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            code = max((r.code for r in exc.recipients), default=550)
            raise _error(code, "recipient_refused") from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            # The bot's own login is wrong: retried (and reported after many tries), since
            # the families' addresses are not at fault.
            raise DeliveryError(f"smtp_login_refused_{exc.code}") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _error(exc.code, "refused") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"smtp_{type(exc).__name__}") from None
        if refused:  # some of several recipients (an SLT list) refused: the rest got it
            log.warning("smtp: %d recipient(s) of a message refused", len(refused))

    async def was_sent(self, message_id: str) -> bool | None:
        return None  # SMTP cannot be asked: see chatbot.mail.outbox on the duplicate window
