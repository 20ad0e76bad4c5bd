"""The core never imports a platform SDK: adapters translate, chatbot/ decides."""

from __future__ import annotations

import ast
from pathlib import Path

import chatbot

FORBIDDEN = ("slack_bolt", "slack_sdk", "botbuilder", "botframework")
CORE = Path(chatbot.__file__).parent


def platform_imports(source: str, filename: str = "<string>") -> list[str]:
    """Every platform SDK module imported by ``source`` (import, from-import, or a dynamic
    import of a literal name via importlib.import_module / __import__)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args:
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            arg = node.args[0]
            if (
                called in ("import_module", "__import__")
                and isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
            ):
                names = [arg.value]
        found += [n for n in names if n.split(".")[0] in FORBIDDEN]
    return found


def test_checker_catches_every_form() -> None:
    assert platform_imports("import slack_sdk") == ["slack_sdk"]
    assert platform_imports("import os, slack_bolt.app as a") == ["slack_bolt.app"]
    assert platform_imports("from botbuilder.core import TurnContext") == ["botbuilder.core"]
    assert platform_imports("def f():\n    from botframework.connector import x\n") == [
        "botframework.connector"
    ]
    assert platform_imports("import importlib\nimportlib.import_module('slack_sdk.web')") == [
        "slack_sdk.web"
    ]
    assert platform_imports("__import__('botbuilder')") == ["botbuilder"]
    assert platform_imports("if TYPE_CHECKING:\n    import slack_bolt\n") == ["slack_bolt"]
    assert platform_imports("import slackish\nfrom . import slack_sdk\nimport bot") == []


def test_core_imports_no_platform_sdk() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 20 and CORE / "router.py" in files  # really looking at the core
    offenders = {
        str(f.relative_to(CORE.parent)): hits
        for f in files
        if (hits := platform_imports(f.read_text(encoding="utf-8"), str(f)))
    }
    assert offenders == {}, f"chatbot/ must not import platform SDKs: {offenders}"
