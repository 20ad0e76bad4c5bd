"""Fuzz POST /slack/events with every recorded payload (tests/payloads/slack), one field at a
time set to a value of the wrong kind, each request signed as Slack signs it.

Whatever the change, the answer is 200 (a field nobody reads) or 400 (refused), never a 5xx;
nothing is logged at ERROR or with a traceback; and no row of any table changes. Each payload
is sent unchanged first, so a change the app accepts is a repeat of a delivery it has already
processed (same trigger or event id) and must change nothing either.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from chatbot.uow import Units
from tests.adapters.test_slack_support import Slack, payload, running
from tests.conftest import no_traceback, snapshot
from tests.doubles.slack_api import FORM, JSON, command_body, interactive_body

HUGE = "x" * 12_000  # longer than any text Slack sends
SURROGATE = "\ud800"
# Each value goes where the recorded one is of another kind (text where Slack sends text is
# not the wrong kind); a huge text and a lone surrogate go everywhere.
WRONG: tuple[Any, ...] = ([], {}, "x", 12345, None)
EVERYWHERE = (HUGE, SURROGATE)

Path = tuple[str | int, ...]


def kind(value: Any) -> type:
    return int if isinstance(value, bool | int | float) else type(value)


def paths(value: Any, at: Path = ()) -> Iterator[Path]:
    """Every node below the root, as a path of keys and indexes."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield (*at, key)
        yield from paths(child, (*at, key))


def get(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


def mutations(base: dict[str, Any]) -> Iterator[Any]:
    """``base`` with one node (the root too) replaced by a value of the wrong kind, or one
    field renamed to an unreadable name."""
    for path in [(), *paths(base)]:
        original = get(base, path)
        for wrong in [w for w in WRONG if kind(w) is not kind(original)] + list(EVERYWHERE):
            if not path:
                yield wrong
                continue
            p = copy.deepcopy(base)
            get(p, path[:-1])[path[-1]] = wrong
            yield p
        if path and isinstance(path[-1], str):
            p = copy.deepcopy(base)
            parent = get(p, path[:-1])
            parent[SURROGATE] = parent.pop(path[-1])
            yield p


def command_mutations(base: dict[str, str]) -> Iterator[str]:
    """A slash command is a form: every field is text, so each one is made huge, empty or not
    UTF-8, or sent twice."""
    for key in base:
        for wrong in (HUGE, ""):
            yield command_body({**base, key: wrong})
        yield command_body(base) + "&" + urlencode({key: HUGE})
        yield command_body(base).replace(f"{key}=", f"{key}=%FF%FE", 1)


@pytest.fixture
async def slack(school: Units) -> Any:
    async with running(school) as s:
        yield s


async def test_wrong_kinds_of_value_in_every_field(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    cmd = payload("command_book_call.json")
    cmd["response_url"] = slack.api.response_url("cmd")
    click = payload("block_actions_cohost_accept.json")
    click["response_url"] = slack.api.response_url("click")
    interactive = [click, payload("block_suggestion_pupils.json")]
    interactive.append(payload("view_submission_book_call.json"))
    events = [payload("event_app_home_opened.json"), payload("url_verification.json")]

    # Sent as recorded, once: accepted (a call is booked, identities are recorded).
    for body, content_type in [
        (command_body(cmd), FORM),
        *[(interactive_body(p), FORM) for p in interactive],
        *[(json.dumps(p), JSON) for p in events],
    ]:
        status, answer = await slack.post(body, content_type)
        assert status == 200, (status, answer)
    before = await snapshot(slack.runtime.units.db)

    requests: list[tuple[str, str]] = [(body, FORM) for body in command_mutations(cmd)]
    for p in interactive:
        requests += [(interactive_body(m), FORM) for m in mutations(p)]
        requests.append((interactive_body(p) + "&payload=%5B%5D", FORM))  # sent twice
    for p in events:
        requests += [(json.dumps(m), JSON) for m in mutations(p)]

    statuses: Counter[int] = Counter()
    with caplog.at_level(logging.INFO):
        for body, content_type in requests:
            status, answer = await slack.post(body, content_type)
            assert status in (200, 400, 401), (status, answer, body[:300])
            statuses[status] += 1
    no_traceback(caplog)
    assert await snapshot(slack.runtime.units.db) == before
    assert statuses[400] > statuses[200] > 0, statuses  # most changes are refused
