"""Plain-text rendering of the core's neutral messages and forms.

The terminal shows no bold, so markup is printed as its text. What a terminal would act on
(escape sequences that recolour, clear the screen or make an OSC 8 hyperlink; bidi overrides)
is removed by :class:`adapters.console.app.Console` from everything it prints.
"""

from __future__ import annotations

from chatbot.ui import Actions, Button, Context, Fields, Form, Input, Message, Section, unmarked


def plain(markup: str) -> str:
    return unmarked(markup)


def message_text(message: Message, number: dict[int, Button] | None = None, start: int = 1) -> str:
    """Render a message; buttons are numbered from ``start`` and recorded in ``number``."""
    lines: list[str] = []
    n = start
    if not message.blocks:
        lines.append(message.text)
    for block in message.blocks:
        if isinstance(block, Section):
            lines.append(plain(block.text))
        elif isinstance(block, Fields):
            width = max(len(k) for k, _ in block.items) if block.items else 0
            lines.extend(f"  {k.ljust(width)}  {v}" for k, v in block.items)
        elif isinstance(block, Context):
            lines.extend(f"  ({line})" for line in block.lines)
        elif isinstance(block, Actions):
            for b in block.buttons:
                if number is not None:
                    number[n] = b
                lines.append(f"  [{n}] {b.label}")
                n += 1
    return "\n".join(lines)


def input_prompt(i: Input) -> str:
    kind_hint = {
        "date": "YYYY-MM-DD",
        "time": "HH:MM, 24-hour",
        "number": "a number",
        "staff": "a colleague's school email",
        "pupils": "names or UPNs, separated by commas",
        "pupil": "a name or UPN",
        "long_text": "one line",
    }.get(i.kind, "")
    parts = [i.label]
    if kind_hint:
        parts.append(f"({kind_hint})")
    if not i.required:
        parts.append("[optional]")
    if i.initial:
        # Shown as people read it: a choice by its label, a pupil by name, never a code or UPN.
        labels = {o.value: o.label for o in i.options}
        chosen = i.initial if isinstance(i.initial, tuple) else (i.initial,)
        parts.append(f"[{', '.join(labels.get(v, v) for v in chosen)}]")
    return " ".join(parts)


def form_header(form: Form) -> str:
    head = f"== {form.title} ==  (type 'cancel' to stop)"
    return f"{head}\n{plain(form.intro)}" if form.intro else head
