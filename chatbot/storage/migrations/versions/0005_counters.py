"""counters for numbers handed out in order (concern references)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counter",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counter")),
    )
    # Carry on from the references already given out.
    op.execute(
        "INSERT INTO counter (name, value) "
        "SELECT 'concern:' || CAST(year AS VARCHAR(4)), MAX(seq) FROM concern GROUP BY year"
    )


def downgrade() -> None:
    op.drop_table("counter")
