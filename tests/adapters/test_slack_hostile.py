"""Hostile requests to POST /slack/events: whatever arrives, the answer is a 4xx or a polite
reply, never a 500 or a traceback, and the database is left as it was.

- Not signed by Slack (whatever the body or the headers hold): 401, before anything parses it.
- Signed, but not shaped as Slack sends it: 400.
- Shaped right, but naming records that can't exist: a polite answer.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chatbot.fields import MAX_RECORD_ID
from chatbot.uow import Units
from tests.adapters.test_slack_support import Slack, payload, running
from tests.conftest import no_traceback, snapshot
from tests.doubles.slack_api import (
    FORM,
    JSON,
    command_body,
    interactive_body,
    signature,
    signed_headers,
)


@pytest.fixture
async def slack(school: Units) -> AsyncIterator[Slack]:
    async with running(school) as s:
        yield s


async def post_raw(slack: Slack, body: bytes, headers: list[tuple[str, str]]) -> int:
    async with slack.session.post(slack.url + "/slack/events", data=body, headers=headers) as r:
        await r.read()
        status = r.status
    await slack.adapter.wait_idle()
    return status


# ----- not signed by Slack: 401, whatever the body holds -----

CLICK = interactive_body(payload("block_actions_cohost_accept.json")).encode()


def unsigned(slack: Slack, case: str) -> tuple[bytes, list[tuple[str, str]]]:
    now = str(int(time.time()))
    good = signature(slack.secret, now, CLICK)
    form = ("Content-Type", FORM)
    bodies = {"malformed_json": b"payload=%7Bnot+json", "payload_is_a_list": b"payload=[]"}
    if case in bodies:
        return bodies[case], [form]
    stamps = {
        "timestamp_not_a_number": "yesterday",
        "timestamp_not_ascii": "١٧٠٠٠٠٠٠٠٠",  # digits int() would read
        "timestamp_with_underscores": f"{now[:4]}_{now[4:]}",
        "timestamp_too_long": "9" * 5000,
    }
    if case in stamps:
        ts = stamps[case]
        return CLICK, [form, ("X-Slack-Request-Timestamp", ts), ("X-Slack-Signature", good)]
    if case == "signature_not_ascii":
        return CLICK, [form, ("X-Slack-Request-Timestamp", now), ("X-Slack-Signature", "v0=é")]
    if case == "signature_repeated":
        bad = "v0=" + "0" * 64
        sig = ("X-Slack-Signature", good)
        return CLICK, [form, ("X-Slack-Request-Timestamp", now), sig, ("X-Slack-Signature", bad)]
    assert case == "body_not_utf8"
    body = b"payload=" + json.dumps({"type": "block_actions"}).encode() + b"\xff\xfe"
    sig = ("X-Slack-Signature", signature(slack.secret, now, body))
    return body, [form, ("X-Slack-Request-Timestamp", now), sig]


@pytest.mark.parametrize(
    "case",
    [
        "malformed_json",
        "payload_is_a_list",
        "timestamp_not_a_number",
        "timestamp_not_ascii",
        "timestamp_with_underscores",
        "timestamp_too_long",
        "signature_not_ascii",
        "signature_repeated",
        "body_not_utf8",
    ],
)
async def test_requests_slack_did_not_sign_get_401(
    slack: Slack, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = await snapshot(slack.runtime.units.db)
    body, headers = unsigned(slack, case)
    with caplog.at_level(logging.INFO):
        assert await post_raw(slack, body, headers) == 401
    no_traceback(caplog)
    assert slack.api.calls == []
    assert await snapshot(slack.runtime.units.db) == before


async def test_ssl_check_is_answered_but_carries_nothing_in(slack: Slack) -> None:
    form = [("Content-Type", FORM)]
    assert await post_raw(slack, b"ssl_check=1&token=abc", form) == 200
    signed = list(signed_headers(slack.secret, "ssl_check=1", FORM).items())
    assert await post_raw(slack, b"ssl_check=1", signed) == 200
    # The same check cannot smuggle a payload past the signature.
    click = interactive_body(payload("block_actions_cohost_accept.json"))
    assert await post_raw(slack, f"ssl_check=1&{click}".encode(), form) == 401
    assert slack.api.calls == []


async def test_bodies_that_cannot_be_read_get_4xx(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    before = await snapshot(slack.runtime.units.db)
    broken_gzip = [("Content-Type", FORM), ("Content-Encoding", "gzip")]
    with caplog.at_level(logging.INFO):
        assert await post_raw(slack, b"not gzip at all", broken_gzip) == 400
        too_big = b"payload=" + b"x" * (1024 * 1024)  # the server takes at most 1 MiB
        assert await post_raw(slack, too_big, [("Content-Type", FORM)]) == 413
        bomb = gzip.compress(b"x" * (8 * 1024 * 1024))  # small on the wire, 8 MiB unpacked
        assert await post_raw(slack, bomb, broken_gzip) == 413
    no_traceback(caplog)
    assert slack.api.calls == []
    assert await snapshot(slack.runtime.units.db) == before


# ----- signed, but not shaped as Slack sends it: 400 -----


def _click(change: Callable[[dict[str, Any]], None]) -> Callable[[], tuple[str, str]]:
    def build() -> tuple[str, str]:
        p = payload("block_actions_cohost_accept.json")
        change(p)
        return interactive_body(p), FORM

    return build


def _submission(change: Callable[[dict[str, Any]], None]) -> Callable[[], tuple[str, str]]:
    def build() -> tuple[str, str]:
        p = payload("view_submission_book_call.json")
        change(p)
        return interactive_body(p), FORM

    return build


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(p: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            p = p[key]
        p[last] = value

    return change


def _rename_block(p: dict[str, Any]) -> None:
    values = p["view"]["state"]["values"]
    values["\ud800"] = values.pop("plan")


WRONG_SHAPES: dict[str, Callable[[], tuple[str, str]]] = {
    "payload_is_a_list": lambda: ("payload=[]", FORM),
    "payload_is_malformed_json": lambda: ("payload=%7Bnot+json", FORM),
    "payload_is_a_number": lambda: ("payload=5", FORM),
    "json_body_is_a_list": lambda: ("[1, 2]", JSON),
    "unknown_type": _click(_set("type", "dialog_submission")),
    "user_as_a_list": _click(_set("user", ["U0COLLEAG"])),
    "user_id_as_a_number": _click(_set("user.id", 12345)),
    "actions_as_an_object": _click(_set("actions", {"0": {"action_id": "cohost.accept#0"}})),
    "actions_empty": _click(_set("actions", [])),
    "action_id_missing": _click(lambda p: p["actions"][0].pop("action_id")),
    "container_as_a_string": _click(_set("container", "message")),
    "is_ephemeral_as_a_string": _click(_set("container.is_ephemeral", "false")),
    "team_as_a_number": _click(_set("team", 7)),
    "authorizations_as_an_object": _click(_set("authorizations", {"team_id": "T0SCHOOL"})),
    "response_urls_as_a_number": _click(_set("response_urls", 3)),
    "huge_button_value": _click(lambda p: p["actions"][0].update(value="9" * 5000)),
    "button_value_with_a_lone_surrogate": _click(lambda p: p["actions"][0].update(value="1\ud800")),
    "view_as_a_string": _submission(_set("view", "V0BOOKCALL")),
    "view_without_callback_id": _submission(lambda p: p["view"].pop("callback_id")),
    "state_values_as_a_list": _submission(_set("view.state.values", [])),
    "selected_options_as_a_string": _submission(
        _set("view.state.values.pupils.pupils.selected_options", "A123456789012")
    ),
    "selected_option_as_a_list": _submission(
        _set("view.state.values.kind.kind.selected_option", ["one_to_one"])
    ),
    "element_as_a_list": _submission(_set("view.state.values.plan.plan", ["x"])),
    "text_with_a_lone_surrogate": _submission(
        _set("view.state.values.plan.plan.value", "Reading \ud800 together")
    ),
    "block_id_with_a_lone_surrogate": _submission(_rename_block),
    "text_longer_than_slack_allows": _submission(
        _set("view.state.values.plan.plan.value", "x" * 3001)
    ),
    "private_metadata_not_json": _submission(_set("view.private_metadata", "{not json")),
    "private_metadata_a_list": _submission(_set("view.private_metadata", "[1]")),
    "private_metadata_nested": _submission(
        _set("view.private_metadata", '{"booking_id": {"id": 1}}')
    ),
    "private_metadata_with_a_lone_surrogate": _submission(
        _set("view.private_metadata", '{"booking_id": "\\ud800"}')
    ),
    "command_without_a_slash": lambda: (
        command_body({**payload("command_book_call.json"), "command": "book-call"}),
        FORM,
    ),
    "command_with_a_nested_field": lambda: (
        json.dumps({**payload("command_book_call.json"), "user": {"id": "U0TEACHER"}}),
        JSON,
    ),
    "event_not_subscribed": lambda: (
        json.dumps({**payload("event_app_home_opened.json"), "event": {"type": "message"}}),
        JSON,
    ),
    "event_as_a_list": lambda: (
        json.dumps({**payload("event_app_home_opened.json"), "event": []}),
        JSON,
    ),
    "challenge_as_an_object": lambda: (
        json.dumps({**payload("url_verification.json"), "challenge": {"a": 1}}),
        JSON,
    ),
    "deeply_nested": lambda: (
        '{"type": "block_actions", "x": ' + "[" * 5000 + "]" * 5000 + "}",
        JSON,
    ),
    "huge_number": lambda: ('{"type": "block_actions", "x": ' + "9" * 5000 + "}", JSON),
}


@pytest.mark.parametrize("case", list(WRONG_SHAPES))
async def test_signed_payloads_of_the_wrong_shape_get_400_and_change_nothing(
    slack: Slack, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = await snapshot(slack.runtime.units.db)
    body, content_type = WRONG_SHAPES[case]()
    with caplog.at_level(logging.INFO):
        status, answer = await slack.post(body, content_type)
    assert status == 400, answer
    no_traceback(caplog)
    assert slack.api.calls == [] and slack.api.responses == []
    assert await snapshot(slack.runtime.units.db) == before


# ----- shaped right, naming records that can't exist: a polite answer -----


@pytest.mark.parametrize("value", ["99999999999999999999", str(MAX_RECORD_ID + 1), "-5"])
async def test_buttons_naming_impossible_calls_get_a_polite_answer(
    slack: Slack, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    await slack.command("U0COLLEAG", "/my-calls")  # first seen: their identity is recorded
    before = await snapshot(slack.runtime.units.db, skip=("processed_delivery",))
    p = payload("block_actions_cohost_accept.json")
    p["trigger_id"] = slack.trigger()
    p["response_url"] = slack.api.response_url("huge")
    p["actions"][0]["value"] = value
    with caplog.at_level(logging.INFO):
        status, _ = await slack.post(interactive_body(p), FORM)
    assert status == 200
    no_traceback(caplog)
    [answer] = slack.api.responses
    assert answer["text"] == "That call no longer exists."
    assert await snapshot(slack.runtime.units.db, skip=("processed_delivery",)) == before
