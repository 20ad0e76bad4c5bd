"""A real SMTP server on 127.0.0.1 (aiosmtpd) standing in for the school's mail server or
Google Workspace's SMTP relay: optional AUTH and STARTTLS with a certificate made in the test
(trustme), a recipient it refuses for good, and "try again later" replies on demand."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "bot@school.test", "s3cret:with@odd/chars"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    login: bytes | None

    @property
    def message(self) -> EmailMessage:
        m = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(m, EmailMessage)
        return m


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # recipients answered 550
    busy: int = 0  # the next N messages get 451
    logins: list[bytes] = field(default_factory=list)

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> Any:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and data.password == PASSWORD.encode()
        )
        if ok:
            self.logins.append(data.login)
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.busy > 0:
            self.busy -= 1
            return "451 4.3.0 Try again later"
        login = self.logins[-1] if session.authenticated and self.logins else None
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or envelope.content),
                tls=session.ssl is not None,
                login=login,
            )
        )
        return "250 2.0.0 Accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpServer:
    handler: Handler
    port: int
    ca_file: Path | None

    def url(self, login: bool = False) -> str:
        from urllib.parse import quote

        who = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@" if login else ""
        return f"smtp://{who}127.0.0.1:{self.port}"


@contextmanager
def smtp_server(tmp_path: Path, secure: bool = False) -> Iterator[SmtpServer]:
    """Plain (an IP-trusted relay), or ``secure``: STARTTLS required, then AUTH required."""
    handler = Handler()
    port = free_port()
    kwargs: dict[str, Any] = {}
    ca_file = None
    if secure:
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        ca_file = tmp_path / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        kwargs = {
            "tls_context": context,
            "require_starttls": True,
            "auth_required": True,
            "auth_require_tls": True,
            "authenticator": handler.authenticate,
        }
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer(handler, port, ca_file)
    finally:
        controller.stop()
