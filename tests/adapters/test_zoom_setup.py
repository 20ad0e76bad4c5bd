"""Setting Zoom up: with no Zoom settings the bot works as before and says so; the settings
are checked; `chatbot zoom check` tells the IT technician what is missing, and with --all
audits every member of staff's Zoom account; the console demo shows the flow with Zoom off
and says what would happen with it on."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.console.app import Console
from adapters.server import build_app, runtime_for
from chatbot.config import Settings, SettingsError
from chatbot.uow import Units
from tests.adapters.test_console import scripted
from tests.adapters.test_serve import run_serve
from tests.adapters.zoom_support import staff_users
from tests.conftest import STAFF_CSV
from tests.doubles.zoom import SCOPES, FakeZoom

# ----------------------------------------------------------------- Zoom off


async def test_serve_without_zoom_starts_and_says_so(tmp_path: Path) -> None:
    body, _, out = await run_serve(tmp_path, "--host", "127.0.0.1")
    assert body["ok"] is True
    assert "Zoom is not connected" in out and "chatbot zoom check" in out


async def test_events_endpoint_answers_503_without_zoom(school: Units) -> None:
    runtime = runtime_for(school, Settings())
    async with TestClient(TestServer(build_app(runtime, with_scheduler=False))) as client:
        r = await client.post("/zoom/events", data=b"{}")
        assert r.status == 503
    assert "zoom" not in runtime.jobs() and not school.meetings


async def test_half_configured_zoom_names_what_is_missing(
    school: Units, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    runtime = runtime_for(school, Settings(zoom_account_id="acc", zoom_client_id="id"))
    build_app(runtime, with_scheduler=False)
    assert "missing ZOOM_CLIENT_SECRET, ZOOM_WEBHOOK_SECRET" in caplog.text
    assert not school.meetings


async def test_zoom_without_webhook_secret_makes_meetings_but_refuses_events(
    school: Units, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(zoom_account_id="a", zoom_client_id="b", zoom_client_secret="c")
    runtime = runtime_for(school, settings)
    async with TestClient(TestServer(build_app(runtime, with_scheduler=False))) as client:
        r = await client.post("/zoom/events", data=b"{}")
        assert r.status == 503
    assert "zoom" in runtime.jobs() and school.meetings
    assert "ZOOM_WEBHOOK_SECRET is not set" in caplog.text


def test_zoom_urls_must_be_https_or_loopback() -> None:
    env = {"ZOOM_API_URL": "http://zoom.example/v2"}
    with pytest.raises(SettingsError, match="ZOOM_API_URL"):
        Settings.from_env(env)
    with pytest.raises(SettingsError, match="ZOOM_OAUTH_URL"):
        Settings.from_env({"ZOOM_OAUTH_URL": "ftp://zoom.us/oauth/token"})
    ok = Settings.from_env({"ZOOM_API_URL": "http://127.0.0.1:9/v2/"})
    assert ok.zoom_api_url == "http://127.0.0.1:9/v2"
    assert Settings.from_env({}).zoom_oauth_url == "https://zoom.us/oauth/token"
    assert Settings.from_env({}).zoom_api_url == "https://api.zoom.us/v2"


async def test_console_flow_with_zoom_off_says_what_would_happen(school: Units) -> None:
    out: list[str] = []
    read, _ = scripted(
        [
            "/book-call",
            "Sam",
            "1",
            "2026-12-01",
            "10:00",
            "",
            "colleague@school.test",
            "",
            "Sam reads to us",
            "/as colleague@school.test",
            "1",  # Accept
            "/quit",
        ]
    )
    console = Console(runtime_for(school), "teacher@school.test", read, out.append)
    assert await console.run() == 0
    text = "".join(out)
    assert "posted in the SLT channel" in text
    assert "Zoom is not connected to the bot" in text
    assert "With Zoom connected, the bot would create it" in text


def test_demo_intro_says_what_zoom_would_add(core: Units) -> None:
    from adapters.console.demo import intro

    assert "Zoom is not connected in the demo" in intro(core)
    assert "link and passcode" in intro(core)


# ----------------------------------------------------------------- chatbot zoom check


async def chatbot(tmp_path: Path, *args: str, **env_extra: str) -> tuple[int, str, str]:
    """`chatbot ARGS` as its own process, without blocking the loopback Zoom in this one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_", "CHATBOT_"))}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/zoom-cli.db"
    env.update(env_extra)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def zoom_env(zoom: FakeZoom) -> dict[str, str]:
    return {
        "ZOOM_ACCOUNT_ID": "acc-school",
        "ZOOM_CLIENT_ID": "zoom-client-id",
        "ZOOM_CLIENT_SECRET": "zoom-client-secret-9f8e7d",
        "ZOOM_WEBHOOK_SECRET": "zoom-webhook-secret-1a2b3c",
        "ZOOM_API_URL": zoom.api_url,
        "ZOOM_OAUTH_URL": zoom.oauth_url,
    }


async def test_zoom_check_says_what_is_missing(tmp_path: Path) -> None:
    code, out, _ = await chatbot(tmp_path, "zoom", "check", ZOOM_ACCOUNT_ID="acc")
    assert code == 1
    assert "ZOOM_ACCOUNT_ID" not in out  # it is set
    assert "missing  ZOOM_CLIENT_ID" in out and "Client ID" in out
    assert "missing  ZOOM_WEBHOOK_SECRET" in out and "Secret Token" in out
    assert "Zoom is not connected" in out


async def test_zoom_check_with_wrong_secret(tmp_path: Path) -> None:
    zoom = FakeZoom()
    await zoom.start()
    try:
        env = {**zoom_env(zoom), "ZOOM_CLIENT_SECRET": "wrong"}
        code, out, _ = await chatbot(tmp_path, "zoom", "check", **env)
    finally:
        await zoom.stop()
    assert code == 1 and "Zoom refused the credentials" in out
    assert "wrong" not in out  # secrets are never printed


async def test_zoom_check_reports_missing_scopes(tmp_path: Path) -> None:
    zoom = FakeZoom(scopes=SCOPES.replace("meeting:read:list_meetings:admin", ""))
    await zoom.start()
    try:
        code, out, _ = await chatbot(tmp_path, "zoom", "check", **zoom_env(zoom))
    finally:
        await zoom.stop()
    assert code == 1
    assert "ok       credentials accepted" in out
    assert "missing  scope to find a meeting after a restart" in out
    assert "meeting:read:list_meetings:admin" in out
    assert "ok       scope to create meetings" in out


async def test_zoom_check_all_audits_every_member_of_staff(tmp_path: Path) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text(STAFF_CSV)
    code, _, err = await chatbot(tmp_path, "import", "staff", str(staff))
    assert code == 0, err
    users = staff_users()
    users["other@school.test"].update(who_can_share_screen="all")
    users["head@school.test"].update(allow_participants_to_rename=True)
    del users["deputy@school.test"]
    zoom = FakeZoom(users=users)
    await zoom.start()
    try:
        code, out, _ = await chatbot(tmp_path, "zoom", "check", "--all", **zoom_env(zoom))
    finally:
        await zoom.stop()
    assert code == 1
    rows = {line.split()[0]: line for line in out.splitlines() if "@school.test" in line}
    assert len(rows) == 7
    assert "participants can" in rows["other@school.test"]
    assert "Who can share?: Host Only" in rows["other@school.test"]
    assert "allowed" in rows["head@school.test"]
    assert "not a Zoom user" in rows["deputy@school.test"]
    assert rows["teacher@school.test"].rstrip().endswith("OK")
    assert "7 member(s) of staff checked." in out
