"""`chatbot serve` starts with no credentials, answers /healthz, and --production refuses to
run unauthenticated endpoints; --teams-emulator runs Teams unauthenticated on loopback only."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from adapters.server import build_app, runtime_for
from chatbot.config import Settings
from chatbot.uow import Units


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "Microsoft"))}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/serve.db"
    env.update(extra or {})
    return env


def spawn_serve(
    tmp_path: Path, port: int, *args: str, extra: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`chatbot serve ARGS` in its own process (``extra``: more environment)."""
    return subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve", *args, "--port", str(port)],
        env=env_for(tmp_path, extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def healthy(port: int) -> dict[str, Any]:
    """Wait for the server on ``port`` to answer /healthz; its answer."""
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    assert r.status == 200
                    return dict(await r.json())
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"nothing answered /healthz on port {port}")


async def run_serve(
    tmp_path: Path, *args: str, extra: dict[str, str] | None = None
) -> tuple[dict[str, Any], int, str]:
    """`chatbot serve ARGS`: /healthz's answer, what POST /api/messages answers to a help
    message, and the log."""
    port = free_port()
    proc = spawn_serve(tmp_path, port, *args, extra=extra)
    try:
        body = await healthy(port)
        async with aiohttp.ClientSession() as http:
            help_message = {
                "type": "message",
                "text": "help",
                "serviceUrl": "https://smba.trafficmanager.net/emea/",
            }
            async with http.post(f"http://127.0.0.1:{port}/api/messages", json=help_message) as r:
                teams_status = r.status
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    return body, teams_status, out


async def test_serve_starts_without_credentials(tmp_path: Path) -> None:
    body, teams_status, out = await run_serve(tmp_path, "--host", "127.0.0.1")
    assert body == {"ok": True, "database": "sqlite", "messaging": []}
    assert "Slack" in out  # it says how to configure Slack
    assert (tmp_path / "serve.db").exists()
    # Teams stays off even on a loopback address unless Emulator mode is asked for.
    assert teams_status == 503
    assert "Teams: switched off (/api/messages answers 503): it has no MicrosoftAppId" in out


async def test_serve_teams_emulator_listens_on_loopback_only(tmp_path: Path) -> None:
    body, teams_status, out = await run_serve(tmp_path, "--teams-emulator")
    assert body["messaging"] == ["teams"]  # the outbox delivers through the Emulator
    assert "Teams: Bot Framework Emulator mode on 127.0.0.1" in out
    assert "listening on http://127.0.0.1:" in out
    assert teams_status == 403  # Microsoft's service URL is not the Emulator's (loopback)


async def test_serve_with_slack_and_teams_delivers_through_both(tmp_path: Path) -> None:
    """What tests/adapters/test_slack_and_teams.py builds with build_app, `chatbot serve`
    builds from the environment: a messenger for each platform, and Teams authenticated."""
    both = {
        "SLACK_BOT_TOKEN": "xoxb-serve",
        "SLACK_SIGNING_SECRET": "serve-signing-secret-0123456789",
        "SLACK_DSL_CHANNEL_ID": "C0DSL",
        "SLACK_SLT_CHANNEL_ID": "C0SLT",
        "MicrosoftAppId": "11111111-2222-3333-4444-555555555555",
        "MicrosoftAppPassword": "secret",
        "MicrosoftAppTenantId": "66666666-7777-8888-9999-000000000000",
        "TEAMS_DSL_CHANNEL_ID": "19:dsl@thread.tacv2",
        "TEAMS_SLT_CHANNEL_ID": "19:slt@thread.tacv2",
    }
    body, teams_status, out = await run_serve(tmp_path, "--host", "127.0.0.1", extra=both)
    assert body["messaging"] == ["slack", "teams"]  # the order direct messages are tried in
    assert "messages via: slack, teams" in out
    assert teams_status == 401  # a real app id: no token, no entry (and no Emulator mode)
    assert "Teams: /api/messages authenticated for app 11111111" in out


def modes(folder: Path, pattern: str) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.glob(pattern)}


async def test_serve_keeps_the_database_files_private(tmp_path: Path) -> None:
    port = free_port()
    proc = spawn_serve(tmp_path, port, "--host", "127.0.0.1")
    try:
        await healthy(port)
        # While the server runs, SQLite's write-ahead log and shared-memory files exist too.
        files = modes(tmp_path, "serve.db*")
        assert set(files) == {"serve.db", "serve.db-wal", "serve.db-shm"}, files
        assert set(files.values()) == {0o600}, files
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_production_refuses_without_credentials(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "serve", "--production", "--port", "0"],
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert "Refusing to start without authentication" in r.stderr


def test_production_and_teams_emulator_are_exclusive(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "serve", "--production", "--teams-emulator"],
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert "--teams-emulator: not allowed with argument --production" in r.stderr


def test_bad_setting_stops_start_up_with_its_name(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    env["CHATBOT_OUTBOX_INTERVAL_SECONDS"] = "soon"
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert "Cannot start: CHATBOT_OUTBOX_INTERVAL_SECONDS='soon'" in r.stderr
    assert "Traceback" not in r.stderr


async def test_production_switches_off_unauthenticated_teams(core: Units) -> None:
    runtime = runtime_for(core, Settings(production=True))
    async with TestClient(TestServer(build_app(runtime, with_scheduler=False))) as client:
        r = await client.post("/api/messages", json={"type": "message", "text": "help"})
        assert r.status == 503
        assert "not configured" in (await r.json())["error"]


def import_terms(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    ics = tmp_path / "terms.ics"
    ics.write_bytes(
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Autumn term\r\n"
        b"DTSTART;VALUE=DATE:20260903\r\nDTEND;VALUE=DATE:20261219\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "policy", "terms", "import", str(ics)],
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_serve_warns_loudly_until_term_dates_are_set(tmp_path: Path) -> None:
    """Without term dates calls can be booked in the holidays, so start-up says so."""
    _, _, out = await run_serve(tmp_path, "--host", "127.0.0.1")
    assert "WARNING chatbot.terms: NO TERM DATES ARE SET" in out, out
    r = import_terms(tmp_path)
    assert r.returncode == 0 and "1 term(s)" in r.stdout, r.stderr
    _, _, out = await run_serve(tmp_path, "--host", "127.0.0.1")
    assert "NO TERM DATES" not in out


async def test_serve_log_is_not_flooded_by_the_scheduler(tmp_path: Path) -> None:
    """The sweeps run every few seconds all day; the log an IT technician reads says what
    happened, not that each sweep ran (APScheduler writes two lines at INFO for every run)."""
    port = free_port()
    extra = {"CHATBOT_OUTBOX_INTERVAL_SECONDS": "0.2"}
    proc = spawn_serve(tmp_path, port, "--host", "127.0.0.1", extra=extra)
    try:
        await healthy(port)
        await asyncio.sleep(1.5)  # the outbox sweep runs about seven times
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "listening on http://127.0.0.1:" in out  # the log still says what matters
    assert "INFO apscheduler" not in out, out[-2000:]
