"""Settings from the environment, with the names each ecosystem already uses."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from chatbot.storage.db import DEFAULT_URL, libpq_options, normalise_url


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


ZOOM_API_URL = "https://api.zoom.us/v2"
ZOOM_OAUTH_URL = "https://zoom.us/oauth/token"


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


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
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
    # Unauthenticated Bot Framework Emulator mode, asked for with `chatbot serve
    # --teams-emulator`; only honoured without MicrosoftAppId and on a loopback listen_host.
    teams_emulator: bool = False
    # Production mode: no unauthenticated endpoints (see `chatbot serve --production`).
    production: bool = False
    # The address `chatbot serve` listens on (Teams decides from it whether Emulator mode may run).
    listen_host: str = "0.0.0.0"
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
        return cls(
            database_url=database_url,
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
