"""Neutral Message / Form -> Adaptive Card 1.5 JSON, and card submissions -> values.

Buttons are ``Action.Submit`` with data ``{"action": id, "value": value}``; forms submit
``{"form": id, "state": {...}, "spec": ...}`` plus the inputs, whose card ids carry the
``in_`` prefix so they can never collide with those keys. ``spec`` is the form's own
definition, so a refused submission can be shown again with errors after a restart.

Pupil pickers list at most the core's first matches, and Adaptive Cards 1.5 has no typeahead,
so each has a search box (``find_`` + input id, never a form value) and a "Search" button
whose data is the form's plus ``{"search": input id}``: the adapter answers it by drawing
the card again with the matching pupils, and does not submit the form. A search button
sends (and the client validates) every input on the card, so a card with one marks no input
``isRequired``; the core checks required fields when the form itself is submitted.

Text from people is shown as text. Teams parses markdown in ``TextBlock.text`` and in
``Fact.title``/``Fact.value`` (Microsoft's "Format cards in Teams"), so ``[click](https://…)``
in a name would be a live, disguised link there; a ``TextRun``'s text is never parsed
("Markdown is not supported", Adaptive Cards schema 1.2+). So every text drawn on a card is a
``RichTextBlock`` of ``TextRun``s (the core's ``**bold**`` is a run of weight Bolder), label and
value pairs are columns of those rather than a ``FactSet``, and nothing a person wrote goes in
``fallbackText`` (which may be read as markdown). Input labels, placeholders, choice titles and
button titles are plain text. Bare URLs are left as written: they show where they lead, and a
plan may rightly carry a meeting link. Control and bidi-override characters are removed from
every text shown (``no_controls``); the data a card sends back is not shown and is left as is.
"""

from __future__ import annotations

from typing import Any

from chatbot.interaction import SubmittedValue
from chatbot.ui import (
    Actions,
    Context,
    Fields,
    Form,
    Input,
    Message,
    Option,
    Section,
    no_controls,
    spans,
)

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
INPUT_PREFIX = "in_"
SEARCH_PREFIX = "find_"
SEARCH_KEY = "search"
PUPIL_KINDS = ("pupils", "pupil")
MULTI = ("multi_select", "pupils", "checkboxes")
STYLE = {"primary": "positive", "danger": "destructive"}
# Shown only by a Teams client too old for this card; the summary carries the message itself.
FALLBACK = "Update Teams to see this message."


def _card(
    body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "body": body,
        "fallbackText": FALLBACK,
    }
    if actions:
        card["actions"] = actions
    return card


def _rich(
    runs: list[tuple[str, bool]], spacing: str | None = None, **run_style: Any
) -> list[dict[str, Any]]:
    """Runs of text as RichTextBlocks, one per line (not every client breaks a line inside a
    TextRun); ``run_style`` (size, weight, color, isSubtle) applies to every run."""
    lines: list[list[dict[str, Any]]] = [[]]
    for text, bold in runs:
        for n, part in enumerate(no_controls(text).split("\n")):
            if n:
                lines.append([])
            if part:
                run = {"type": "TextRun", "text": part, **run_style}
                if bold:
                    run["weight"] = "Bolder"
                lines[-1].append(run)
    blocks: list[dict[str, Any]] = []
    for inlines in filter(None, lines):
        block: dict[str, Any] = {"type": "RichTextBlock", "inlines": inlines}
        if blocks or spacing:
            block["spacing"] = "None" if blocks else spacing
        blocks.append(block)
    return blocks


def _markup(markup: str, **style: Any) -> list[dict[str, Any]]:
    """The core's markup (``Section.text``, ``Form.intro``)."""
    return _rich(spans(markup), **style)


def _plain(text: str, **style: Any) -> list[dict[str, Any]]:
    """Plain text: labels, values, hints, errors, titles."""
    return _rich([(text, False)], **style)


def _fields(items: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """Label/value rows, as a FactSet lays them out but drawn with TextRuns (a Fact's title
    and value are markdown). Relative column widths keep the rows aligned."""
    return [
        {
            "type": "ColumnSet",
            **({"spacing": "None"} if n else {}),
            "columns": [
                {"type": "Column", "width": 1, "items": _plain(label, weight="Bolder")},
                {"type": "Column", "width": 2, "items": _plain(value)},
            ],
        }
        for n, (label, value) in enumerate(items)
    ]


def message_card(message: Message, title: str = "") -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if title:
        body.extend(_plain(title, size="Large", weight="Bolder"))
    for block in message.blocks:
        if isinstance(block, Section):
            body.extend(_markup(block.text))
        elif isinstance(block, Fields):
            body.extend(_fields(block.items))
        elif isinstance(block, Actions):
            body.append(
                {
                    "type": "ActionSet",
                    "actions": [
                        {
                            "type": "Action.Submit",
                            "title": no_controls(b.label),
                            "data": {"action": b.action_id, "value": b.value},
                            **({"style": STYLE[b.style]} if b.style in STYLE else {}),
                        }
                        for b in block.buttons
                    ],
                }
            )
        elif isinstance(block, Context):
            for line in block.lines:
                body.extend(_plain(line, size="Small", isSubtle=True))
    if not body:
        body.extend(_plain(message.text))
    return _card(body)


def _choices(options: tuple[Option, ...]) -> list[dict[str, str]]:
    return [{"title": no_controls(o.label), "value": o.value} for o in options]


def _initial(inp: Input) -> str | None:
    v: Any = inp.initial
    if v is None:
        return None
    if isinstance(v, list | tuple):
        return ",".join(str(x) for x in v)
    return str(v)


def searchable(inp: Input) -> bool:
    """A pupil picker: its choices are the core's first pupils, or a search's matches."""
    return inp.kind in PUPIL_KINDS


def _input(
    inp: Input,
    options: tuple[Option, ...],
    value: str | None,
    error: str | None,
    validate: bool = True,
) -> dict[str, Any]:
    required = inp.required and validate
    el: dict[str, Any] = {
        "id": INPUT_PREFIX + inp.id,
        "label": no_controls(inp.label),
        "isRequired": required,
    }
    k = inp.kind
    if k in ("text", "long_text"):
        el["type"] = "Input.Text"
        if k == "long_text":
            el["isMultiline"] = True
        if inp.max_length:
            el["maxLength"] = inp.max_length
    elif k == "date":
        el["type"] = "Input.Date"
    elif k == "time":
        el["type"] = "Input.Time"
    elif k == "number":
        el["type"] = "Input.Number"
    else:
        el["type"] = "Input.ChoiceSet"
        el["choices"] = _choices(options)
        if k in MULTI:
            el["isMultiSelect"] = True
            el["style"] = "expanded" if k == "checkboxes" else "compact"
        else:
            el["style"] = "compact"
    if inp.placeholder and el["type"] in ("Input.Text", "Input.ChoiceSet", "Input.Number"):
        el["placeholder"] = no_controls(inp.placeholder)
    if value not in (None, ""):
        if el["type"] == "Input.Number":
            try:
                el["value"] = float(value) if "." in str(value) else int(str(value))
            except ValueError:
                pass
        else:
            el["value"] = no_controls(value)
    if required:
        # Our own words only: Teams may read errorMessage as markdown, and the core's error
        # (which can quote what was typed) is drawn under the field as text anyway.
        el["errorMessage"] = f"{el['label']} is required."
    return el


def _search_box(inp: Input, data: dict[str, Any], query: str, note: str) -> list[dict[str, Any]]:
    """The search box and button under a pupil picker (and a line about the last search)."""
    box: dict[str, Any] = {
        "type": "Input.Text",
        "id": SEARCH_PREFIX + inp.id,
        "label": "Find a pupil (name, class or UPN)",
        "placeholder": "e.g. part of a surname, or Year 3",
        "maxLength": 50,
    }
    if query:
        box["value"] = no_controls(query)
    button = {
        "type": "Action.Submit",
        "title": "Search",
        "data": dict(data, **{SEARCH_KEY: inp.id}),
    }
    out = [box, {"type": "ActionSet", "actions": [button], "spacing": "Small"}]
    if note:
        out.extend(_plain(note, size="Small", isSubtle=True, spacing="None"))
    return out


def form_card(
    form: Form,
    errors: dict[str, str] | None = None,
    queries: dict[str, str] | None = None,
    notes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The form as a card, its pickers' choices as the core sent them. ``errors`` (field id ->
    message) are shown in red under their fields; ``queries`` and ``notes`` (pupil picker id ->
    text) fill its search box and the line under it."""
    errors = errors or {}
    queries = queries or {}
    notes = notes or {}
    data = {"form": form.id, "state": dict(form.state), "spec": form_spec(form)}
    validate = not any(searchable(i) for i in form.inputs)
    body: list[dict[str, Any]] = _plain(form.title, size="Large", weight="Bolder")
    if form.intro:
        body.extend(_markup(form.intro))
    ids = {i.id for i in form.inputs}
    general = [msg for key, msg in errors.items() if key not in ids]
    if errors:
        body.extend(
            _plain(
                "Please fix the highlighted fields." if not general else " ".join(general),
                color="Attention",
                weight="Bolder",
            )
        )
    for inp in form.inputs:
        body.append(_input(inp, inp.options, _initial(inp), errors.get(inp.id), validate))
        if inp.hint:
            body.extend(_plain(inp.hint, size="Small", isSubtle=True, spacing="None"))
        if inp.id in errors:
            body.extend(_plain(errors[inp.id], color="Attention", size="Small", spacing="None"))
        if searchable(inp):
            body.extend(_search_box(inp, data, queries.get(inp.id, ""), notes.get(inp.id, "")))
    actions = [
        {
            "type": "Action.Submit",
            "title": no_controls(form.submit_label),
            "style": "positive",
            "data": data,
        }
    ]
    return _card(body, actions)


def closed_card(title: str, text: str) -> dict[str, Any]:
    return _card([*_plain(title, weight="Bolder"), *_plain(text, isSubtle=True)])


# ----- form definitions round-tripped through card data -----


def form_spec(form: Form) -> dict[str, Any]:
    """The form's definition, carried in the card's data, in plain JSON types (msrest would
    send a tuple as its repr); its state travels beside it. Written out field by field:
    ``dataclasses.asdict`` deep-copies every option, and cost more than the rest of a turn."""
    return {
        "id": form.id,
        "title": form.title,
        "inputs": [_input_spec(i) for i in form.inputs],
        "submit_label": form.submit_label,
        "intro": form.intro,
    }


def _input_spec(i: Input) -> dict[str, Any]:
    # People pickers are left empty: the core fills them in again when the card is redrawn.
    listed = () if i.kind in (*PUPIL_KINDS, "staff") else i.options
    return {
        "id": i.id,
        "label": i.label,
        "kind": i.kind,
        "required": i.required,
        "options": [{"value": o.value, "label": o.label} for o in listed],
        "initial": list(i.initial) if isinstance(i.initial, tuple) else i.initial,
        "placeholder": i.placeholder,
        "hint": i.hint,
        "max_length": i.max_length,
    }


def form_from_spec(spec: Any, state: dict[str, str]) -> Form | None:
    if not isinstance(spec, dict):
        return None
    try:
        inputs = tuple(
            Input(
                id=str(i["id"]),
                label=str(i["label"]),
                kind=i["kind"],
                required=bool(i.get("required", True)),
                options=tuple(
                    Option(str(o["value"]), str(o["label"])) for o in i.get("options") or ()
                ),
                initial=None,
                placeholder=str(i.get("placeholder") or ""),
                hint=str(i.get("hint") or ""),
                max_length=i.get("max_length"),
            )
            for i in spec["inputs"]
        )
        return Form(
            id=str(spec["id"]),
            title=str(spec["title"]),
            inputs=inputs,
            submit_label=str(spec.get("submit_label") or "Submit"),
            intro=str(spec.get("intro") or ""),
            state=dict(state),
        )
    except (KeyError, TypeError, ValueError):
        return None


def submitted_values(data: dict[str, Any], spec: Form | None) -> dict[str, SubmittedValue]:
    """Card inputs -> the Input value conventions (multi-selects as lists)."""
    multi = {i.id for i in spec.inputs if i.kind in MULTI} if spec else set()
    out: dict[str, SubmittedValue] = {}
    for key, raw in data.items():
        if not key.startswith(INPUT_PREFIX):
            continue
        name = key[len(INPUT_PREFIX) :]
        if isinstance(raw, list):
            out[name] = [str(x) for x in raw]
        elif name in multi:
            out[name] = [x.strip() for x in str(raw or "").split(",") if x.strip()]
        elif isinstance(raw, bool):
            out[name] = "true" if raw else "false"
        else:
            out[name] = "" if raw is None else str(raw)
    return out
