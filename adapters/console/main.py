"""`chatbot console`: wire a Runtime to the terminal."""

from __future__ import annotations

import sys

from adapters.console.app import Console, stdin_reader
from adapters.console.demo import DEMO_USER, intro, seed
from adapters.server import build_runtime
from chatbot.config import Settings


async def run_console(settings: Settings, email: str | None, demo: bool) -> int:
    runtime = await build_runtime(settings)
    try:
        if demo:
            await seed(runtime.units)
            print(intro(runtime.units))
        who = email or (DEMO_USER if demo else None)
        if not who:
            print(
                "Say who you are: chatbot console --as you@school.uk (or --demo).", file=sys.stderr
            )
            return 2
        console = Console(runtime, who, stdin_reader, lambda s: print(s, end="", flush=True))
        return await console.run()
    finally:
        await runtime.units.db.dispose()
