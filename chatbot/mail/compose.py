"""Building an email: our words as a :class:`Letter`, rendered to plain text and HTML by
Jinja2 templates (HTML autoescaped, so names, plans and links from people are shown as text),
then made into one MIME message with the standard library's ``email`` package."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import jinja2
from email_validator import EmailNotValidError, validate_email

from chatbot.ui import Context, Fields, Message, Section, unmarked


@dataclass(frozen=True)
class Para:
    text: str
    kind: str = "para"


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]
    kind: str = "bullets"


@dataclass(frozen=True)
class Facts:
    rows: tuple[tuple[str, str], ...]
    kind: str = "facts"


@dataclass(frozen=True)
class Link:
    label: str
    url: str  # checked by the caller: https only
    kind: str = "link"


Block = Para | Bullets | Facts | Link


@dataclass(frozen=True)
class Letter:
    subject: str
    blocks: tuple[Block, ...]


_TEXT = """\
{%- for b in blocks %}
{%- if b.kind == "para" %}{{ b.text }}
{% elif b.kind == "bullets" %}{% for i in b.items %}- {{ i }}
{% endfor %}{% elif b.kind == "facts" %}{% for k, v in b.rows %}{{ k }}: {{ v }}
{% endfor %}{% elif b.kind == "link" %}{{ b.label }}: {{ b.url }}
{% endif %}
{% endfor -%}
"""

_HTML = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: Arial, sans-serif; font-size: 15px; line-height: 1.4">
{%- for b in blocks %}
{%- if b.kind == "para" %}
<p>{{ b.text }}</p>
{%- elif b.kind == "bullets" %}
<ul>{% for i in b.items %}<li>{{ i }}</li>{% endfor %}</ul>
{%- elif b.kind == "facts" %}
<table>{% for k, v in b.rows %}
<tr><th align="left">{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
</table>
{%- elif b.kind == "link" %}
<p><a href="{{ b.url }}">{{ b.label }}</a></p>
{%- endif %}
{%- endfor %}
</body></html>
"""

_text_env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
_html_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
TEXT_TEMPLATE = _text_env.from_string(_TEXT)
HTML_TEMPLATE = _html_env.from_string(_HTML)


def render_text(letter: Letter) -> str:
    return TEXT_TEMPLATE.render(blocks=letter.blocks).rstrip() + "\n"


def render_html(letter: Letter) -> str:
    return HTML_TEMPLATE.render(subject=letter.subject, blocks=letter.blocks)


class BadAddress(ValueError):
    pass


def checked_address(raw: str) -> str:
    """A single email address, checked for form (not deliverability) and lower-cased.
    Raises :class:`BadAddress` with a message fit to show."""
    try:
        found = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise BadAddress(str(exc)) from None
    return str(found.normalized).lower()


def plus_address(address: str, tag: str) -> str:
    """``office@school.uk`` + ``consent-x`` -> ``office+consent-x@school.uk`` (sub-addressing:
    Google Workspace and Microsoft 365 deliver it to the office mailbox)."""
    local, _, domain = address.partition("@")
    return f"{local.split('+', 1)[0]}+{tag}@{domain}"


_TOKEN_IN_ADDRESS = re.compile(r"\+consent-([a-z0-9]{16,40})@", re.IGNORECASE)


def new_message_id(sender: str) -> str:
    """A Message-ID on the school's domain, made before the first attempt and kept."""
    return f"<{uuid.uuid4().hex}@{sender.partition('@')[2] or 'localhost'}>"


def build(
    letter: Letter,
    *,
    sender: str,
    sender_name: str,
    to: tuple[str, ...],
    message_id: str,
    at: datetime,
    reply_to: str | None = None,
) -> bytes:
    """The whole MIME message: text and HTML alternatives, Message-ID, Date, From, Reply-To."""
    m = EmailMessage()
    m["From"] = formataddr((sender_name, sender))
    m["To"] = ", ".join(to)
    m["Reply-To"] = reply_to or sender
    m["Subject"] = letter.subject
    m["Date"] = format_datetime(at)
    m["Message-ID"] = message_id
    m.set_content(render_text(letter))
    m.add_alternative(render_html(letter), subtype="html")
    return m.as_bytes()


def letter_from_message(subject: str, message: Message) -> Letter:
    """A chat notice (an SLT notice, say) as an email: its sections, fields and small print."""
    blocks: list[Block] = []
    for b in message.blocks:
        if isinstance(b, Section):
            blocks.append(Para(unmarked(b.text)))
        elif isinstance(b, Fields):
            blocks.append(Facts(b.items))
        elif isinstance(b, Context):
            blocks.extend(Para(line) for line in b.lines)
    return Letter(subject, tuple(blocks) or (Para(message.text),))
