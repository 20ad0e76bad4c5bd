"""Database triggers that keep records as they were written, enforced by the database itself
rather than by convention in our code:

- the audit trail is append-only: UPDATE and DELETE are refused;
- a concern's chronology is never edited: UPDATE is refused (rows are deleted only with their
  concern, when retention ends);
- what a concern's reporter wrote (the report itself) can't be changed; acknowledgement, chase
  and closing columns still can.
"""

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


def no_update(dialect: str, table: str) -> list[str]:
    """UPDATE refused; INSERT and DELETE allowed (the concern chronology)."""
    if dialect == "sqlite":
        return [
            f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
                BEGIN SELECT RAISE(ABORT, '{table} rows are never changed'); END"""
        ]
    if dialect == "postgresql":
        return [
            POSTGRESQL[0],
            f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
                FOR EACH ROW EXECUTE FUNCTION refuse_change()""",
        ]
    return []


# The columns of a concern that record the report as filed.
REPORT_COLUMNS = (
    "reference",
    "reporter_id",
    "reporter_label",
    "pupil_id",
    "subject_staff_id",
    "booking_id",
    "category",
    "immediate_risk",
    "happened_at",
    "narrative",
    "filed_at",
)


def fixed_report(dialect: str) -> list[str]:
    """UPDATEs of ``concern`` that change any REPORT_COLUMNS are refused."""
    if dialect == "sqlite":
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in REPORT_COLUMNS)
        return [
            f"""CREATE TRIGGER IF NOT EXISTS concern_report_fixed BEFORE UPDATE ON concern
                WHEN {changed}
                BEGIN SELECT RAISE(ABORT, 'a filed concern report is never changed'); END"""
        ]
    if dialect == "postgresql":
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in REPORT_COLUMNS)
        return [
            f"""CREATE OR REPLACE FUNCTION refuse_report_change() RETURNS trigger AS $$
                BEGIN
                  IF {changed} THEN
                    RAISE EXCEPTION 'a filed concern report is never changed';
                  END IF;
                  RETURN NEW;
                END; $$ LANGUAGE plpgsql""",
            """CREATE TRIGGER concern_report_fixed BEFORE UPDATE ON concern
               FOR EACH ROW EXECUTE FUNCTION refuse_report_change()""",
        ]
    return []
