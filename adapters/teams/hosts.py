"""Which Bot Connectors the bot may talk to.

Every Bot Connector request (a reply, a member look-up, a proactive send) goes to a
``serviceUrl`` that came from outside: from the activity being handled or from a stored
conversation reference. An attacker who chooses it receives whatever the bot sends there and
answers its member look-ups, so each such URL must name an allowed host:

- authenticated (``MicrosoftAppId`` set): Microsoft's service hosts, plus
  ``TEAMS_SERVICE_URL_HOSTS``;
- Bot Framework Emulator mode: loopback only (``localhost``, 127.0.0.0/8, ``::1``).

Plain ``http`` is allowed only to loopback, so tokens and concerns never cross a network in
clear. URLs that could reach another host than they seem to name (user info, backslashes,
non-ASCII or percent-encoded hosts, trailing dots, IPv4-mapped IPv6, bad ports) are refused.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

MICROSOFT_HOSTS = ("smba.trafficmanager.net", "*.botframework.com")
HOSTNAME = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")  # ASCII labels; no empty or trailing one
LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
LOOPBACK_V6 = ipaddress.ip_address("::1")
MAX_URL = 2000


class ServiceUrlRefused(Exception):
    """A Bot Connector request to a service URL that is not allowed."""

    def __init__(self, service_url: object):
        super().__init__(f"service URL not allowed: {describe(service_url)}")


def service_host(url: object) -> tuple[str, str] | None:
    """``(scheme, host)`` of a plain http(s) URL the bot could send to, or None if ``url`` is
    missing, not http(s), or written so that it might reach another host than it names."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        return None
    if not (url.isascii() and url.isprintable()) or any(c in url for c in "\\@ "):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.query or parts.fragment:
        return None
    host = parts.hostname or ""
    if parts.netloc.startswith("["):  # an IPv6 literal
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    elif not HOSTNAME.fullmatch(host):
        return None
    return parts.scheme, host


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``, written exactly so (not ``::ffff:127.0.0.1``)."""
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr in LOOPBACK_V4 if addr.version == 4 else addr == LOOPBACK_V6


def describe(url: object) -> str:
    """The host of ``url``, for a log line (never the path: it can carry ids)."""
    parsed = service_host(url)
    if parsed is not None:
        return parsed[1]
    return f"an invalid URL ({str(url)[:60]!r})" if url else "no URL"


class AllowedHosts:
    """The service URLs the bot may call: see the module docstring."""

    def __init__(self, patterns: tuple[str, ...] = (), loopback_only: bool = False):
        self.patterns = tuple(p.strip().lower() for p in patterns if p.strip())
        self.loopback_only = loopback_only

    @classmethod
    def production(cls, extra: tuple[str, ...] = ()) -> AllowedHosts:
        return cls((*MICROSOFT_HOSTS, *extra))

    @classmethod
    def emulator(cls) -> AllowedHosts:
        return cls(loopback_only=True)

    def allows(self, service_url: object) -> bool:
        parsed = service_host(service_url)
        if parsed is None:
            return False
        scheme, host = parsed
        loopback = is_loopback(host)
        if scheme == "http" and not loopback:
            return False
        if self.loopback_only:
            return loopback
        return any(_matches(p, host) for p in self.patterns)

    def check(self, service_url: object) -> str:
        """``service_url`` if allowed; else :class:`ServiceUrlRefused`."""
        if not self.allows(service_url):
            raise ServiceUrlRefused(service_url)
        return str(service_url)


def _matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])  # ".botframework.com": not "evilbotframework.com"
    return host == pattern
