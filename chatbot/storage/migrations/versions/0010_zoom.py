"""meetings made on Zoom for confirmed calls, and what Zoom reported about them

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chatbot.storage.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, chatbot.storage.models.UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "meeting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("marker", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("zoom_id", sa.String(length=30), nullable=True),
        sa.Column("join_url", sa.String(length=1000), nullable=True),
        sa.Column("passcode", sa.String(length=20), nullable=True),
        sa.Column("applied", sa.JSON(), nullable=True),
        sa.Column("alt_host_refused", sa.Boolean(), nullable=False),
        sa.Column("mismatches", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _when("due_at"),
        _when("claimed_until"),
        sa.Column("claimed_by", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        _when("problem_told_at"),
        _when("prechecked_at"),
        _when("created_at", nullable=False),
        _when("started_at"),
        _when("ended_at"),
        _when("host_joined_at"),
        _when("cohost_joined_at"),
        _when("cohost_checked_at"),
        _when("overrun_host_told_at"),
        _when("overrun_slt_told_at"),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_meeting_booking_id_booking")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_meeting_booking_id")),
        sa.UniqueConstraint("marker", name=op.f("uq_meeting_marker")),
    )
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_meeting_zoom_id"), ["zoom_id"], unique=False)

    op.create_table(
        "meeting_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        _when("at", nullable=False),
        _when("received_at", nullable=False),
        sa.Column("participant", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meeting.id"], name=op.f("fk_meeting_event_meeting_id_meeting")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_meeting_event_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_event")),
        sa.UniqueConstraint("key", name=op.f("uq_meeting_event_key")),
    )
    with op.batch_alter_table("meeting_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_meeting_event_meeting_id"), ["meeting_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("meeting_event")
    op.drop_table("meeting")
