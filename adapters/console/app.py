"""A terminal chat that drives the same core as Slack and Teams.

Slash commands are typed as in Slack; forms become prompts with the same validation;
buttons become numbered choices, numbered afresh on each message and live only on the latest
message that has buttons (so a number never clicks a button on an older one); messages the
bot sends to other staff and to the DSL and SLT channels are printed as they are delivered.
Works with piped stdin too.

Names, plans and notes come from people and roster files: everything printed, prompts
included, passes through :func:`chatbot.ui.no_controls`, so no escape sequence in them reaches
the terminal.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from adapters.console.render import form_header, input_prompt, message_text
from adapters.server import Runtime
from chatbot.effects import (
    CloseForm,
    Effect,
    Ephemeral,
    FormErrors,
    OpenForm,
    Options,
    Popup,
    Reply,
    ShowHome,
    UpdateMessage,
)
from chatbot.interaction import Interaction, SubmittedValue, UserRef
from chatbot.ports import Role, StaffAddress
from chatbot.roster.importer import UPN_RE
from chatbot.ui import Button, Form, Input, Message, no_controls

ReadLine = Callable[[str], Awaitable[str | None]]
Write = Callable[[str], None]

HELP = """In this console:
  a number    clicks that button on the latest message with buttons
  cancel      stops a form you are filling in; nothing is saved
  /as EMAIL   act as another member of staff (e.g. to accept a co-host request)
  /quit       leave"""
IN_FORM = "You're filling in a form: answer the question, or type cancel to stop it first."
QUIT = ("/quit", "/exit", "quit", "exit")


async def stdin_reader(prompt: str) -> str | None:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        return None
    if not sys.stdin.isatty():
        sys.stdout.write(no_controls(line.rstrip("\n")) + "\n")
    return line.rstrip("\n")


@dataclass
class ConsoleMessenger:
    """Prints what Slack or Teams would deliver, and numbers its buttons for the console."""

    write: Write
    buttons: dict[int, tuple[Button, str]] = field(default_factory=dict)
    platform: str = "console"
    _n: int = 0

    def show(self, heading: str, message: Message, ref: str) -> None:
        numbered: dict[int, Button] = {}
        body = message_text(message, numbered)
        # Only the latest message with buttons answers to numbers: typing 2 meant for it must
        # never click button 2 of one further up. (A message without buttons, such as "You
        # acknowledged it" under the alert it updated, leaves that alert's buttons live.)
        if numbered:
            self.buttons = {k: (b, ref) for k, b in numbered.items()}
        self.write(f"\n--- {heading} ---\n{body}\n")

    async def send_to_staff(
        self, to: StaffAddress, message: Message, *, outbox_id: int | None = None
    ) -> str:
        self._n += 1
        ref = f"console-{self._n}"
        self.show(f"message to {to.display_name} <{to.email}>", message, ref)
        return ref

    async def post_to_role(
        self, role: Role, message: Message, *, outbox_id: int | None = None
    ) -> str:
        self._n += 1
        ref = f"console-{self._n}"
        self.show(f"posted in the {role.upper()} channel", message, ref)
        return ref

    async def update(self, ref: str, message: Message) -> None:
        self.show(f"message {ref} updated", message, ref)


class Console:
    def __init__(self, runtime: Runtime, email: str, read: ReadLine, write: Write):
        self.runtime = runtime
        self.email = email.strip().lower()
        self.read: ReadLine = lambda prompt: read(no_controls(prompt))
        self.write: Write = lambda text: write(no_controls(text))
        self.messenger = ConsoleMessenger(self.write)
        self.quitting = False  # /quit typed inside a form
        runtime.dispatcher.add(self.messenger)

    @property
    def user(self) -> UserRef:
        return UserRef(platform="console", user_id=self.email, email=self.email)

    async def run(self) -> int:
        self.write(f"Signed in as {self.email}. /help lists what you can do.\n")
        await self.pump()
        while True:
            line = await self.read(f"{self.email}> ")
            if line is None:
                return 0
            line = line.strip()
            if not line:
                continue
            if line.lower() in QUIT:
                return 0
            await self.line(line)
            if self.quitting:
                return 0
            await self.pump()

    async def line(self, line: str) -> None:
        if line.startswith("/as "):
            self.email = line[4:].strip().lower()
            self.write(f"Now acting as {self.email}.\n")
            return
        if line in ("/help", "help"):
            # The core's help lists the commands; the console adds only its own keys.
            await self.interact(
                Interaction(platform="console", kind="command", actor=self.user, text="/help")
            )
            self.write(HELP + "\n")
            return
        if line.isdigit():
            if int(line) not in self.messenger.buttons:
                self.write(
                    f"There is no [{line}] on the latest message with buttons, and numbers "
                    "click only those. /my-calls shows your calls again.\n"
                )
                return
            button, ref = self.messenger.buttons[int(line)]
            await self.interact(
                Interaction(
                    platform="console",
                    kind="action",
                    actor=self.user,
                    name=button.action_id,
                    value=button.value,
                    message_ref=ref,
                )
            )
            return
        if line.startswith("/"):
            await self.interact(
                Interaction(platform="console", kind="command", actor=self.user, text=line)
            )
            return
        await self.interact(
            Interaction(platform="console", kind="message", actor=self.user, text=line)
        )

    async def pump(self) -> None:
        """Run due sweeps and deliver the outbox, as the server's scheduler would."""
        await self.runtime.bot.sweep()
        await self.runtime.pump_mail()
        await self.runtime.dispatcher.drain()

    async def interact(self, i: Interaction) -> None:
        effects = await self.runtime.bot.handle(i)
        await self.apply(effects, i)

    async def apply(self, effects: list[Effect], origin: Interaction) -> None:
        for e in effects:
            if isinstance(e, (Reply, Ephemeral)):
                self.messenger.show("bot", e.message, "reply")
            elif isinstance(e, UpdateMessage):
                self.messenger.show(
                    f"message {origin.message_ref or ''} now reads",
                    e.message,
                    origin.message_ref or "reply",
                )
            elif isinstance(e, Popup):
                self.messenger.show(e.title, e.message, "popup")
            elif isinstance(e, OpenForm):
                await self.fill(e.form)
            elif isinstance(e, (CloseForm, Options, FormErrors, ShowHome)):
                continue  # FormErrors only arrive inside fill(); the console has no Home view

    async def fill(self, form: Form) -> None:
        self.write(form_header(form) + "\n")
        values: dict[str, SubmittedValue] = {}
        todo = list(form.inputs)
        while True:
            for inp in todo:
                value = await self.ask(inp)
                if value is None:
                    self.write("Form cancelled; nothing was saved.\n")
                    return
                values[inp.id] = value
            effects = await self.runtime.bot.handle(
                Interaction(
                    platform="console",
                    kind="submit",
                    actor=self.user,
                    name=form.id,
                    values=values,
                    state=dict(form.state),
                )
            )
            errors = next((e for e in effects if isinstance(e, FormErrors)), None)
            if errors is None:
                await self.apply(
                    effects, Interaction(platform="console", kind="submit", actor=self.user)
                )
                return
            self.write(
                "Please fix:\n"
                + "\n".join(
                    f"  - {form.input(k).label if k in {i.id for i in form.inputs} else k}: {v}"
                    for k, v in errors.errors.items()
                )
                + "\n"
            )
            todo = [i for i in form.inputs if i.id in errors.errors] or list(form.inputs)
            if errors.form is not None:
                form = errors.form

    async def ask(self, inp: Input) -> SubmittedValue | None:
        while True:
            if inp.options and inp.kind in ("select", "multi_select", "checkboxes"):
                for n, o in enumerate(inp.options, 1):
                    self.write(f"    {n}. {o.label}\n")
            raw = await self.read(f"  {input_prompt(inp)}: ")
            if raw is None or raw.strip().lower() == "cancel":
                return None
            raw = raw.strip()
            if raw.lower() in ("/quit", "/exit"):
                self.quitting = True
                return None
            if raw.startswith("/"):  # a command is not an answer
                self.write(f"    {IN_FORM}\n")
                continue
            if not raw and inp.initial:
                return list(inp.initial) if isinstance(inp.initial, tuple) else inp.initial
            if inp.options and raw.isdigit() and 1 <= int(raw) <= len(inp.options):
                value = inp.options[int(raw) - 1].value
                return [value] if inp.kind in ("multi_select", "checkboxes") else value
            if inp.kind in ("pupils", "pupil"):
                resolved = await self.pupils(raw)
                if resolved is None:
                    continue
                return resolved if inp.kind == "pupils" else (resolved[0] if resolved else "")
            if inp.kind in ("multi_select", "checkboxes"):
                return [x.strip() for x in raw.split(",") if x.strip()]
            return raw

    async def pupils(self, raw: str) -> list[str] | None:
        """Turn typed names or UPNs into UPNs, asking again when a name is ambiguous."""
        out: list[str] = []
        for part in (p.strip() for p in raw.split(",")):
            if not part:
                continue
            if UPN_RE.match(part.upper()):
                out.append(part.upper())
                continue
            effects = await self.runtime.bot.handle(
                Interaction(
                    platform="console",
                    kind="options",
                    actor=self.user,
                    name="pupils",
                    value="pupils",
                    text=part,
                )
            )
            opts = next((e.options for e in effects if isinstance(e, Options)), ())
            if len(opts) == 1:
                out.append(opts[0].value)
            elif not opts:
                self.write(f"    No pupil matches {part!r}.\n")
                return None
            else:
                self.write(f"    {part!r} matches several pupils; type the UPN:\n")
                for o in opts[:10]:
                    self.write(f"      {o.value}  {o.label}\n")
                return None
        return out
