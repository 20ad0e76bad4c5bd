"""``chatbot manifest teams --app-id <GUID> --out app.zip``: the Teams app package to upload.

Reads ``manifest/teams/manifest.json`` and its two icons, puts the bot's Microsoft App ID into
the manifest's ``id`` and ``bots[0].botId``, and writes a zip with the three files at its root.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parents[2] / "manifest" / "teams"
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
ICONS = ("color.png", "outline.png")


def build_manifest(app_id: str, source: Path = SOURCE) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((source / "manifest.json").read_text("utf-8"))
    manifest["id"] = app_id
    for bot in manifest.get("bots", []):
        bot["botId"] = app_id
    return manifest


def write_package(app_id: str, out: Path, source: Path = SOURCE) -> Path:
    manifest = build_manifest(app_id, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        for icon in ICONS:
            z.write(source / icon, icon)
    return out


def main(args: Any) -> int:
    app_id = str(getattr(args, "app_id", "") or "").strip()
    if not GUID.match(app_id):
        print(
            f"error: --app-id must be the bot's Microsoft App ID, a GUID such as "
            f"00000000-0000-0000-0000-000000000000 (got {app_id[:60]!r}). Find it in Azure: "
            "Azure Bot resource > Configuration > Microsoft App ID.",
            file=sys.stderr,
        )
        return 2
    out = Path(str(getattr(args, "out", "") or "app.zip"))
    try:
        write_package(app_id.lower(), out)
    except OSError as exc:
        print(f"error: could not write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"Wrote {out}: upload it in Teams (Apps > Manage your apps > Upload an app).")
    return 0
