"""`chatbot serve` starts with no credentials, answers /healthz, and --production refuses to
run unauthenticated endpoints."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from adapters.runtime import runtime_for
from adapters.server import build_app
from chatbot.config import Settings
from chatbot.core import Core


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "Microsoft"))}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/serve.db"
    return env


async def test_serve_starts_without_credentials(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - the server must run in its own process
        [sys.executable, "-m", "adapters.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = None
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                        body = await r.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        assert body == {"ok": True, "database": "sqlite", "messaging": []}
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "Slack" in out  # it says how to configure Slack
    assert (tmp_path / "serve.db").exists()


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


async def test_production_switches_off_unauthenticated_teams(core: Core) -> None:
    runtime = runtime_for(core, Settings(production=True))
    async with TestClient(TestServer(build_app(runtime, with_scheduler=False))) as client:
        r = await client.post("/api/messages", json={"type": "message", "text": "help"})
        assert r.status == 503
        assert "not configured" in (await r.json())["error"]
