"""What a school installs: the wheel carries the bot and its data files, and no test doubles."""

from __future__ import annotations

import asyncio
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


async def test_wheel_ships_the_bot_without_test_doubles(tmp_path: Path) -> None:
    build = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
        *("--quiet", "--wheel-dir", str(tmp_path), str(ROOT)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(build.communicate(), timeout=300)
    assert build.returncode == 0, output.decode()[-2000:]
    [wheel] = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"chatbot", "adapters", "manifest"}, packages
    assert not [n for n in names if "fake" in n or "loopback" in n or "doubles" in n], names
    for needed in (
        "chatbot/router.py",
        "chatbot/policy/default_policy.toml",
        "chatbot/storage/migrations/env.py",
        "chatbot/storage/migrations/script.py.mako",
        "adapters/cli.py",
        "manifest/slack.yaml",
        "manifest/teams/manifest.json",
        "manifest/teams/color.png",
    ):
        assert needed in names, needed
    assert any(n.startswith("chatbot/storage/migrations/versions/0001") for n in names)
