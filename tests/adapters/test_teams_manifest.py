"""The Teams app package: manifest.json against the official 1.29 schema, the icons' sizes,
and ``chatbot manifest teams`` building the zip."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from adapters.teams import package

ROOT = Path(__file__).parents[2]
SCHEMAS = ROOT.parent / "shared" / "schemas"
MANIFEST = ROOT / "manifest" / "teams"
APP_ID = "11111111-2222-4333-8444-555555555555"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def validate(doc: dict) -> list[str]:
    path = SCHEMAS / "teams-manifest-1.29.schema.json"
    if not path.exists():
        pytest.skip(f"official schemas not found at {SCHEMAS} (bare clone)")
    import jsonschema

    schema = json.loads(path.read_text())
    # No check_schema here: the Teams schema has ECMAScript \p{L} patterns Python can't compile.
    v = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in v.iter_errors(doc)]


def test_manifest_is_valid() -> None:
    doc = json.loads((MANIFEST / "manifest.json").read_text())
    assert validate(doc) == []
    assert doc["manifestVersion"] == "1.29"
    assert "v1.29/MicrosoftTeams.schema.json" in doc["$schema"]
    [bot] = doc["bots"]
    assert set(bot["scopes"]) == {"personal", "team"}
    personal = next(c for c in bot["commandLists"] if c["scopes"] == ["personal"])
    assert [c["title"] for c in personal["commands"]] == [
        "book-call",
        "my-calls",
        "calls",
        "consent",
        "concern",
        "concerns",
        "help",
    ]
    assert package.GUID.match(doc["id"]) and bot["botId"] == doc["id"]


def test_icons() -> None:
    assert png_size((MANIFEST / "color.png").read_bytes()) == (192, 192)
    outline = (MANIFEST / "outline.png").read_bytes()
    assert png_size(outline) == (32, 32)
    assert outline[25] == 6  # RGBA: transparent background


def test_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "app.zip"
    assert package.main(SimpleNamespace(app_id=APP_ID.upper(), out=str(out))) == 0
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["color.png", "manifest.json", "outline.png"]
        doc = json.loads(z.read("manifest.json"))
    assert doc["id"] == APP_ID and doc["bots"][0]["botId"] == APP_ID
    assert validate(doc) == []
    assert "Wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "my-bot",
        "11111111-2222-4333-8444-55555555555Z",
        "{11111111-2222-4333-8444-555555555555}",
    ],
)
def test_package_refuses_a_non_guid(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "app.zip"
    assert package.main(SimpleNamespace(app_id=bad, out=str(out))) == 2
    assert "GUID" in capsys.readouterr().err and not out.exists()
