"""Settings read from the environment: new values are checked, and a bad one is named."""

from __future__ import annotations

import sqlite3

import pytest

from chatbot.config import Settings, SettingsError
from chatbot.storage.db import DatabaseUnusable, check_sqlite, libpq_options

PG = "postgresql+asyncpg://bot:pw@db.school.internal:5432/safevideo"


def test_outbox_interval() -> None:
    assert Settings.from_env({}).outbox_interval_seconds == 2.0
    env = {"CHATBOT_OUTBOX_INTERVAL_SECONDS": "0.5"}
    assert Settings.from_env(env).outbox_interval_seconds == 0.5
    for bad in ("soon", "0", "-1", "nan", "1e9"):
        env = {"CHATBOT_OUTBOX_INTERVAL_SECONDS": bad}
        with pytest.raises(SettingsError, match=f"CHATBOT_OUTBOX_INTERVAL_SECONDS='{bad}'"):
            Settings.from_env(env)


def test_database_pool_size() -> None:
    assert Settings.from_env({}).database_pool_size == 15
    assert Settings.from_env({"DATABASE_POOL_SIZE": "40"}).database_pool_size == 40
    for bad in ("many", "0", "-3", "2.5", "5000", "²"):
        with pytest.raises(SettingsError, match=f"DATABASE_POOL_SIZE='{bad}': give a whole"):
            Settings.from_env({"DATABASE_POOL_SIZE": bad})


def test_database_url_options_become_server_settings() -> None:
    assert libpq_options(PG) == (PG, {})
    assert libpq_options(PG + "?options=-csearch_path%3Dbot") == (PG, {"search_path": "bot"})
    url, settings = libpq_options(
        PG + "?ssl=require&options=-c%20search_path%3Dbot%20--statement-timeout%3D5000"
    )
    assert url == PG + "?ssl=require"
    assert settings == {"search_path": "bot", "statement_timeout": "5000"}


@pytest.mark.parametrize("options", ["search_path%3Dbot", "-c", "-c%20search_path"])
def test_bad_database_url_options_are_named(options: str) -> None:
    env = {"DATABASE_URL": f"{PG}?options={options}"}
    with pytest.raises(SettingsError, match="DATABASE_URL options: .* is not -c name=value"):
        Settings.from_env(env)


def test_sqlite_older_than_3_35_is_refused_by_name() -> None:
    with pytest.raises(DatabaseUnusable, match=r"3\.34\.1.*3\.35"):
        check_sqlite((3, 34, 1))
    check_sqlite((3, 35, 0))  # the first version with RETURNING
    check_sqlite(sqlite3.sqlite_version_info)  # this machine's


GCC_HIGH = {
    "TEAMS_OPENID_METADATA_URL": "https://login.botframework.azure.us/v1/.well-known/openidconfiguration",
    "TEAMS_LOGIN_URL": "https://login.microsoftonline.us/",
    "TEAMS_TOKEN_ISSUER": "https://api.botframework.us",
}


def test_microsoft_cloud_for_teams() -> None:
    """Microsoft's public cloud unless set (for a government or China cloud); https only."""
    public = Settings.from_env({})
    assert (
        public.teams_openid_metadata_url
        == "https://login.botframework.com/v1/.well-known/openidconfiguration"
    )
    assert public.teams_login_url == "https://login.microsoftonline.com"
    assert public.teams_token_issuer == "https://api.botframework.com"
    gov = Settings.from_env(GCC_HIGH)
    assert gov.teams_openid_metadata_url == GCC_HIGH["TEAMS_OPENID_METADATA_URL"]
    assert gov.teams_login_url == "https://login.microsoftonline.us"
    assert gov.teams_token_issuer == "https://api.botframework.us"
    for name, bad in (
        ("TEAMS_OPENID_METADATA_URL", "http://login.botframework.azure.us/v1/x"),
        ("TEAMS_TOKEN_ISSUER", "api.botframework.us"),
        ("TEAMS_LOGIN_URL", "http://127.0.0.1:8443"),  # MSAL signs in over https only
    ):
        with pytest.raises(SettingsError, match=f"{name}=.*https://"):
            Settings.from_env({name: bad})
