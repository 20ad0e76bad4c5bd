"""email: mail sent by the bot, consent requests and the replies kept as evidence, join details

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chatbot.storage.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC = chatbot.storage.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "mail_out",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("message_id", sa.String(length=250), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("about", sa.String(length=200), nullable=False),
        sa.Column("subject_type", sa.String(length=30), nullable=True),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("caused_by_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("due_at", UTC(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", UTC(), nullable=True),
        sa.Column("claimed_by", sa.String(length=32), nullable=True),
        sa.Column("send_started_at", UTC(), nullable=True),
        sa.Column("sent_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(
            ["caused_by_id"], ["staff.id"], name=op.f("fk_mail_out_caused_by_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_out")),
        sa.UniqueConstraint("message_id", name=op.f("uq_mail_out_message_id")),
    )
    op.create_index("ix_mail_out_pending", "mail_out", ["state", "due_at"], unique=False)
    op.create_index(op.f("ix_mail_out_subject_id"), "mail_out", ["subject_id"], unique=False)
    op.create_table(
        "consent_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("pupil_id", sa.Integer(), nullable=False),
        sa.Column("parent_email", sa.String(length=320), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_by_label", sa.String(length=200), nullable=False),
        sa.Column("requested_at", UTC(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pupil_id"], ["pupil.id"], name=op.f("fk_consent_request_pupil_id_pupil")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["staff.id"],
            name=op.f("fk_consent_request_requested_by_id_staff"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_request")),
        sa.UniqueConstraint("token", name=op.f("uq_consent_request_token")),
    )
    op.create_index(
        op.f("ix_consent_request_pupil_id"), "consent_request", ["pupil_id"], unique=False
    )
    op.create_table(
        "consent_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=False),
        sa.Column("received_at", UTC(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("imported_at", UTC(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", UTC(), nullable=True),
        sa.Column("consent_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["staff.id"], name=op.f("fk_consent_reply_decided_by_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["consent_request.id"],
            name=op.f("fk_consent_reply_request_id_consent_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_reply")),
        sa.UniqueConstraint("sha256", name=op.f("uq_consent_reply_sha256")),
    )
    op.create_index(
        op.f("ix_consent_reply_request_id"), "consent_reply", ["request_id"], unique=False
    )
    op.create_table(
        "call_join",
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("join_url", sa.String(length=1000), nullable=False),
        sa.Column("passcode", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("recorded_at", UTC(), nullable=False),
        sa.Column("invites_queued_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_call_join_booking_id_booking")
        ),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_call_join")),
    )
    op.create_table(
        "mailbox_cursor",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("after", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_mailbox_cursor")),
    )


def downgrade() -> None:
    op.drop_table("mailbox_cursor")
    op.drop_table("call_join")
    op.drop_index(op.f("ix_consent_reply_request_id"), table_name="consent_reply")
    op.drop_table("consent_reply")
    op.drop_index(op.f("ix_consent_request_pupil_id"), table_name="consent_request")
    op.drop_table("consent_request")
    op.drop_index(op.f("ix_mail_out_subject_id"), table_name="mail_out")
    op.drop_index("ix_mail_out_pending", table_name="mail_out")
    op.drop_table("mail_out")
