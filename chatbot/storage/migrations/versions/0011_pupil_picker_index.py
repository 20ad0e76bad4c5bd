"""pupil pickers read pupils in name order from an index

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 22:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_pupil_search_key", "pupil", ["search_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_pupil_search_key", table_name="pupil")
