"""Meetings answer no commands: they register the sweep that raises the alerts drawn from
what Zoom reported (the worker that talks to Zoom is scheduled by the Zoom adapter)."""

from __future__ import annotations

from chatbot.meetings import events
from chatbot.registry import Registry


def register(r: Registry) -> None:
    r.sweep("meeting_alerts", events.run_sweeps)
