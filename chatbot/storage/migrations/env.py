"""Alembic environment: always given a live connection by chatbot.storage.migrate."""

from __future__ import annotations

from alembic import context

from chatbot.storage import models

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - we never run alembic's CLI directly
    raise RuntimeError("run migrations with `chatbot db upgrade`")

context.configure(
    connection=connection,
    target_metadata=models.Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things in place
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
