"""Shared fixtures. The database is real: SQLite by default, PostgreSQL when
TEST_DATABASE_URL=postgresql+asyncpg://... (CI runs the suite on both)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import email_validator
import pytest
from sqlalchemy import select, text

from chatbot.consent import service as consent
from chatbot.interaction import Interaction, UserRef
from chatbot.outbox import Dispatcher
from chatbot.policy import Policy, default_policy
from chatbot.ports import FixedClock
from chatbot.roster import importer as roster
from chatbot.router import Bot
from chatbot.storage.db import Database
from chatbot.storage.models import Base
from chatbot.uow import Units
from tests.fakes import RecordingMessenger

# Test addresses use the reserved .test domain, which email-validator refuses outside tests.
email_validator.TEST_ENVIRONMENT = True

# Monday 30 November 2026, 08:00 in London (GMT, so also UTC): a school day, before hours.
MONDAY_8AM = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

# Everyone is DBS checked and trained (the staff checks rule has its own tests).
STAFF_CSV = """email,forename,surname,roles,dbs_checked,safeguarding_training
teacher@school.test,Tess,Teacher,staff,2024-09-02,2025-09-01
colleague@school.test,Colin,Colleague,staff,2024-09-02,2025-09-01
other@school.test,Olive,Other,staff,2024-09-02,2025-09-01
slt@school.test,Sally,Leader,staff;slt,2024-09-02,2025-09-01
dsl@school.test,Dee,Lead,staff;dsl,2024-09-02,2025-09-01
deputy@school.test,Dan,Deputy,staff;deputy_dsl,2024-09-02,2025-09-01
head@school.test,Hal,Head,staff;slt;admin,2024-09-02,2025-09-01
"""
PUPILS_CSV = """upn,forename,surname,class,parent_email
A123456789012,Sam,Taylor,Year 3,parent.sam@home.test
B123456789012,Zoë,Ørsted-Núñez,Year 3,parent.zoe@home.test
C123456789012,Noah,Nobody,Year 4,
"""


def database_url(tmp_path: Path) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp_path}/test.db"


def pg_schema() -> str:
    """Each test process gets its own PostgreSQL schema, so parallel runs don't collide."""
    return f"test_{os.getpid()}"


def open_database(url: str) -> Database:
    """A Database on ``url``; on PostgreSQL, confined to this process's schema."""
    if url.startswith("postgresql"):
        return Database(url, connect_args={"server_settings": {"search_path": pg_schema()}})
    return Database(url)


# PostgreSQL schemas of this process that hold exactly the tables create_all made (rows aside).
_AS_CREATED: set[str] = set()


async def fresh_database(url: str, create: bool = True) -> Database:
    """An empty database (tables created from the models unless ``create`` is False).

    On PostgreSQL a schema that create_all made for an earlier test is emptied with one
    TRUNCATE (ids restart at 1), a third of the time of dropping and creating its tables; a
    schema a test migrated itself (``create=False``) is dropped and made afresh."""
    db = open_database(url)
    if db.dialect == "postgresql":
        schema = pg_schema()
        if create and schema in _AS_CREATED:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            async with db.engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            return db
        _AS_CREATED.discard(schema)
        async with db.engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        if create:
            await db.create_all()
            _AS_CREATED.add(schema)
        return db
    if create:
        await db.create_all()
    return db


async def snapshot(db: Database, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (but ``skip``), to show that a request changed nothing."""
    out: dict[str, list[tuple[object, ...]]] = {}
    async with db.reading() as s:
        for table in Base.metadata.sorted_tables:
            if table.name not in skip:
                rows = await s.execute(select(table).order_by(*table.primary_key.columns))
                out[table.name] = [tuple(row) for row in rows]
    return out


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing was logged as an error or with a traceback."""
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage()[:200] for r in bad]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return database_url(tmp_path)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await fresh_database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY_8AM)


@pytest.fixture
def policy() -> Policy:
    return default_policy()


@pytest.fixture
def core(db: Database, policy: Policy, clock: FixedClock) -> Units:
    return Units(db=db, policy=policy, clock=clock)


@pytest.fixture
def messenger() -> RecordingMessenger:
    return RecordingMessenger()


@pytest.fixture
def dispatcher(db: Database, clock: FixedClock, messenger: RecordingMessenger) -> Dispatcher:
    return Dispatcher(db, clock, messenger)


@pytest.fixture
def bot(core: Units) -> Bot:
    from chatbot.bootstrap import build_bot

    return build_bot(core)


@pytest.fixture
async def school(core: Units) -> Units:
    """Staff with every role, three pupils; Sam and Zoë have written consent, Noah has none."""
    await roster.import_staff(core, STAFF_CSV)
    await roster.import_pupils(core, PUPILS_CSV)
    for upn, parent in (
        ("A123456789012", "parent.sam@home.test"),
        ("B123456789012", "parent.zoe@home.test"),
    ):
        async with core.write() as u:
            res = await consent.grant(
                u,
                upn=upn,
                parent_email=parent,
                received_at=MONDAY_8AM,
                evidence_kind="message_id",
                evidence="<abc@home.test> Re: video calls",
                actor=None,
            )
        assert not res.errors
    return core


def user(email: str, platform: str = "console") -> UserRef:
    return UserRef(platform=platform, user_id=email, email=email)  # type: ignore[arg-type]


def command(email: str, name: str, text: str = "") -> Interaction:
    """``/name text`` typed by ``email``."""
    return Interaction(
        platform="console", kind="command", actor=user(email), text=f"/{name} {text}".strip()
    )


def submit(
    email: str, form: str, values: dict[str, object], state: dict[str, str] | None = None
) -> Interaction:
    return Interaction(
        platform="console",
        kind="submit",
        actor=user(email),
        name=form,
        values=values,
        state=state or {},
    )  # type: ignore[arg-type]


def action(email: str, name: str, value: str, message_ref: str | None = "m1") -> Interaction:
    return Interaction(
        platform="console",
        kind="action",
        actor=user(email),
        name=name,
        value=value,
        message_ref=message_ref,
    )


HOST = "teacher@school.test"
COHOST = "colleague@school.test"
# A booking every rule allows: Tuesday 1 December 2026, 10:00-10:20 (GMT, so also UTC).
GOOD: dict[str, object] = {
    "pupils": ["A123456789012"],
    "kind": "one_to_one",
    "date": "2026-12-01",
    "start": "10:00",
    "duration": "20",
    "cohost": COHOST,
    "platform": "Zoom",
    "plan": "Sam shares his reading book.",
}
