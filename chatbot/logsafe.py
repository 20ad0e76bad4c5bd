"""Keep personal data out of the logs, whatever level the school's IT technician picks.

Database libraries log SQL with its values, and the platform SDKs log whole request and
response bodies, at DEBUG (SQLAlchemy even at INFO). Those bodies can carry a concern's
narrative or a pupil's name, so these loggers are held at WARNING. Our own modules log ids,
references and error codes only.
"""

from __future__ import annotations

import logging

NOISY = (
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "slack_sdk",
    "slack_bolt",
    "chatbot.slack.bolt",
    "botbuilder",
    "botframework",
    "msrest",
    "aiohttp.client",
    "aiohttp.access",
    "aiosmtplib",  # logs each line of the conversation at DEBUG: addresses, passcodes
    "apscheduler",  # two lines at INFO for every run of every sweep: every two seconds
)


def quiet_libraries() -> None:
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
