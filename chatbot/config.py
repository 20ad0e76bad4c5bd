"""Settings from the environment, with the names each ecosystem already uses."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chatbot.storage.db import DEFAULT_URL, POOL_SIZE, libpq_options, normalise_url

GRAPH_API_URL = "https://graph.microsoft.com/v1.0"
GRAPH_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"


class SettingsError(ValueError):
    """A setting in the environment that cannot be used; the message names it."""


def seconds(name: str, raw: str, default: float) -> float:
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < 86400:
        raise SettingsError(f"{name}={raw!r}: give a number of seconds, e.g. {default:g}")
    return value


def whole_number(name: str, raw: str, default: int, most: int) -> int:
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:  # also "²", which str.isdigit() would have let through
        value = 0
    if not 0 < value <= most:
        raise SettingsError(f"{name}={raw!r}: give a whole number from 1 to {most}, e.g. {default}")
    return value


ZOOM_API_URL = "https://api.zoom.us/v2"
ZOOM_OAUTH_URL = "https://zoom.us/oauth/token"

# Microsoft's public cloud, where Teams signs its requests to the bot and the bot signs in to
# answer (botbuilder's own defaults). Microsoft's government and China clouds use other ones.
TEAMS_OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
TEAMS_LOGIN_URL = "https://login.microsoftonline.com"
TEAMS_TOKEN_ISSUER = "https://api.botframework.com"


def service_url(name: str, raw: str, default: str) -> str:
    """A URL the bot sends credentials to: https, or plain http to this machine only (tests,
    a local proxy)."""
    if not raw:
        return default
    parts = urlsplit(raw)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not host or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise SettingsError(f"{name}={raw!r}: give an https:// URL, e.g. {default}")
    return raw.rstrip("/")


def https_url(name: str, raw: str, default: str) -> str:
    """A URL that must be https even on this machine (Microsoft's sign-in library, MSAL,
    refuses anything else)."""
    url = service_url(name, raw, default)
    if urlsplit(url).scheme != "https":
        raise SettingsError(f"{name}={raw!r}: give an https:// URL, e.g. {default}")
    return url


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    database_pool_size: int = POOL_SIZE  # PostgreSQL connections each server process keeps
    policy_path: str | None = None
    # Slack
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""  # set => Socket Mode
    slack_api_url: str = ""  # for tests / proxies; empty => Slack's own
    slack_dsl_channel: str = ""
    slack_slt_channel: str = ""
    # Teams
    teams_app_id: str = ""
    teams_app_password: str = ""
    teams_app_type: str = "SingleTenant"
    teams_tenant_id: str = ""
    teams_dsl_channel: str = ""
    teams_slt_channel: str = ""
    teams_service_url_hosts: tuple[str, ...] = field(default_factory=tuple)
    # Microsoft's sign-in for the bot: the public cloud's unless set (see adapters/teams/auth.py).
    teams_openid_metadata_url: str = TEAMS_OPENID_METADATA_URL
    teams_login_url: str = TEAMS_LOGIN_URL
    teams_token_issuer: str = TEAMS_TOKEN_ISSUER
    # Unauthenticated Bot Framework Emulator mode, asked for with `chatbot serve
    # --teams-emulator`; only honoured without MicrosoftAppId and on a loopback listen_host.
    teams_emulator: bool = False
    # Production mode: no unauthenticated endpoints (see `chatbot serve --production`).
    production: bool = False
    # The address `chatbot serve` listens on (Teams decides from it whether Emulator mode may run).
    listen_host: str = "0.0.0.0"
    # Email (see adapters/email): SMTP or Microsoft Graph, or a folder of .eml files
    # smtp://[user:password@]host[:port] or smtps://... (kept out of repr: it holds a password)
    smtp_url: str = field(default="", repr=False)
    smtp_ca_file: str = ""  # a private CA for the SMTP server's certificate, if it has one
    mail_from: str = ""  # the school office address the bot's email comes from
    graph_mailbox: str = ""  # the Microsoft 365 mailbox the bot sends from (and reads)
    graph_client_id: str = ""  # default: MicrosoftAppId
    graph_client_secret: str = field(default="", repr=False)  # default: MicrosoftAppPassword
    graph_tenant_id: str = ""  # default: MicrosoftAppTenantId
    graph_api_url: str = GRAPH_API_URL
    graph_token_url: str = ""  # default: Microsoft's, for the tenant
    graph_poll_minutes: float = 0.0  # read replies from the mailbox this often; 0 = never
    mail_folder: str = ""  # write .eml files here instead of sending (the console demo)
    slt_email: tuple[str, ...] = field(default_factory=tuple)
    mail_interval_seconds: float = 10.0
    # Zoom (Server-to-Server OAuth app; see adapters/zoom)
    zoom_account_id: str = ""
    zoom_client_id: str = ""
    zoom_client_secret: str = ""
    zoom_webhook_secret: str = ""
    zoom_api_url: str = ZOOM_API_URL  # the REST API base, /v2 included
    zoom_oauth_url: str = ZOOM_OAUTH_URL  # the token endpoint
    # Sweeps
    outbox_interval_seconds: float = 2.0
    sweep_interval_seconds: float = 30.0

    @property
    def mail_transport(self) -> str | None:
        """Which way email goes: "smtp", "graph", "folder", or None (email is off)."""
        if self.smtp_url:
            return "smtp"
        if self.graph_mailbox:
            return "graph"
        return "folder" if self.mail_folder else None

    @property
    def graph_token_endpoint(self) -> str:
        tenant = self.graph_tenant_id or self.teams_tenant_id
        return self.graph_token_url or GRAPH_TOKEN_URL.format(tenant=tenant)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    @property
    def teams_configured(self) -> bool:
        return bool(self.teams_app_id)

    @property
    def zoom_configured(self) -> bool:
        """The bot may create meetings (webhooks need ZOOM_WEBHOOK_SECRET besides)."""
        return bool(self.zoom_account_id and self.zoom_client_id and self.zoom_client_secret)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env

        def get(name: str, default: str = "") -> str:
            return e.get(name, default).strip()

        hosts = tuple(h.strip() for h in get("TEAMS_SERVICE_URL_HOSTS").split(",") if h.strip())
        database_url = normalise_url(get("DATABASE_URL") or DEFAULT_URL)
        try:
            libpq_options(database_url)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        mail = _mail_settings(get)
        return cls(
            **mail,
            database_url=database_url,
            database_pool_size=whole_number(
                "DATABASE_POOL_SIZE", get("DATABASE_POOL_SIZE"), POOL_SIZE, most=1000
            ),
            policy_path=get("CHATBOT_POLICY") or None,
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_app_token=get("SLACK_APP_TOKEN"),
            slack_api_url=get("SLACK_API_URL"),
            slack_dsl_channel=get("SLACK_DSL_CHANNEL_ID"),
            slack_slt_channel=get("SLACK_SLT_CHANNEL_ID"),
            teams_app_id=get("MicrosoftAppId"),
            teams_app_password=get("MicrosoftAppPassword"),
            teams_app_type=get("MicrosoftAppType") or "SingleTenant",
            teams_tenant_id=get("MicrosoftAppTenantId"),
            teams_dsl_channel=get("TEAMS_DSL_CHANNEL_ID"),
            teams_slt_channel=get("TEAMS_SLT_CHANNEL_ID"),
            teams_service_url_hosts=hosts,
            teams_openid_metadata_url=service_url(
                "TEAMS_OPENID_METADATA_URL",
                get("TEAMS_OPENID_METADATA_URL"),
                TEAMS_OPENID_METADATA_URL,
            ),
            teams_login_url=https_url("TEAMS_LOGIN_URL", get("TEAMS_LOGIN_URL"), TEAMS_LOGIN_URL),
            teams_token_issuer=service_url(
                "TEAMS_TOKEN_ISSUER", get("TEAMS_TOKEN_ISSUER"), TEAMS_TOKEN_ISSUER
            ),
            zoom_account_id=get("ZOOM_ACCOUNT_ID"),
            zoom_client_id=get("ZOOM_CLIENT_ID"),
            zoom_client_secret=get("ZOOM_CLIENT_SECRET"),
            zoom_webhook_secret=get("ZOOM_WEBHOOK_SECRET"),
            zoom_api_url=service_url("ZOOM_API_URL", get("ZOOM_API_URL"), ZOOM_API_URL),
            zoom_oauth_url=service_url("ZOOM_OAUTH_URL", get("ZOOM_OAUTH_URL"), ZOOM_OAUTH_URL),
            outbox_interval_seconds=seconds(
                "CHATBOT_OUTBOX_INTERVAL_SECONDS",
                get("CHATBOT_OUTBOX_INTERVAL_SECONDS"),
                cls.outbox_interval_seconds,
            ),
        )


def _address(name: str, raw: str) -> str:
    from chatbot.mail.compose import BadAddress, checked_address

    try:
        return checked_address(raw)
    except BadAddress as exc:
        raise SettingsError(f"{name}: {raw[:80]!r} is not an email address ({exc})") from None


def _mail_settings(get: Callable[[str], str]) -> dict[str, Any]:
    """The email settings, checked: a mistake stops start-up with the setting's name."""
    smtp_url, mailbox, folder = get("SMTP_URL"), get("GRAPH_MAILBOX"), get("MAIL_FOLDER")
    if smtp_url and mailbox:
        raise SettingsError("set SMTP_URL or GRAPH_MAILBOX, not both: the bot sends one way")
    if smtp_url:
        parts = urlsplit(smtp_url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SettingsError(
                "SMTP_URL: give smtp://host:port or smtps://host:port "
                "(with user:password@ before the host if the server needs a login)"
            )
        try:
            _ = parts.port
        except ValueError:
            raise SettingsError("SMTP_URL: the port is not a number") from None
    mail_from = get("MAIL_FROM")
    sending = bool(smtp_url or mailbox or folder)
    if sending and not mail_from:
        raise SettingsError("MAIL_FROM: set the school office address the bot's email comes from")
    slt = tuple(_address("SLT_EMAIL", a) for a in re.split(r"[,;]", get("SLT_EMAIL")) if a.strip())
    if slt and not sending:
        raise SettingsError("SLT_EMAIL needs SMTP_URL or GRAPH_MAILBOX (and MAIL_FROM) set")
    poll = get("GRAPH_POLL_MINUTES")
    return {
        "smtp_url": smtp_url,
        "smtp_ca_file": get("SMTP_CA_FILE"),
        "mail_from": _address("MAIL_FROM", mail_from) if mail_from else "",
        "graph_mailbox": _address("GRAPH_MAILBOX", mailbox) if mailbox else "",
        "graph_client_id": get("GRAPH_CLIENT_ID") or get("MicrosoftAppId"),
        "graph_client_secret": get("GRAPH_CLIENT_SECRET") or get("MicrosoftAppPassword"),
        "graph_tenant_id": get("GRAPH_TENANT_ID") or get("MicrosoftAppTenantId"),
        "graph_api_url": (get("GRAPH_API_URL") or GRAPH_API_URL).rstrip("/"),
        "graph_token_url": get("GRAPH_TOKEN_URL"),
        "graph_poll_minutes": seconds("GRAPH_POLL_MINUTES", poll, 0.0) if poll else 0.0,
        "mail_folder": folder,
        "slt_email": slt,
    }
