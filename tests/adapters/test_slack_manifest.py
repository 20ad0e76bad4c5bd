"""manifest/slack.yaml: valid against Slack's official manifest schema, least privilege, and
``chatbot manifest slack --url`` fills every request URL."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from adapters.slack import manifest

ROOT = Path(__file__).parents[2]
SCHEMAS = ROOT.parent / "shared/schemas"
SCHEMA = SCHEMAS / "slack-manifest-1.0.0.schema.json"


def errors_for(doc: dict) -> list[str]:
    if not SCHEMA.exists():
        pytest.skip(f"official Slack manifest schema not found at {SCHEMA} (bare clone)")
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator_cls(schema).iter_errors(doc)
    ]


def load() -> dict:
    return yaml.safe_load((ROOT / "manifest/slack.yaml").read_text())


def test_manifest_is_valid_as_it_stands() -> None:
    assert errors_for(load()) == []


def test_manifest_has_commands_events_home_and_least_privilege() -> None:
    doc = load()
    assert doc["_metadata"]["major_version"] == 1
    commands = {c["command"] for c in doc["features"]["slash_commands"]}
    assert commands == {"/book-call", "/my-calls", "/calls", "/consent", "/concern", "/concerns"}
    assert doc["features"]["app_home"] == {
        "home_tab_enabled": True,
        "messages_tab_enabled": True,
        "messages_tab_read_only_enabled": True,
    }
    assert doc["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert doc["settings"]["interactivity"]["is_enabled"] is True
    assert set(doc["oauth_config"]["scopes"]) == {"bot"}  # no user scopes
    assert doc["oauth_config"]["scopes"]["bot"] == [
        "commands",
        "chat:write",
        "users:read",
        "users:read.email",
    ]
    text = (ROOT / "manifest/slack.yaml").read_text()
    for scope in doc["oauth_config"]["scopes"]["bot"]:
        assert f"# {scope}:" in text, f"say why the app needs {scope}"


def test_manifest_command_fills_request_urls(capsys: pytest.CaptureFixture[str]) -> None:
    assert manifest.main(SimpleNamespace(url="https://bot.ashlea.sch.uk/")) == 0
    out = capsys.readouterr().out
    doc = yaml.safe_load(out)
    assert errors_for(doc) == []
    want = "https://bot.ashlea.sch.uk/slack/events"
    urls = [c["url"] for c in doc["features"]["slash_commands"]]
    urls += [
        doc["settings"]["event_subscriptions"]["request_url"],
        doc["settings"]["interactivity"]["request_url"],
        doc["settings"]["interactivity"]["message_menu_options_url"],
    ]
    assert urls and set(urls) == {want}
    assert "example.org" not in out and "# chat:write:" in out  # comments kept


def test_manifest_command_refuses_plain_http(capsys: pytest.CaptureFixture[str]) -> None:
    assert manifest.main(SimpleNamespace(url="http://bot.ashlea.sch.uk")) == 2
    assert "https" in capsys.readouterr().err
