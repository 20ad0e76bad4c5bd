"""A stand-in for Microsoft's sign-in services on 127.0.0.1, answering as the real ones do:

- the Bot Connector's OpenID metadata (as at
  https://login.botframework.com/v1/.well-known/openidconfiguration) and the signing keys its
  ``jwks_uri`` names, each endorsed for the channels it signs for, as Bot Framework's keys are;
- a Microsoft Entra tenant's OpenID configuration and OAuth2 token endpoint (client
  credentials), where MSAL gets the bot's own token for its calls to the Bot Connector.

:meth:`MicrosoftLogin.channel_token` mints the token the Bot Connector sends with an activity:
RS256, the key's id in the header, issued by https://api.botframework.com to the bot's app id
for the activity's ``serviceUrl``.

It serves HTTPS (MSAL refuses anything else) with a certificate from a throwaway CA (trustme),
on its own thread, because botbuilder fetches the keys with blocking ``requests`` from the
event loop. Every request is recorded; anything it does not know is answered 404.
"""

from __future__ import annotations

import functools
import json
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
import msal.authority
import pytest
import trustme
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://api.botframework.com"  # the Bot Connector's tokens' issuer, public cloud
SCOPE = f"{ISSUER}/.default"  # what the bot asks Entra for: a token for the Bot Connector
LOOPBACK_NAMES = {None, "", "127.0.0.1", "localhost", "::1", "0.0.0.0"}


@functools.cache
def _rsa(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)  # ~0.1 s: once a run


@dataclass(frozen=True)
class Key:
    kid: str
    private: rsa.RSAPrivateKey
    endorsements: tuple[str, ...]

    def jwk(self) -> dict[str, Any]:
        """The public half as login.botframework.com publishes it."""
        jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": jwk["n"],
            "e": jwk["e"],
            "endorsements": list(self.endorsements),
        }


@dataclass
class Seen:
    method: str
    path: str
    form: dict[str, str]


def _key(name: str, *endorsements: str) -> Key:
    return Key(secrets.token_urlsafe(20), _rsa(name), endorsements)


class MicrosoftLogin:
    """Use as a context manager; :meth:`use` points this process at it."""

    def __init__(self, app_id: str, app_password: str, tenant: str):
        self.app_id, self.app_password, self.tenant = app_id, app_password, tenant
        # Published, endorsed for Teams (and other channels, as the real keys are).
        self.teams_key = _key("teams", "msteams", "skype")
        # Published, but for Web Chat only: what it signs is no good for an activity from Teams.
        self.webchat_key = _key("webchat", "webchat")
        # Never published: anyone's own key.
        self.other_key = _key("other", "msteams")
        self.seen: list[Seen] = []
        self.issued: list[str] = []  # the bot's own tokens, in the order they were issued
        self.off_machine: list[str] = []  # names looked up that are not this machine's
        # botbuilder keeps the keys it fetched for a day, per metadata URL, in a class attribute:
        # a path of its own keeps these keys apart from an earlier stand-in's on the same port.
        self.prefix = secrets.token_hex(8)
        self.base = ""
        self.ca_file = ""
        self._lock = threading.Lock()
        self._server: _TlsServer | None = None
        self._thread: threading.Thread | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> MicrosoftLogin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- what the bot is given -----

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/{self.prefix}/v1/.well-known/openidconfiguration"

    def settings(self) -> dict[str, str]:
        """The Settings that point the bot here instead of at Microsoft's public cloud."""
        return {"teams_openid_metadata_url": self.metadata_url, "teams_login_url": self.base}

    # ----- what the Bot Connector sends -----

    def channel_token(
        self,
        service_url: str,
        *,
        key: Key | None = None,
        kid: str | None = None,
        audience: str | None = None,
        issuer: str = ISSUER,
        age: int = 0,
    ) -> str:
        """A token as the Bot Connector signs one for an activity, ``age`` seconds old (it is
        good for an hour, as the Bot Connector's are)."""
        key = key or self.teams_key
        now = int(time.time()) - age
        claims = {
            "serviceurl": service_url,
            "nbf": now,
            "exp": now + 3600,
            "iss": issuer,
            "aud": self.app_id if audience is None else audience,
        }
        headers = {"kid": kid or key.kid, "x5t": kid or key.kid, "typ": "JWT"}
        return jwt.encode(claims, key.private, algorithm="RS256", headers=headers)

    def bearer(self, service_url: str, **token: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.channel_token(service_url, **token)}"}

    # ----- the answers -----

    def _answer(self, method: str, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.seen.append(Seen(method, path, form))
        here, t = self.base, self.tenant
        if method == "GET" and path == f"/{self.prefix}/v1/.well-known/openidconfiguration":
            return 200, {
                "issuer": ISSUER,
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"{here}/{self.prefix}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        if method == "GET" and path == f"/{self.prefix}/v1/.well-known/keys":
            return 200, {"keys": [self.teams_key.jwk(), self.webchat_key.jwk()]}
        if method == "GET" and path == f"/{t}/v2.0/.well-known/openid-configuration":
            return 200, {
                "issuer": f"{here}/{t}/v2.0",
                "authorization_endpoint": f"{here}/{t}/oauth2/v2.0/authorize",
                "token_endpoint": f"{here}/{t}/oauth2/v2.0/token",
                "jwks_uri": f"{here}/{t}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "response_types_supported": ["code", "id_token", "code id_token", "token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        if method == "POST" and path == f"/{t}/oauth2/v2.0/token":
            return self._token(form)
        if method == "GET" and path.endswith("/.well-known/openid-configuration"):
            return 400, {"error": "invalid_tenant", "error_description": "AADSTS90002"}
        return 404, {"error": "not_found"}

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_id") != self.app_id or form.get("client_secret") != self.app_password:
            return 401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            }
        if form.get("scope") != SCOPE:
            return 400, {"error": "invalid_scope"}
        token = f"entra-{secrets.token_urlsafe(24)}"
        with self._lock:
            self.issued.append(token)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token}

    # ----- running -----

    def start(self) -> None:
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self._dir = tempfile.TemporaryDirectory()
        self.ca_file = str(Path(self._dir.name) / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        self._server = _TlsServer(("127.0.0.1", 0), _handler(self._answer), context)
        self.base = f"https://127.0.0.1:{self._server.server_address[1]}"
        # A short poll: stop() waits for the loop to notice (0.5 s by default, in every test).
        serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._dir is not None:
            self._dir.cleanup()

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make this process reach the stand-in as it would Microsoft, and nothing else.

        - ``requests`` (botbuilder's key fetch, MSAL) trusts the stand-in's CA;
        - MSAL signs in at a host it knows to be Microsoft's (login.microsoftonline.com, .us,
          the China cloud's) without first asking login.microsoftonline.com about it
          ("instance discovery"); the stand-in plays such a host, so MSAL is told it is one;
        - looking up any name but this machine's fails at once and is listed in
          ``off_machine`` (there is no internet here: a stray request would hang or fail)."""
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", self.ca_file)
        hosts = msal.authority.WELL_KNOWN_AUTHORITY_HOSTS | {"127.0.0.1"}
        monkeypatch.setattr(msal.authority, "WELL_KNOWN_AUTHORITY_HOSTS", hosts)
        real = socket.getaddrinfo

        def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else host
            if name not in LOOPBACK_NAMES:
                self.off_machine.append(str(name))
                raise socket.gaierror(socket.EAI_NONAME, f"{name}: not on this machine (test)")
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", loopback_only)

    def requests(self) -> list[str]:
        """What reached the stand-in, as "METHOD path"."""
        with self._lock:
            return [f"{s.method} {s.path}" for s in self.seen]

    def token_requests(self) -> list[dict[str, str]]:
        with self._lock:
            return [s.form for s in self.seen if s.path.endswith("/oauth2/v2.0/token")]


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext
    ):
        super().__init__(address, handler)
        self.tls = tls

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        # The handshake happens on the request's own thread, not in the accepting loop.
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


Answer = Callable[[str, str, dict[str, str]], tuple[int, dict[str, Any]]]


def _handler(answer: Answer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            path = self.path.split("?", 1)[0]
            status, data = answer(method, path, dict(parse_qsl(body)))
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802 (http.server's hook name)
            self._reply("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._reply("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # recorded in ``seen`` instead

    return Handler
