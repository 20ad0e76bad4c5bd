"""call log: was the co-host there; sweep claims for checklist escalation and unfiled worries

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CLAIMS = ("checklist_escalated_at", "worry_reminded_at", "worry_reported_at")


def upgrade() -> None:
    with op.batch_alter_table("booking", schema=None) as batch_op:
        for name in CLAIMS:
            batch_op.add_column(sa.Column(name, sa.DateTime(), nullable=True))
    with op.batch_alter_table("call_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cohost_present", sa.Boolean(), nullable=True))
    # Calls from before this version are marked as already swept, so the new steps never
    # message anyone about calls long past on the first sweep after the upgrade: a call whose
    # start was already checked, and every call that already has a log.
    op.execute(
        "UPDATE booking SET checklist_escalated_at = start_check_at "
        "WHERE start_check_at IS NOT NULL"
    )
    op.execute(
        "UPDATE booking SET "
        "worry_reminded_at = (SELECT logged_at FROM call_log WHERE booking_id = booking.id), "
        "worry_reported_at = (SELECT logged_at FROM call_log WHERE booking_id = booking.id) "
        "WHERE id IN (SELECT booking_id FROM call_log)"
    )


def downgrade() -> None:
    with op.batch_alter_table("call_log", schema=None) as batch_op:
        batch_op.drop_column("cohost_present")
    with op.batch_alter_table("booking", schema=None) as batch_op:
        for name in reversed(CLAIMS):
            batch_op.drop_column(name)
