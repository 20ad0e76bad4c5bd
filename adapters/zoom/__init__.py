"""Zoom adapter: the REST client behind the core's Meetings port, and Zoom's webhooks.

With ``ZOOM_ACCOUNT_ID``, ``ZOOM_CLIENT_ID`` and ``ZOOM_CLIENT_SECRET`` set,
:func:`adapters.zoom.app.mount` tells the core that confirmed Zoom calls get their meeting from
the bot and schedules the meetings worker (:mod:`chatbot.meetings.worker`) beside the outbox;
with ``ZOOM_WEBHOOK_SECRET`` too, ``POST /zoom/events`` records who really joined. Without them
the bot works as before and the start-up log says so.

This module holds only what the command line shares with the server, so that ``chatbot``
commands (``chatbot zoom check`` among them) start without loading the web server.
"""

from __future__ import annotations

from chatbot.config import Settings

EVENTS_PATH = "/zoom/events"
NOT_CONFIGURED = """Zoom is not connected: hosts set up their meetings by hand, as the checklist
says, and POST /zoom/events is switched off. To let the bot create each confirmed call's
meeting with the policy's settings and see who joins, set ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID,
ZOOM_CLIENT_SECRET and ZOOM_WEBHOOK_SECRET (README, "Connecting Zoom"); `chatbot zoom check`
says what is missing."""


def missing(settings: Settings) -> list[str]:
    """The Zoom settings not given, by their environment names."""
    return [
        name
        for name, value in (
            ("ZOOM_ACCOUNT_ID", settings.zoom_account_id),
            ("ZOOM_CLIENT_ID", settings.zoom_client_id),
            ("ZOOM_CLIENT_SECRET", settings.zoom_client_secret),
            ("ZOOM_WEBHOOK_SECRET", settings.zoom_webhook_secret),
        )
        if not value
    ]
