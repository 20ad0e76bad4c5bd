"""Block Kit rendering: every modal, message and Home view stays inside Slack's limits.

``check_message`` / ``check_view`` are the checker the HTTP tests also apply to every call the
adapter makes, so a school with many pupils or long texts never gets ``invalid_blocks``, and
no text from a person is live Slack markup (tests/adapters/text_checks.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.slack.blocks import (
    action_name,
    errors_payload,
    form_view,
    home_view,
    message_blocks,
    message_payload,
    mrkdwn,
    options_payload,
    popup_view,
    view_state,
    view_values,
)
from chatbot.bookings import forms as booking
from chatbot.consent import service as consent
from chatbot.policy import default_policy
from chatbot.ui import Actions, Button, Context, Fields, Form, Input, Message, Option, Section, esc
from tests.adapters.text_checks import slack_findings

PAYLOADS = Path(__file__).parents[1] / "payloads" / "slack"

INPUT_ELEMENTS = {
    "plain_text_input",
    "datepicker",
    "timepicker",
    "number_input",
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "checkboxes",
    "radio_buttons",
    "email_text_input",
    "url_text_input",
}


class BlockKitError(AssertionError):
    pass


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise BlockKitError(f"{where}: {what}")


def _text(
    obj: Any, where: str, limit: int, kinds: tuple[str, ...] = ("plain_text", "mrkdwn")
) -> None:
    _need(isinstance(obj, dict), where, "text object missing")
    _need(obj.get("type") in kinds, where, f"text type {obj.get('type')!r} not in {kinds}")
    text = obj.get("text")
    _need(isinstance(text, str) and len(text) >= 1, where, "empty text")
    _need(len(text) <= limit, where, f"text is {len(text)} chars, limit {limit}")


def _option(o: Any, where: str) -> None:
    _text(o.get("text"), where + ".text", 75, ("plain_text",))
    _need(isinstance(o.get("value"), str) and 1 <= len(o["value"]) <= 150, where, "option value")


def _options(opts: Any, where: str, limit: int = 100) -> None:
    _need(
        isinstance(opts, list) and 1 <= len(opts) <= limit,
        where,
        f"{len(opts) if isinstance(opts, list) else opts} options (1..{limit})",
    )
    values = [o.get("value") for o in opts]
    _need(len(values) == len(set(values)), where, "duplicate option values")
    for k, o in enumerate(opts):
        _option(o, f"{where}[{k}]")


def _element(el: dict[str, Any], where: str, action_ids: list[str]) -> None:
    kind = el.get("type")
    aid = el.get("action_id")
    if aid is not None:
        _need(isinstance(aid, str) and 1 <= len(aid) <= 255, where, "action_id length")
        action_ids.append(aid)
    if "placeholder" in el:
        _text(el["placeholder"], where + ".placeholder", 150, ("plain_text",))
    if kind == "button":
        _text(el.get("text"), where + ".text", 75, ("plain_text",))
        _need(len(el.get("value", "")) <= 2000, where, "button value > 2000")
        _need(el.get("style") in (None, "primary", "danger"), where, "button style")
    elif kind in ("static_select", "multi_static_select"):
        _options(el.get("options"), where + ".options")
    elif kind == "checkboxes":
        _options(el.get("options"), where + ".options", 10)
    elif kind in ("external_select", "multi_external_select"):
        _need("options" not in el, where, "external select lists no options inline")
        _need(0 <= el.get("min_query_length", 3) <= 1, where, "min_query_length 0 or 1")
    elif kind == "plain_text_input":
        _need(el.get("max_length", 3000) <= 3000, where, "max_length > 3000")
        _need(
            len(el.get("initial_value", "")) <= el.get("max_length", 3000),
            where,
            "initial_value longer than max_length",
        )
    elif kind == "number_input":
        _need(isinstance(el.get("is_decimal_allowed"), bool), where, "is_decimal_allowed required")
    if "initial_option" in el:
        _option(el["initial_option"], where + ".initial_option")
        if "options" in el:
            _need(el["initial_option"] in el["options"], where, "initial_option not in options")
    for k, o in enumerate(el.get("initial_options", [])):
        _option(o, f"{where}.initial_options[{k}]")
        if "options" in el:
            _need(o in el["options"], where, "initial option not in options")


def check_blocks(blocks: Any, where: str, limit: int) -> None:
    _need(isinstance(blocks, list), where, "blocks must be a list")
    _need(len(blocks) <= limit, where, f"{len(blocks)} blocks, limit {limit}")
    action_ids: list[str] = []
    block_ids: list[str] = []
    for n, b in enumerate(blocks):
        w = f"{where}.blocks[{n}]({b.get('type')})"
        if "block_id" in b:
            _need(isinstance(b["block_id"], str) and 1 <= len(b["block_id"]) <= 255, w, "block_id")
            block_ids.append(b["block_id"])
        kind = b.get("type")
        if kind == "section":
            _need("text" in b or "fields" in b, w, "section needs text or fields")
            if "text" in b:
                _text(b["text"], w + ".text", 3000)
            if "fields" in b:
                _need(1 <= len(b["fields"]) <= 10, w, f"{len(b['fields'])} fields, limit 10")
                for k, f in enumerate(b["fields"]):
                    _text(f, f"{w}.fields[{k}]", 2000)
        elif kind == "actions":
            _need(1 <= len(b.get("elements", [])) <= 25, w, "1..25 elements")
            own = [e.get("action_id") for e in b["elements"]]
            _need(len(own) == len(set(own)), w, "duplicate action_id in block")
            for k, e in enumerate(b["elements"]):
                _element(e, f"{w}.elements[{k}]", action_ids)
        elif kind == "context":
            _need(1 <= len(b.get("elements", [])) <= 10, w, "1..10 elements")
            for k, e in enumerate(b["elements"]):
                _text(e, f"{w}.elements[{k}]", 3000)
        elif kind == "input":
            _text(b.get("label"), w + ".label", 2000, ("plain_text",))
            if "hint" in b:
                _text(b["hint"], w + ".hint", 2000, ("plain_text",))
            el = b.get("element") or {}
            _need(el.get("type") in INPUT_ELEMENTS, w, f"input element {el.get('type')!r}")
            _element(el, w + ".element", action_ids)
        elif kind == "header":
            _text(b.get("text"), w + ".text", 150, ("plain_text",))
        elif kind == "divider":
            pass
        else:
            raise BlockKitError(f"{w}: unexpected block type")
    _need(len(block_ids) == len(set(block_ids)), where, "duplicate block_id")
    _need(len(action_ids) == len(set(action_ids)), where, f"duplicate action ids {action_ids}")


def check_message(payload: dict[str, Any], where: str = "message") -> None:
    """A chat.postMessage / chat.update / response_url body (or an ack with blocks)."""
    _need(
        isinstance(payload.get("text"), str) and payload["text"].strip() != "",
        where,
        "fallback text is required",
    )
    _need(len(payload["text"]) <= 40000, where, "text too long")
    if "blocks" in payload:
        check_blocks(payload["blocks"], where, 50)
    found = slack_findings(payload)
    _need(not found, where, "; ".join(found[:3]))


def check_view(view: dict[str, Any], where: str = "view") -> None:
    kind = view.get("type")
    _need(kind in ("modal", "home"), where, f"view type {kind!r}")
    check_blocks(view.get("blocks"), where, 100)
    if kind == "modal":
        _text(view.get("title"), where + ".title", 24, ("plain_text",))
        for key in ("submit", "close"):
            if key in view:
                _text(view[key], f"{where}.{key}", 24, ("plain_text",))
        has_inputs = any(b.get("type") == "input" for b in view["blocks"])
        _need("submit" in view or not has_inputs, where, "a modal with inputs needs submit")
        _need(len(view.get("callback_id", "")) <= 255, where, "callback_id > 255")
        _need(len(view.get("private_metadata", "")) <= 3000, where, "private_metadata > 3000")
    found = slack_findings(view)
    _need(not found, where, "; ".join(found[:3]))


def check_call(method: str, body: dict[str, Any]) -> None:
    """Apply the checker to any recorded Web API call that carries blocks or a view."""
    if method.startswith("views."):
        check_view(body["view"], method)
    elif method.startswith("chat."):
        check_message(body, method)


# ----- tests -----


def huge_message() -> Message:
    return Message(
        "x" * 50_000,
        (
            *(Section(f"**Row {n}** " + "word " * 800) for n in range(120)),
            Fields(tuple((f"Label {n}", "v" * 3000) for n in range(35))),
            Actions(
                tuple(Button("cohost.accept", "A" * 200, "9" * 3000, "primary") for _ in range(60))
            ),
            Context(tuple("c" * 5000 for _ in range(14))),
        ),
    )


def test_huge_message_stays_within_limits() -> None:
    payload = message_payload(huge_message())
    check_message(payload)
    assert len(payload["blocks"]) == 50
    check_view(home_view(huge_message()))
    check_view(popup_view("A very long title for a details popup", huge_message()))


def test_markup_bold_and_escaping() -> None:
    assert mrkdwn("**Plan:** <!channel> & <https://x|y>") == (
        "*Plan:* &lt;!channel&gt; &amp; &lt;https://x|y&gt;"
    )


def test_peoples_text_is_never_slack_markup() -> None:
    """The fallback text, sections, fields and context lines: people's text is escaped, the
    core's bold is kept, and Slack adds no links or mentions of its own (verbatim)."""
    name = "<!here> **x** <@U1>"
    msg = Message(
        f"{name} & <https://evil.example|click>",
        (
            Section(f"**{esc(name)}** asks"),
            Fields((("Host", name),)),
            Context((f"by {name}",)),
        ),
    )
    payload = message_payload(msg)
    check_message(payload)
    assert (
        payload["text"]
        == "&lt;!here&gt; **x** &lt;@U1&gt; &amp; &lt;https://evil.example|click&gt;"
    )
    section, fields, context = payload["blocks"]
    assert section["text"]["text"] == "*&lt;!here&gt; **x** &lt;@U1&gt;* asks"
    assert fields["fields"][0]["text"] == "*Host*\n&lt;!here&gt; **x** &lt;@U1&gt;"
    assert context["elements"][0]["text"] == "by &lt;!here&gt; **x** &lt;@U1&gt;"
    assert all(t["verbatim"] for t in (section["text"], fields["fields"][0], *context["elements"]))
    assert message_payload(Message("a\x1b[2Jb\u202ec"))["text"] == "a[2Jbc"


def test_action_ids_unique_and_stripped_back() -> None:
    msg = Message(
        "t",
        (
            Actions(
                (
                    Button("checklist.open", "Checklist", "1"),
                    Button("booking.cancel", "Cancel", "1"),
                )
            ),
            Actions(
                (
                    Button("checklist.open", "Checklist", "2"),
                    Button("booking.cancel", "Cancel", "2"),
                )
            ),
        ),
    )
    blocks = message_blocks(msg)
    ids = [e["action_id"] for b in blocks for e in b["elements"]]
    assert ids == ["checklist.open#0", "booking.cancel#1", "checklist.open#2", "booking.cancel#3"]
    assert [action_name(i) for i in ids] == ["checklist.open", "booking.cancel"] * 2
    check_message(message_payload(msg))


def test_core_forms_render_valid_modals() -> None:

    core = default_policy()
    forms = [booking.booking_form(core), consent.consent_form(), consent.withdraw_form()]
    from chatbot.concerns.handlers import _note_form

    forms += [_note_form(7, "C-2026-0007", close) for close in (False, True)]
    for form in forms:
        view = form_view(form)
        check_view(view, form.id)
        assert view["callback_id"] == form.id
        assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [
            i.id for i in form.inputs
        ]
    view = form_view(booking.booking_form(core))
    kinds = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
    assert kinds == {
        "pupils": "multi_external_select",
        "kind": "static_select",
        "date": "datepicker",
        "start": "timepicker",
        "duration": "number_input",
        "cohost": "users_select",
        "platform": "static_select",
        "plan": "plain_text_input",
    }
    assert form_view(consent.withdraw_form())["title"]["text"] == "Withdraw parental…"


def test_oversized_form_is_clipped_to_limits() -> None:
    many = tuple(Option(f"v{n}", f"Option number {n} " + "x" * 100) for n in range(300))
    form = Form(
        id="big",
        title="A form with a title far longer than twenty-four characters",
        intro="i" * 5000,
        submit_label="Submit this very long form now please",
        state={"booking_id": "12"},
        inputs=(
            Input("a", "L" * 3000, "select", options=many, initial="v150", hint="h" * 3000),
            Input("b", "Ticks", "checkboxes", options=many[:15], initial=("v1", "v2")),
            Input("c", "Ticks", "checkboxes", options=many[:4], initial=("v1",)),
            Input(
                "d",
                "Text",
                "long_text",
                max_length=10_000,
                initial="t" * 5000,
                placeholder="p" * 500,
            ),
            Input("e", "Pupils", "pupils", initial=tuple(f"U{n:012d}" for n in range(150))),
            Input(
                "f",
                "Pupil",
                "pupil",
                initial="A123456789012",
                options=(Option("A123456789012", "Sam T (Year 3)"),),
            ),
            Input("g", "When", "date", initial="not a date"),
            Input("h", "Staff", "staff", initial="someone@school.test"),
        ),
    )
    view = form_view(form)
    check_view(view)
    els = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert els["b"]["type"] == "multi_static_select" and els["c"]["type"] == "checkboxes"
    assert "initial_option" not in els["a"]  # v150 was beyond the 100 shown
    assert els["f"]["initial_option"]["text"]["text"] == "Sam T (Year 3)"
    assert json.loads(view["private_metadata"]) == {"booking_id": "12"}
    assert len(options_payload(many)) == 100


def test_submission_values_follow_core_conventions() -> None:
    payload = json.loads((PAYLOADS / "view_submission_book_call.json").read_text())
    values, pickers = view_values(payload["view"])
    assert values == {
        "pupils": ["A123456789012"],
        "kind": "one_to_one",
        "date": "2026-12-01",
        "start": "10:00",
        "duration": "20",
        "cohost": "U0COLLEAG",
        "platform": "Zoom",
        "plan": "Sam shares his reading book.",
    }
    assert pickers == {"cohost": "users_select"}
    assert view_state(payload["view"]) == {}


def test_errors_go_on_shown_blocks() -> None:

    view = form_view(booking.booking_form(default_policy()))
    out = errors_payload({"start": "Too early.", "nowhere": "Lost?", "pupils": "No consent."}, view)
    assert out == {"start": "Too early.", "pupils": "Lost? No consent."}


def test_long_option_labels_are_shortened_at_a_word() -> None:
    label = "Inappropriate or disturbing behaviour, images or language seen in the background"
    [option] = options_payload([Option("x", label)])
    text = option["text"]["text"]
    assert len(text) <= 75 and text.endswith("…")
    assert label.startswith(text[:-1]) and label[len(text) - 1] == " ", text
