"""concern reports and chronology can't be edited

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 11:45:00
"""

from __future__ import annotations

from alembic import op

from chatbot.storage import append_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for stmt in append_only.fixed_report(dialect):
        op.execute(stmt)
    for stmt in append_only.no_update(dialect, "concern_event"):
        op.execute(stmt)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS concern_report_fixed ON concern")
        op.execute("DROP TRIGGER IF EXISTS concern_event_no_update ON concern_event")
        op.execute("DROP FUNCTION IF EXISTS refuse_report_change()")
    else:
        op.execute("DROP TRIGGER IF EXISTS concern_report_fixed")
        op.execute("DROP TRIGGER IF EXISTS concern_event_no_update")
