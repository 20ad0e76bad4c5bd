"""Reading the school's Microsoft 365 mailbox for consent replies and bounces (every few
minutes when GRAPH_POLL_MINUTES is set). Only messages that look like ours are fetched: a
consent reference in the subject or address, or a delivery report. The office's other mail
is listed (subject and addresses only) and left alone, unread."""

from __future__ import annotations

import logging
import re

from sqlalchemy.exc import IntegrityError

from chatbot.consent.by_email import take_in
from chatbot.mail.inbound import MAX_MESSAGE_BYTES, TOKEN_RE
from chatbot.ports import Mailbox, MailboxItem
from chatbot.storage.models import MailboxCursor
from chatbot.uow import Units

log = logging.getLogger("chatbot.mail.poll")
CURSOR = "graph:inbox"
_BOUNCE = re.compile(
    r"^(undeliverable|undelivered|delivery status notification|mail delivery failed|"
    r"returned mail|delivery has failed)",
    re.IGNORECASE,
)


def looks_like_ours(item: MailboxItem) -> bool:
    if TOKEN_RE.search(item.subject) or _BOUNCE.match(item.subject.strip()):
        return True
    return any("+consent-" in address.lower() for address in item.recipients)


async def poll_mailbox(units: Units, mailbox: Mailbox) -> int:
    """Take in what arrived since the last poll; returns how many messages were looked at."""
    async with units.read() as u:
        cursor = await u.session.get(MailboxCursor, CURSOR)
        since = cursor.after if cursor else None
    items = await mailbox.received_since(since)
    looked = 0
    newest = since
    for item in sorted(items, key=lambda i: i.received_at):
        if looks_like_ours(item):
            looked += 1
            raw = await mailbox.raw(item.ref, MAX_MESSAGE_BYTES)
            if raw is None:
                log.warning("mailbox: a message over %d bytes was not taken in", MAX_MESSAGE_BYTES)
            else:
                try:
                    async with units.write() as u:
                        outcome = await take_in(u, raw, "mailbox")
                except IntegrityError:  # another replica took the same message in just now
                    continue
                kept = "kept" if outcome.kept else "not kept"
                log.info("mailbox: a message was %s (%s)", kept, outcome.code)
        newest = item.received_at if newest is None else max(newest, item.received_at)
    if newest is not None and newest != since:
        async with units.write() as u:
            row = await u.session.get(MailboxCursor, CURSOR)
            if row is None:
                u.session.add(MailboxCursor(name=CURSOR, after=newest))
            else:
                row.after = max(row.after, newest)
    return looked
