"""Database triggers that make the audit trail append-only: UPDATE and DELETE are refused by
the database itself, not just by convention in our code."""

from __future__ import annotations

SQLITE = [
    """CREATE TRIGGER IF NOT EXISTS {t}_no_update BEFORE UPDATE ON {t}
       BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS {t}_no_delete BEFORE DELETE ON {t}
       BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END""",
]
POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t}
       FOR EACH ROW EXECUTE FUNCTION refuse_change()""",
]


def statements(dialect: str, table: str) -> list[str]:
    stmts = SQLITE if dialect == "sqlite" else POSTGRESQL if dialect == "postgresql" else []
    return [s.format(t=table) for s in stmts]
