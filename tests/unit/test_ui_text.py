"""The core's one piece of markup (``**bold**``) can always be told apart from people's text,
and control characters never leave the bot."""

from __future__ import annotations

import pytest

from chatbot.ui import esc, no_controls, spans, unmarked

TRICKY = [
    "**bold**",
    "a*b",
    "***",
    "ends with a backslash \\",
    "\\**not bold\\**",
    "x ** y",
    "<!channel> [click](https://evil.example) _x_",
    "Zoë Ørsted-Núñez",
]


@pytest.mark.parametrize("text", TRICKY)
def test_text_through_esc_is_shown_exactly_and_never_bold(text: str) -> None:
    assert unmarked(esc(text)) == text
    assert spans(esc(text)) == [(text, False)]
    assert spans(f"**Plan:** {esc(text)}") == [("Plan:", True), (f" {text}", False)]
    assert spans(f"**{esc(text)}** asks") == [(text, True), (" asks", False)]


def test_core_markup() -> None:
    assert spans("**Your calls**") == [("Your calls", True)]
    assert spans("a **b** c **d**") == [("a ", False), ("b", True), (" c ", False), ("d", True)]
    assert spans("a ** b") == [("a ** b", False)]  # no partner: shown as it is
    assert spans("**a** and ** b") == [("a", True), (" and ** b", False)]
    assert spans("C:\\temp") == [("C:\\temp", False)]  # a lone backslash is text
    assert spans("") == []


def test_no_controls() -> None:
    osc8 = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07"
    assert no_controls(osc8) == "]8;;https://evil.exampleclick]8;;"
    assert no_controls("a\x1b[2Jb\x00c\x7fd\x85e\x9bf") == "a[2Jbcdef"
    assert no_controls("\u202eexe.txt \u2066x\u2069") == "exe.txt x"
    kept = "Line one\n\tLine two · Zoë · محمد · 李"
    assert no_controls(kept) == kept
