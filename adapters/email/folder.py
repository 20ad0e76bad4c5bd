"""Writes each email to a folder as an .eml file instead of sending it (the console demo), so
a newcomer can open what families and SLT would get in their own mail program."""

from __future__ import annotations

import re
from pathlib import Path

from chatbot.ports import OutgoingMail


class FolderEmail:
    name = "folder"

    def __init__(self, folder: Path, sender: str):
        self.folder = folder
        self.sender = sender

    def path(self, message_id: str) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9]+", "_", message_id).strip("_") + ".eml")

    async def send(self, mail: OutgoingMail) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path(mail.message_id).write_bytes(mail.raw)

    async def was_sent(self, message_id: str) -> bool | None:
        return self.path(message_id).exists()
