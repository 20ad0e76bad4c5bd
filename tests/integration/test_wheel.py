"""What a school installs: the wheel carries the bot and its data files, and no test doubles."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_wheel_ships_the_bot_without_test_doubles(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        + ["--quiet", "--wheel-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, (build.stdout + build.stderr)[-2000:]
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
