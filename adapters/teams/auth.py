"""Bot Framework authentication with connector clients reused per service URL.

Stock ``CloudAdapter`` builds two msrest clients for every incoming activity (a
``ConnectorClient`` and a ``UserTokenClient``), and each one builds a retry policy by scanning
~500 status codes for each of 999 codes. That dominates the cost of a turn. This wrapper keeps
every check the framework makes on the *incoming* request (JWT validation, issuer, audience,
service URL claim, channel endorsement) and only caches the *outgoing* clients, keyed by
(app id, service URL, audience), so credentials and their token caches are shared too.
It is also where botbuilder's own Bot Connector clients are made, so it refuses to make one
for a service URL that is not allowed (see :mod:`adapters.teams.hosts`).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, CallerIdConstants
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from botframework.connector.skills import BotFrameworkClient
from urllib3.util.retry import Retry

from adapters.teams.hosts import AllowedHosts
from chatbot.config import Settings

log = logging.getLogger("chatbot.teams.auth")


def bot_framework_configuration(settings: Settings) -> SimpleNamespace:
    """The configuration object botbuilder reads (the samples' ``DefaultConfig``).

    With an app id it names Microsoft's cloud in full: where the keys Teams signs with are
    published, who issues Teams' tokens (the same address is the audience of the bot's own
    token) and where the bot signs in. They are the public cloud's unless the school set
    TEAMS_OPENID_METADATA_URL, TEAMS_TOKEN_ISSUER or TEAMS_LOGIN_URL (Microsoft's government and
    China clouds use their own). Given every key, botbuilder checks tokens with one class, its
    "parameterized" one, in whichever cloud the bot runs.
    """
    if not settings.teams_app_id:
        # Emulator mode (`--teams-emulator`): no app id means authentication is disabled.
        return SimpleNamespace(APP_ID="", APP_PASSWORD="", APP_TYPE="MultiTenant", APP_TENANTID="")
    # The authority MSAL signs in at. botbuilder adds the tenant itself for Microsoft's public and
    # US government login hosts and takes any other (China's) as given, so it is added here.
    tenant = settings.teams_tenant_id or AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT
    return SimpleNamespace(
        APP_ID=settings.teams_app_id,
        APP_PASSWORD=settings.teams_app_password,
        APP_TYPE=settings.teams_app_type or "SingleTenant",
        APP_TENANTID=settings.teams_tenant_id,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.teams_openid_metadata_url,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=settings.teams_token_issuer,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=settings.teams_token_issuer,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=f"{settings.teams_login_url}/{tenant}",
        # Botbuilder's public-cloud values for what this bot never relies on: tokens from the
        # Emulator, the user sign-in service (OAuth cards) and the caller id stamped on activities.
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=(
            AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL
        ),
        OAUTH_URL=AuthenticationConstants.OAUTH_URL,
        CALLER_ID=CallerIdConstants.public_azure_channel,
    )


class _CachingConnectorFactory(ConnectorFactory):
    def __init__(
        self,
        owner: CachingBotFrameworkAuthentication,
        inner: ConnectorFactory,
        app_id: str,
        proactive: bool = False,
    ):
        self._owner = owner
        self._inner = inner
        self._app_id = app_id
        self._proactive = proactive

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        self._owner.hosts.check(service_url)
        key = (self._app_id, service_url, audience or "", self._proactive)
        client = self._owner.connectors.get(key)
        if client is None:
            client = await self._inner.create(service_url, audience)
            if self._proactive:
                # The outbox owns retries for proactive sends (it honours Retry-After and backs
                # off across restarts), so msrest must not retry inline and block the sweep.
                client.config.retry_policy.policy = Retry(
                    total=0, connect=0, read=0, redirect=0, status_forcelist=()
                )
            self._owner.connectors[key] = client
        return client


class CachingBotFrameworkAuthentication(BotFrameworkAuthentication):
    """Delegates authentication to botbuilder; caches the outgoing clients it creates."""

    def __init__(
        self,
        settings: Settings,
        hosts: AllowedHosts,
        inner: BotFrameworkAuthentication | None = None,
    ):
        self.hosts = hosts
        self.inner = inner or ConfigurationBotFrameworkAuthentication(
            bot_framework_configuration(settings)
        )
        self.connectors: dict[tuple[str, str, str, bool], ConnectorClient] = {}
        self._token_clients: dict[str, UserTokenClient] = {}

    @staticmethod
    def _app_id(claims: ClaimsIdentity | None) -> str:
        if claims is None:
            return ""
        c: dict[str, Any] = claims.claims or {}
        return str(c.get("aud") or c.get("appid") or "")

    async def authenticate_request(
        self, activity: Activity, auth_header: str | None
    ) -> AuthenticateRequestResult:
        result = await self.inner.authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _CachingConnectorFactory(
                self, result.connector_factory, self._app_id(result.claims_identity)
            )
        return result

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        return await self.inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _CachingConnectorFactory(
            self,
            self.inner.create_connector_factory(claims_identity),
            self._app_id(claims_identity),
        )

    def proactive_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _CachingConnectorFactory(
            self,
            self.inner.create_connector_factory(claims_identity),
            self._app_id(claims_identity),
            proactive=True,
        )

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        key = self._app_id(claims_identity)
        client = self._token_clients.get(key)
        if client is None:
            client = await self.inner.create_user_token_client(claims_identity)
            self._token_clients[key] = client
        return client

    def create_bot_framework_client(self) -> BotFrameworkClient:
        return self.inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self.inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self.inner.authenticate_channel_request(auth_header)
