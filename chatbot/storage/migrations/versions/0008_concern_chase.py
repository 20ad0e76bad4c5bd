"""concern.next_chase_at: an unacknowledged concern is re-sent after escalation, on a schedule

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chatbot.storage.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty for concerns escalated before this: the chase treats that as due now.
    with op.batch_alter_table("concern") as batch:
        batch.add_column(
            sa.Column("next_chase_at", chatbot.storage.models.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("concern") as batch:
        batch.drop_column("next_chase_at")
