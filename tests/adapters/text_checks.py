"""Checks that text from people reaches each surface as text (no tests here).

Each function walks one recorded outbound payload (a Slack Web API or response_url body or
ack, a Bot Connector activity, a stretch of console output) and returns what it found wrong,
so the Slack and Teams test fixtures apply them to every call they record and new messages
are covered without new tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# What a terminal acts on, and what makes text display in another order than it is stored.
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Slack's control characters: unescaped, they make mentions (<!channel>, <@U1>) and links.
SLACK_LIVE = re.compile(r"[<>]")
# Markdown a Teams client turns into a link: [label](url) and <https://...>.
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\s*\([^)]*\)|<[a-z][a-z0-9+.-]*:[^>]*>", re.I)


def _strings(value: Any, path: str = "", skip: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k != skip:
                yield from _strings(v, f"{path}.{k}", skip)
    elif isinstance(value, list):
        for n, v in enumerate(value):
            yield from _strings(v, f"{path}[{n}]", skip)


def _dicts(value: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            yield from _dicts(v, f"{path}.{k}")
    elif isinstance(value, list):
        for n, v in enumerate(value):
            yield from _dicts(v, f"{path}[{n}]")


def control_findings(payload: Any, skip: str = "") -> list[str]:
    """Control characters (tab and newline aside) or bidi overrides in any string (except
    under the key ``skip``)."""
    return [
        f"{p}: control character in {s!r}"
        for p, s in _strings(payload, skip=skip)
        if CONTROLS.search(s)
    ]


def slack_findings(body: dict[str, Any]) -> list[str]:
    """A Slack body's mrkdwn, top-level ``text`` included (Slack parses it as mrkdwn), with an
    unescaped ``<`` or ``>``, or a mrkdwn object Slack may add links and mentions to."""
    found = control_findings(body)
    if isinstance(body.get("text"), str) and SLACK_LIVE.search(body["text"]):
        found.append(f".text: live Slack markup in {body['text']!r}")
    for path, d in _dicts(body):
        if d.get("type") != "mrkdwn":
            continue
        if SLACK_LIVE.search(str(d.get("text", ""))):
            found.append(f"{path}: live Slack markup in {d['text']!r}")
        if d.get("verbatim") is not True:
            found.append(f"{path}: mrkdwn without verbatim")
    return found


def _teams_markdown(activity: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The strings a Teams client reads as markdown."""
    for path, d in _dicts(activity):
        kind = d.get("type")
        if kind == "message" and d.get("textFormat") != "plain":
            for key in ("text", "summary"):
                if isinstance(d.get(key), str):
                    yield f"{path}.{key}", d[key]
        if kind == "TextBlock":
            yield f"{path}.text", str(d.get("text", ""))
        if kind == "FactSet":
            for n, fact in enumerate(d.get("facts", [])):
                yield f"{path}.facts[{n}]", f"{fact.get('title', '')} {fact.get('value', '')}"
        if kind == "AdaptiveCard" and "fallbackText" in d:
            yield f"{path}.fallbackText", str(d["fallbackText"])
        if "errorMessage" in d:
            yield f"{path}.errorMessage", str(d["errorMessage"])


def teams_findings(activity: dict[str, Any]) -> list[str]:
    """A Bot Connector activity with a markdown link where Teams parses markdown, or a control
    character in anything shown (a button's ``data`` comes back to the bot, unseen)."""
    found = control_findings(activity, skip="data")
    for path, text in _teams_markdown(activity):
        if MARKDOWN_LINK.search(text):
            found.append(f"{path}: markdown link in {text!r}")
    return found


def console_findings(output: str) -> list[str]:
    """Console output a terminal would act on."""
    return [f"control character at {m.start()}: {m.group()!r}" for m in CONTROLS.finditer(output)]
