"""`chatbot console`: wire a Runtime to the terminal."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

from adapters.console.app import Console, stdin_reader
from adapters.console.demo import DEMO_USER, intro, seed
from adapters.server import build_runtime
from chatbot.config import Settings

DEMO_MAIL_FOLDER = "outbox-mail"
DEMO_OFFICE = "office@ashlea.example"


def _absolute(folder: str) -> str:
    return os.path.abspath(folder)


async def run_console(settings: Settings, email: str | None, demo: bool) -> int:
    if demo and settings.mail_transport is None:
        # The demo sends no real email: it writes what it would send to a folder to open.
        settings = replace(
            settings, mail_folder=DEMO_MAIL_FOLDER, mail_from=settings.mail_from or DEMO_OFFICE
        )
    runtime = await build_runtime(settings)
    try:
        if demo:
            await seed(runtime.units)
            print(intro(runtime.units))
            if settings.mail_transport == "folder":
                where = _absolute(settings.mail_folder)
                print(
                    f"Emails the bot would send are written to {where}/ as .eml files: "
                    "open them with your mail program. Try /consent ask for Dylan.\n"
                )
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
