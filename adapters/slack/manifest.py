"""``chatbot manifest slack --url https://...``: print manifest/slack.yaml with the request URLs
filled in, ready to paste into "Create New App -> From an app manifest"."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from adapters.slack import EVENTS_PATH

MANIFEST = Path(__file__).resolve().parents[2] / "manifest" / "slack.yaml"
PLACEHOLDER = "https://bot.example.org/slack/events"


def request_url(url: str) -> str:
    """``https://bot.school.uk`` (or the full events URL) -> ``https://bot.school.uk/slack/events``."""
    url = url.strip().rstrip("/")
    if not url.startswith("https://"):
        raise ValueError("Slack only calls https:// URLs; give the server's public https address")
    if not url.endswith(EVENTS_PATH):
        url += EVENTS_PATH
    return url


def render(url: str, text: str | None = None) -> str:
    """The manifest text (comments kept) with every request URL pointing at ``url``."""
    source = MANIFEST.read_text(encoding="utf-8") if text is None else text
    out = source.replace(PLACEHOLDER, request_url(url))
    doc: dict[str, Any] = yaml.safe_load(out)
    assert PLACEHOLDER not in out and isinstance(doc, dict)
    return out


def main(args: Any) -> int:
    url = getattr(args, "url", None) or ""
    if not MANIFEST.exists():
        print(f"error: {MANIFEST} not found (run from a checkout of the project)", file=sys.stderr)
        return 1
    try:
        sys.stdout.write(render(url))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
