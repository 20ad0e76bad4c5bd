"""Rendering the core's neutral Message/Form into Block Kit, and reading Block Kit back.

Pure functions, no I/O: everything here is checked in tests against Slack's Block Kit limits
(at most 50 blocks in a message and 100 in a modal or Home tab, 100 options per static select,
text lengths, action ids unique within the payload), so no school ever gets ``invalid_blocks``.

Text from people is shown as text. Slack parses ``mrkdwn`` text objects *and* a message's
top-level ``text`` (the fallback used by notifications and screen readers): there ``<!channel>``,
``<@U…>`` and ``<https://…|label>`` are live, so every run of text is escaped (``& < >``, the
only escapes Slack documents) and only the core's own bold becomes ``*bold*``; mrkdwn objects
are ``verbatim`` so Slack adds no links or mentions of its own to plain words like ``@here``.
``plain_text`` objects (titles, labels, buttons, options) are not parsed, so they are not
escaped (Slack would show ``&amp;`` as it is). Slack has no escape for ``*``, ``_``, ``~`` or
`` ` `` in mrkdwn, so a name like ``_x_`` can still show in italics; it can never link or ping.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chatbot.interaction import SubmittedValue
from chatbot.ui import (
    Actions,
    Button,
    Context,
    Fields,
    Form,
    Input,
    Message,
    Option,
    Section,
    clip_words,
    no_controls,
    spans,
)

# Slack's documented limits.
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_ACTION_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_OPTIONS = 100
MAX_CHECKBOX_OPTIONS = 10
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_TITLE = 24
MAX_LABEL = 2000
MAX_HINT = 2000
MAX_PLACEHOLDER = 150
MAX_INPUT_LENGTH = 3000
MAX_PRIVATE_METADATA = 3000
MAX_FALLBACK_TEXT = 3000

ACTION_SUFFIX = re.compile(r"#\d+$")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Slack's control characters: text can never ping @channel or fake a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn_runs(runs: list[tuple[str, bool]]) -> str:
    out: list[str] = []
    for text, bold in runs:
        t = escape(no_controls(text))
        out.append("\n".join(map(_bold, t.split("\n"))) if bold else t)
    return "".join(out)


def _bold(line: str) -> str:
    """Slack's bold neither crosses a line nor starts or ends with a space."""
    core = line.strip()
    if not core:
        return line
    start = line.index(core)
    return f"{line[:start]}*{core}*{line[start + len(core) :]}"


def mrkdwn(markup: str) -> str:
    """The core's markup as mrkdwn: ``**bold**`` becomes ``*bold*``, all else is text."""
    return _mrkdwn_runs(spans(markup))


def fallback(text: str) -> str:
    """A message's top-level ``text``: Slack parses it as mrkdwn, so it is escaped too."""
    return escape(no_controls(clip(text, MAX_FALLBACK_TEXT)))


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(no_controls(text), limit) or " ", "emoji": True}


def _md(mrkdwn_text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(mrkdwn_text, limit) or " ", "verbatim": True}


def md(markup: str, limit: int) -> dict[str, Any]:
    """A mrkdwn text object from the core's markup (``Section.text``, ``Form.intro``)."""
    return _md(mrkdwn(markup), limit)


def md_text(text: str, limit: int, bold: str = "") -> dict[str, Any]:
    """A mrkdwn text object from plain text, after an optional bold label on its own line."""
    runs = [(bold, True), ("\n" + text, False)] if bold else [(text, False)]
    return _md(_mrkdwn_runs(runs), limit)


def action_id(name: str, index: int) -> str:
    """Unique per payload: ``cohost.accept`` -> ``cohost.accept#0``."""
    suffix = f"#{index}"
    return name[: MAX_ACTION_ID - len(suffix)] + suffix


def action_name(slack_action_id: str) -> str:
    """Inverse of :func:`action_id`."""
    return ACTION_SUFFIX.sub("", slack_action_id)


def _button(b: Button, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "button",
        "action_id": action_id(b.action_id, index),
        "text": plain(clip_words(b.label, MAX_BUTTON_TEXT), MAX_BUTTON_TEXT),
    }
    if b.value:
        out["value"] = b.value[:MAX_BUTTON_VALUE]
    if b.style in ("primary", "danger"):
        out["style"] = b.style
    return out


def message_blocks(message: Message, limit: int = MAX_MESSAGE_BLOCKS) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    n = 0
    for block in message.blocks:
        if isinstance(block, Section):
            blocks.append({"type": "section", "text": md(block.text, MAX_SECTION_TEXT)})
        elif isinstance(block, Fields):
            items = list(block.items)
            for start in range(0, len(items), MAX_FIELDS):
                fields = [
                    md_text(value, MAX_FIELD_TEXT, bold=label)
                    for label, value in items[start : start + MAX_FIELDS]
                ]
                blocks.append({"type": "section", "fields": fields})
        elif isinstance(block, Actions):
            buttons = list(block.buttons)
            for start in range(0, len(buttons), MAX_ACTION_ELEMENTS):
                elements = []
                for b in buttons[start : start + MAX_ACTION_ELEMENTS]:
                    elements.append(_button(b, n))
                    n += 1
                blocks.append({"type": "actions", "elements": elements})
        elif isinstance(block, Context):
            lines = [x for x in block.lines if x.strip()][:MAX_CONTEXT_ELEMENTS]
            if lines:
                blocks.append(
                    {"type": "context", "elements": [md_text(x, MAX_FIELD_TEXT) for x in lines]}
                )
    if len(blocks) > limit:
        blocks = blocks[: limit - 1]
        blocks.append(
            {"type": "context", "elements": [md_text("More not shown here. Use /my-calls.", 100)]}
        )
    return blocks


def message_payload(message: Message) -> dict[str, Any]:
    """``text`` + ``blocks`` for chat.postMessage / chat.update / chat.postEphemeral /
    response_url / ack: the one place a message's top-level text is made."""
    return {"text": fallback(message.text), "blocks": message_blocks(message)}


# ----- forms -----


def _option(o: Option) -> dict[str, Any]:
    return {
        "text": plain(clip_words(o.label, MAX_OPTION_TEXT), MAX_OPTION_TEXT),
        "value": o.value[:MAX_OPTION_VALUE],
    }


def options_payload(options: tuple[Option, ...] | list[Option]) -> list[dict[str, Any]]:
    return [_option(o) for o in list(options)[:MAX_OPTIONS]]


def _initials(inp: Input) -> list[str]:
    if inp.initial is None:
        return []
    if isinstance(inp.initial, str):
        return [inp.initial] if inp.initial else []
    return [x for x in inp.initial if x]


def _element(inp: Input, roster_pickers: bool = False) -> dict[str, Any]:
    aid = inp.id
    init = _initials(inp)
    el: dict[str, Any]
    if inp.kind in ("text", "long_text"):
        el = {"type": "plain_text_input", "action_id": aid}
        if inp.kind == "long_text":
            el["multiline"] = True
        if inp.max_length:
            el["max_length"] = min(inp.max_length, MAX_INPUT_LENGTH)
        if init:
            el["initial_value"] = init[0][: el.get("max_length", MAX_INPUT_LENGTH)]
    elif inp.kind == "date":
        el = {"type": "datepicker", "action_id": aid}
        if init and re.fullmatch(r"\d{4}-\d{2}-\d{2}", init[0]):
            el["initial_date"] = init[0]
    elif inp.kind == "time":
        el = {"type": "timepicker", "action_id": aid}
        if init and re.fullmatch(r"\d{2}:\d{2}", init[0]):
            el["initial_time"] = init[0]
    elif inp.kind == "number":
        el = {"type": "number_input", "action_id": aid, "is_decimal_allowed": False}
        if init and re.fullmatch(r"-?\d+", init[0]):
            el["initial_value"] = init[0]
    elif inp.kind == "staff" and roster_pickers:
        # Colleagues may be on Teams rather than Slack: search the school's roster instead.
        # External selects carry their picker kind as action id (see on_options).
        el = {"type": "external_select", "action_id": "staff", "min_query_length": 0}
    elif inp.kind == "staff":
        # A Slack user picker; the core asks Slack who was picked (users.info).
        el = {"type": "users_select", "action_id": aid}
        if init and re.fullmatch(r"[UW][A-Z0-9]+", init[0]):
            el["initial_user"] = init[0]
    elif inp.kind in ("pupil", "pupils"):
        # External select: the list is searched on the server, so a school of any size works.
        multi = inp.kind == "pupils"
        el = {
            "type": "multi_external_select" if multi else "external_select",
            "action_id": inp.kind,
            "min_query_length": 0,
        }
        # The core sends the chosen pupils' names as the input's options.
        labels = {o.value: o.label for o in inp.options}
        chosen = [_option(Option(u, labels.get(u, u))) for u in init][:MAX_OPTIONS]
        if chosen:
            if multi:
                el["initial_options"] = chosen
            else:
                el["initial_option"] = chosen[0]
    elif inp.kind in ("select", "multi_select", "checkboxes"):
        opts = list(inp.options)[:MAX_OPTIONS]
        if inp.kind == "select":
            kind = "static_select"
        elif inp.kind == "checkboxes" and len(opts) <= MAX_CHECKBOX_OPTIONS:
            kind = "checkboxes"
        else:
            kind = "multi_static_select"
        el = {"type": kind, "action_id": aid, "options": [_option(o) for o in opts]}
        chosen = [_option(o) for o in opts if o.value in init]
        if chosen:
            if kind == "static_select":
                el["initial_option"] = chosen[0]
            else:
                el["initial_options"] = chosen
    else:  # pragma: no cover - the core only uses the kinds above
        el = {"type": "plain_text_input", "action_id": aid}
    if inp.placeholder and el["type"] not in ("checkboxes", "number_input"):
        el["placeholder"] = plain(inp.placeholder, MAX_PLACEHOLDER)
    return el


def form_view(form: Form, roster_pickers: bool = False) -> dict[str, Any]:
    """A modal: ``callback_id`` is the form id, ``private_metadata`` the form's state.

    ``roster_pickers``: staff pickers search the school's roster rather than the Slack
    workspace (when colleagues may be on another platform)."""
    blocks: list[dict[str, Any]] = []
    if form.intro:
        blocks.append({"type": "section", "text": md(form.intro, MAX_SECTION_TEXT)})
    for inp in form.inputs[: MAX_VIEW_BLOCKS - len(blocks)]:
        block: dict[str, Any] = {
            "type": "input",
            "block_id": inp.id,
            "label": plain(inp.label, MAX_LABEL),
            "optional": not inp.required,
            "element": _element(inp, roster_pickers),
        }
        if inp.hint:
            block["hint"] = plain(inp.hint, MAX_HINT)
        blocks.append(block)
    metadata = json.dumps(form.state, separators=(",", ":"))
    if len(metadata) > MAX_PRIVATE_METADATA:
        raise ValueError(f"form {form.id} state is too large for Slack ({len(metadata)} chars)")
    return {
        "type": "modal",
        "callback_id": form.id,
        "private_metadata": metadata,
        "title": plain(clip_words(form.title, MAX_TITLE), MAX_TITLE),
        "submit": plain(clip_words(form.submit_label, MAX_TITLE), MAX_TITLE),
        "close": plain("Cancel", MAX_TITLE),
        "blocks": blocks,
    }


def popup_view(title: str, message: Message) -> dict[str, Any]:
    """A read-only modal (no submit button)."""
    return {
        "type": "modal",
        "callback_id": "popup",
        "title": plain(clip_words(title, MAX_TITLE), MAX_TITLE),
        "close": plain("Close", MAX_TITLE),
        "blocks": message_blocks(message, MAX_VIEW_BLOCKS),
    }


def home_view(message: Message) -> dict[str, Any]:
    head = [
        {"type": "header", "text": plain("Safe video calls", 150)},
        {
            "type": "context",
            "elements": [
                md_text(
                    "Book with /book-call · record consent with /consent · "
                    "report a worry with /concern",
                    300,
                )
            ],
        },
        {"type": "divider"},
    ]
    return {"type": "home", "blocks": head + message_blocks(message, MAX_VIEW_BLOCKS - len(head))}


# ----- reading submissions back -----


def element_value(el: dict[str, Any]) -> SubmittedValue | None:
    """One element's value from ``view.state.values``, in the core's conventions.

    Users pickers come back as the Slack user id (the adapter passes it on as a person)."""
    kind = el.get("type")
    if kind in ("plain_text_input", "number_input", "email_text_input", "url_text_input"):
        return el.get("value") or ""
    if kind == "datepicker":
        return el.get("selected_date") or ""
    if kind == "timepicker":
        return el.get("selected_time") or ""
    if kind in ("static_select", "external_select", "radio_buttons"):
        opt = el.get("selected_option") or {}
        return str(opt.get("value", ""))
    if kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        return [str(o.get("value", "")) for o in el.get("selected_options") or []]
    if kind == "users_select":
        return el.get("selected_user") or ""
    if kind == "multi_users_select":
        return list(el.get("selected_users") or [])
    return None


def view_values(view: dict[str, Any]) -> tuple[dict[str, SubmittedValue], dict[str, str]]:
    """(values by input id, user-picker input ids -> kind) from a submitted view."""
    values: dict[str, SubmittedValue] = {}
    user_pickers: dict[str, str] = {}
    for block_id, elements in (view.get("state") or {}).get("values", {}).items():
        for el in elements.values():
            v = element_value(el)
            if v is None:
                continue
            values[block_id] = v
            if el.get("type") in ("users_select", "multi_users_select"):
                user_pickers[block_id] = el["type"]
    return values, user_pickers


def view_state(view: dict[str, Any]) -> dict[str, str]:
    """The form's state from ``private_metadata`` (a JSON object: checked on the way in)."""
    data = json.loads(view.get("private_metadata") or "{}")
    return {str(k): str(v) for k, v in data.items()}


def input_block_ids(view: dict[str, Any]) -> list[str]:
    return [
        b["block_id"]
        for b in view.get("blocks", [])
        if b.get("type") == "input" and "block_id" in b
    ]


def errors_payload(errors: dict[str, str], view: dict[str, Any]) -> dict[str, str]:
    """``response_action: errors`` keyed by block id; an error for a field the view does not
    show is put on the first input so it is never lost."""
    ids = input_block_ids(view)
    out: dict[str, str] = {}
    for field, message in errors.items():
        key = field if field in ids or not ids else ids[0]
        text = no_controls(message)
        out[key] = clip(f"{out[key]} {text}" if key in out else text, MAX_LABEL)
    return out
