"""consent dates, pupils video may not suit, staff checks, calls on hold, search keys, the
school calendar

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime, time, tzinfo

import sqlalchemy as sa
from alembic import op

import chatbot.storage.models
from chatbot.search_key import fold

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC_DATETIME = chatbot.storage.models.UTCDateTime()


def _school_zone() -> tzinfo:
    """The school's time zone, from its policy file (as the server reads it)."""
    from chatbot.policy import policy_from_env

    return policy_from_env().zone


def upgrade() -> None:
    # Only ADD COLUMN on staff and pupil: changing a column there would make SQLite rebuild
    # the table, which other tables' rows refer to. So search_key is NOT NULL from the start,
    # with an empty default until it is filled in below.
    for name in ("staff", "pupil"):
        with op.batch_alter_table(name) as batch_op:
            batch_op.add_column(
                sa.Column("search_key", sa.String(length=400), server_default="", nullable=False)
            )
    with op.batch_alter_table("staff") as batch_op:
        batch_op.add_column(sa.Column("dbs_checked", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("safeguarding_training", sa.Date(), nullable=True))
    with op.batch_alter_table("pupil") as batch_op:
        batch_op.add_column(sa.Column("video_unsuitable_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("keep_in_touch_by", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("video_unsuitable_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("video_unsuitable_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("booking") as batch_op:
        batch_op.add_column(sa.Column("held_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("held_reason", sa.String(length=300), nullable=True))
    # No table refers to consent, so it may be rebuilt (SQLite) to change received_at.
    with op.batch_alter_table("consent") as batch_op:
        batch_op.add_column(sa.Column("received_on", sa.Date(), nullable=True))
        batch_op.alter_column("received_at", existing_type=UTC_DATETIME, nullable=True)

    conn = op.get_bind()
    for name in ("staff", "pupil"):
        people = sa.table(
            name, sa.column("id"), sa.column("forename"), sa.column("surname"),
            sa.column("search_key"),
        )
        for pid, forename, surname in conn.execute(
            sa.select(people.c.id, people.c.forename, people.c.surname)
        ).all():
            key = fold(f"{forename} {surname}")[:400]
            conn.execute(people.update().where(people.c.id == pid).values(search_key=key))
    # Until now a consent given with a date alone was stored at midnight (school time): keep
    # those as a date with no time, and give every consent its day.
    consent = sa.table(
        "consent", sa.column("id"), sa.column("received_at", UTC_DATETIME),
        sa.column("received_on", sa.Date()),
    )
    rows = conn.execute(sa.select(consent.c.id, consent.c.received_at)).all()
    zone = _school_zone() if rows else UTC
    for cid, received_at in rows:
        local = received_at.astimezone(zone)
        values = {"received_on": local.date()}
        if local.time() == time(0, 0):
            values["received_at"] = None
        conn.execute(consent.update().where(consent.c.id == cid).values(**values))

    with op.batch_alter_table("consent") as batch_op:
        batch_op.alter_column("received_on", existing_type=sa.Date(), nullable=False)

    op.create_table(
        "school_calendar",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("imported_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_school_calendar")),
    )
    op.create_index(
        op.f("ix_school_calendar_starts_on"), "school_calendar", ["starts_on"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_school_calendar_starts_on"), table_name="school_calendar")
    op.drop_table("school_calendar")
    conn = op.get_bind()
    consent = sa.table(
        "consent", sa.column("id"), sa.column("received_at", UTC_DATETIME),
        sa.column("received_on", sa.Date()),
    )
    rows = conn.execute(
        sa.select(consent.c.id, consent.c.received_on).where(consent.c.received_at.is_(None))
    ).all()
    zone = _school_zone() if rows else UTC
    for cid, day in rows:
        midnight = datetime.combine(day, time(0, 0), tzinfo=zone)
        conn.execute(consent.update().where(consent.c.id == cid).values(received_at=midnight))
    with op.batch_alter_table("consent") as batch_op:
        batch_op.alter_column("received_at", existing_type=UTC_DATETIME, nullable=False)
        batch_op.drop_column("received_on")
    with op.batch_alter_table("booking") as batch_op:
        batch_op.drop_column("held_reason")
        batch_op.drop_column("held_at")
    with op.batch_alter_table("pupil") as batch_op:
        for column in (
            "video_unsuitable_by", "video_unsuitable_at", "keep_in_touch_by",
            "video_unsuitable_reason", "search_key",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("staff") as batch_op:
        for column in ("safeguarding_training", "dbs_checked", "search_key"):
            batch_op.drop_column(column)
