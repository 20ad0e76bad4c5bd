"""Each confirmed Zoom call's meeting, made by the bot with the policy's settings, and what
Zoom reports about it afterwards.

- :mod:`.rules`: what the policy requires of a meeting and of a host's account (pure).
- :mod:`.service`: called by the booking services inside their unit of work; it writes the
  ``meeting`` row that the worker acts on, so the work exists if and only if the booking
  change that calls for it was committed.
- :mod:`.worker`: brings the meeting on the platform into line with the booking through the
  :class:`chatbot.ports.Meetings` port (create, read back, update, delete), with retries.
- :mod:`.events`: the platform's events (started, ended, joined, left, waiting room), and the
  alerts drawn from them.
"""
