"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import chatbot
from chatbot.storage import migrate
from chatbot.storage.models import Base
from tests.conftest import fresh_database


def import_every_model() -> None:
    """Import the whole core so every table any module declares is in Base.metadata."""
    for mod in pkgutil.walk_packages(chatbot.__path__, "chatbot."):
        if ".migrations" not in mod.name:
            importlib.import_module(mod.name)


def differences(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": False}
    )
    return list(compare_metadata(ctx, Base.metadata))


def head() -> str | None:
    return ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


async def test_upgrade_builds_the_models_schema(db_url: str, tmp_path: Path) -> None:
    import_every_model()
    db = await fresh_database(db_url, create=False)
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert tables == []  # really empty
        assert await migrate.current(db) is None

        await migrate.upgrade(db)
        assert await migrate.current(db) == head()
        async with db.engine.connect() as conn:
            diffs = await conn.run_sync(differences)
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert diffs == [], diffs
        assert set(Base.metadata.tables) <= tables

        await migrate.upgrade(db)  # a second upgrade is a no-op
        assert await migrate.current(db) == head()
    finally:
        await db.dispose()


async def test_comparison_is_not_vacuous(db_url: str) -> None:
    """The same comparison does report a table the migrations lack."""
    from sqlalchemy import Column, Integer, MetaData, Table

    probe = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(probe)
    Table("zz_probe", probe, Column("id", Integer, primary_key=True))

    def probe_differences(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), probe))

    db = await fresh_database(db_url, create=False)
    try:
        await migrate.upgrade(db)
        async with db.engine.connect() as conn:
            diffs = await conn.run_sync(probe_differences)
        assert [d[0] for d in diffs] == ["add_table"] and diffs[0][1].name == "zz_probe"
    finally:
        await db.dispose()


async def test_migrated_database_works(db_url: str) -> None:
    """The app runs on a migrated database, not only on one made by create_all."""
    from chatbot.policy import default_policy
    from chatbot.ports import FixedClock
    from chatbot.roster import importer as roster
    from chatbot.uow import Units
    from tests.conftest import MONDAY_8AM, PUPILS_CSV, STAFF_CSV

    db = await fresh_database(db_url, create=False)
    try:
        await migrate.upgrade(db)
        core = Units(db=db, policy=default_policy(), clock=FixedClock(MONDAY_8AM))
        assert (await roster.import_staff(core, STAFF_CSV)).created == 7
        assert (await roster.import_pupils(core, PUPILS_CSV)).created == 3
    finally:
        await db.dispose()


async def triggers(db: Any) -> set[str]:
    from sqlalchemy import text

    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        if db.dialect == "sqlite"
        else "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
    )
    async with db.engine.connect() as conn:
        return set((await conn.execute(text(query))).scalars())


async def test_migrations_create_the_same_protective_triggers(db_url: str) -> None:
    """The records the database itself protects (audit trail, concern reports, chronology)
    are protected on a migrated database exactly as on one made from the models."""
    import_every_model()
    db = await fresh_database(db_url, create=False)
    try:
        await migrate.upgrade(db)
        migrated = await triggers(db)
    finally:
        await db.dispose()
    db = await fresh_database(db_url)
    try:
        modelled = await triggers(db)
    finally:
        await db.dispose()
    assert migrated == modelled
    assert {"concern_report_fixed", "concern_event_no_update"} <= migrated


async def test_0009_keeps_what_was_there(db_url: str) -> None:
    """Rows made before 0009 gain their search keys, and consents their day: one recorded
    with a date alone (stored at midnight, school time, until now) becomes a date."""
    from sqlalchemy import text

    db = await fresh_database(db_url, create=False)
    try:
        await migrate.upgrade(db, "0008")
        async with db.engine.begin() as conn:
            now = "2026-11-30 08:00:00"
            for table, email in (("staff", "'chloe@school.test', "), ("pupil", "")):
                cols = "email, " if table == "staff" else "upn, class_name, "
                key = "'A123456789012', 'Year 3', " if table == "pupil" else email
                extra = ", roles" if table == "staff" else ""
                more = ", 'staff'" if table == "staff" else ""
                await conn.execute(
                    text(
                        f"INSERT INTO {table} ({cols}forename, surname, active, created_at, "
                        f"updated_at{extra}) VALUES ({key}'Chloé', 'Ørsted', true, '{now}', "
                        f"'{now}'{more})"
                    )
                )
            for received in ("2026-07-01 23:00:00", "2026-11-29 18:05:00"):  # BST midnight; GMT
                await conn.execute(
                    text(
                        "INSERT INTO consent (pupil_id, parent_email, received_at, evidence_kind, "
                        "evidence, recorded_by_label, recorded_at) VALUES (1, 'p@home.test', "
                        f"'{received}', 'message_id', '<a@b> Re: x', 'cli', '{now}')"
                    )
                )
        await migrate.upgrade(db)
        async with db.engine.connect() as conn:
            keys = (await conn.execute(text("SELECT search_key FROM staff"))).scalars().all()
            assert keys == ["chloe orsted"]
            keys = (await conn.execute(text("SELECT search_key FROM pupil"))).scalars().all()
            assert keys == ["chloe orsted"]
            rows = (
                await conn.execute(text("SELECT received_on, received_at FROM consent ORDER BY id"))
            ).all()
        assert [str(r[0]) for r in rows] == ["2026-07-02", "2026-11-29"]
        assert rows[0][1] is None and rows[1][1] is not None
    finally:
        await db.dispose()
