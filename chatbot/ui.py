r"""UI-neutral building blocks: messages and forms.

Slack renders these as Block Kit, Teams as Adaptive Cards, the console as plain text.
Everything here is plain data so it can be stored in the outbox as JSON and rendered later.

Text from people (names, plans, notes, anything from a roster file) is shown as text on every
surface. Two kinds of string carry it:

- **Markup**: ``Section.text`` and ``Form.intro``. ``**bold**`` is the core's only markup.
  Text that is not ours goes in through :func:`esc`, which backslash-escapes ``*`` and ``\``,
  so a name written ``**x**`` can never open or close the core's bold. Adapters read markup
  with :func:`spans` only, and show every run as literal text in their own way.
- **Plain**: everything else (``Message.text``, ``Fields``, ``Context`` lines, button, option,
  input and form labels, hints, titles). No markup at all; adapters show it literally.

Either way the adapter neutralises its platform's own syntax in every run (Slack escapes
``& < >``; Teams draws text where markdown is not parsed; the console drops terminal control
sequences), and :func:`no_controls` removes control and bidi-override characters everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

ButtonStyle = Literal["default", "primary", "danger"]

_MARKUP = re.compile(r"\\[\\*]|\*\*")
# C0 controls except tab and newline, DEL and C1 controls: a terminal acts on them (ESC starts
# colour, cursor and OSC 8 hyperlink sequences), and no chat client needs them. Then the bidi
# embeddings, overrides and isolates (the "Trojan Source" set): they make text display in an
# order other than it is stored, so a name could seem to say what it does not.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def esc(text: str) -> str:
    """Text that is not ours, made safe to put inside markup (``Section.text``, ``intro``)."""
    return text.replace("\\", "\\\\").replace("*", "\\*")


def spans(markup: str) -> list[tuple[str, bool]]:
    """Markup as runs of ``(text, bold)``, escapes resolved. A ``**`` without a partner is
    shown as it is."""
    tokens: list[str | None] = []  # None: a ``**`` marker
    pos = 0
    for m in _MARKUP.finditer(markup):
        tokens.append(markup[pos : m.start()])
        tokens.append(None if m.group() == "**" else m.group()[1])
        pos = m.end()
    tokens.append(markup[pos:])
    if tokens.count(None) % 2:
        last = len(tokens) - 1 - tokens[::-1].index(None)
        tokens[last] = "**"
    runs: list[tuple[str, bool]] = []
    bold = False
    for token in tokens:
        if token is None:
            bold = not bold
        elif runs and runs[-1][1] == bold:
            runs[-1] = (runs[-1][0] + token, bold)
        elif token:
            runs.append((token, bold))
    return runs


def unmarked(markup: str) -> str:
    """Markup as plain text (the console, notification summaries)."""
    return "".join(text for text, _ in spans(markup))


def no_controls(text: str) -> str:
    """``text`` without control characters (tab and newline kept) or bidi overrides."""
    return _UNSAFE.sub("", text) if _UNSAFE.search(text) else text


def clip_words(text: str, limit: int) -> str:
    """``text`` shortened at a word boundary, with "…", to at most ``limit`` characters (for a
    platform's limit on a button, option or title). Never cut mid-word."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:-") + "…"


@dataclass(frozen=True)
class Button:
    action_id: str
    label: str
    value: str = ""
    style: ButtonStyle = "default"


@dataclass(frozen=True)
class Section:
    """A paragraph of markup: ``**bold**``; anything not ours goes in through :func:`esc`."""

    text: str
    kind: Literal["section"] = "section"


@dataclass(frozen=True)
class Fields:
    """Label/value pairs shown as a compact grid (plain text)."""

    items: tuple[tuple[str, str], ...]
    kind: Literal["fields"] = "fields"


@dataclass(frozen=True)
class Actions:
    buttons: tuple[Button, ...]
    kind: Literal["actions"] = "actions"


@dataclass(frozen=True)
class Context:
    """Small print under a message (plain text)."""

    lines: tuple[str, ...]
    kind: Literal["context"] = "context"


Block = Section | Fields | Actions | Context


def _block_json(b: Block) -> dict[str, Any]:
    # Hand-written rather than dataclasses.asdict: this runs for every outbox row.
    if isinstance(b, Section):
        return {"kind": b.kind, "text": b.text}
    if isinstance(b, Fields):
        return {"kind": b.kind, "items": [list(item) for item in b.items]}
    if isinstance(b, Actions):
        return {
            "kind": b.kind,
            "buttons": [
                {"action_id": x.action_id, "label": x.label, "value": x.value, "style": x.style}
                for x in b.buttons
            ],
        }
    return {"kind": b.kind, "lines": list(b.lines)}


@dataclass(frozen=True)
class Message:
    """A chat message: ``text`` is the plain fallback (notifications, screen readers)."""

    text: str
    blocks: tuple[Block, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": [_block_json(b) for b in self.blocks]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        blocks: list[Block] = []
        for b in data.get("blocks", []):
            kind = b.get("kind")
            if kind == "section":
                blocks.append(Section(b["text"]))
            elif kind == "fields":
                blocks.append(Fields(tuple((str(k), str(v)) for k, v in b["items"])))
            elif kind == "actions":
                blocks.append(
                    Actions(
                        tuple(
                            Button(x["action_id"], x["label"], x.get("value", ""), x["style"])
                            for x in b["buttons"]
                        )
                    )
                )
            elif kind == "context":
                blocks.append(Context(tuple(b["lines"])))
            else:  # pragma: no cover - only our own JSON is stored
                raise ValueError(f"unknown block kind {kind!r}")
        return cls(text=data["text"], blocks=tuple(blocks))

    def buttons(self) -> list[Button]:
        return [btn for b in self.blocks if isinstance(b, Actions) for btn in b.buttons]


InputKind = Literal[
    "text",
    "long_text",
    "date",
    "time",
    "number",
    "select",
    "multi_select",
    "staff",
    "pupils",
    "pupil",
    "checkboxes",
]


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class Input:
    """One form field.

    Value conventions every adapter must follow when it submits a form:
    ``date`` is ``YYYY-MM-DD``, ``time`` is ``HH:MM`` (24 hour), ``number`` a decimal string,
    ``select``/``pupil`` a single option value, ``multi_select``/``pupils``/``checkboxes`` a
    list of option values, ``staff`` the colleague's email address (adapters resolve their
    own user pickers to an email), pupils by UPN. Missing optional values are omitted or "".
    """

    id: str
    label: str
    kind: InputKind
    required: bool = True
    options: tuple[Option, ...] = ()
    initial: str | tuple[str, ...] | None = None
    placeholder: str = ""
    hint: str = ""
    max_length: int | None = None


@dataclass(frozen=True)
class Form:
    """A modal dialog (Slack modal, Teams card/task module, console prompts).

    ``state`` round-trips untouched through the platform (Slack ``private_metadata``,
    Teams card data) and comes back in the submit interaction.
    """

    id: str
    title: str
    inputs: tuple[Input, ...]
    submit_label: str = "Submit"
    intro: str = ""
    state: dict[str, str] = field(default_factory=dict)

    def input(self, input_id: str) -> Input:
        for i in self.inputs:
            if i.id == input_id:
                return i
        raise KeyError(input_id)
