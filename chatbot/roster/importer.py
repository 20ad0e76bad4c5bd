"""Staff and pupil rosters from CSV (our own headers or common MIS export headers).

Re-importing updates existing people (matched by email or UPN) instead of adding duplicates.
Every rejected row is reported with its line number and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatbot.csvfile import header_key, read_rows
from chatbot.fields import DATE_FORMATS, too_long_ago
from chatbot.roster.identity import normalise_email
from chatbot.storage.db import rows_changed
from chatbot.storage.models import Pupil, Staff
from chatbot.uow import Unit, Units

ROLES = ("staff", "slt", "dsl", "deputy_dsl", "admin")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UPN_RE = re.compile(r"^[A-Z][0-9]{11}[0-9A-Z]$")
NAME_MAX = 100

# Other ways schools write the roles (after lower-casing and turning spaces and - into _).
ROLE_ALIASES = {
    "teacher": "staff", "teaching_assistant": "staff", "ta": "staff", "support_staff": "staff",
    "senior_leader": "slt", "senior_leadership": "slt", "senior_leadership_team": "slt",
    "designated_safeguarding_lead": "dsl",
    "deputy_dsl": "deputy_dsl", "ddsl": "deputy_dsl", "deputy_designated_safeguarding_lead":
    "deputy_dsl",
    "head": "admin", "headteacher": "admin", "head_teacher": "admin", "administrator": "admin",
}  # fmt: skip
# Between roles in one cell: ";" as documented, or "," "/" "|" (a semicolon-separated file
# can't use ";" inside a cell without quotes).
ROLE_SEPARATORS = re.compile(r"[;,/|]")

STAFF_HEADERS = {
    "email": ("email", "email address", "work email", "school email"),
    "forename": ("forename", "first name", "legal forename", "preferred forename", "given name"),
    "surname": ("surname", "last name", "legal surname", "preferred surname", "family name"),
    "roles": ("roles", "role"),
    "dbs_checked": (
        "dbs_checked", "dbs check date", "dbs date", "dbs checked date", "dbs issue date",
        "dbs certificate date", "dbs clearance date", "enhanced dbs date",
    ),
    "safeguarding_training": (
        "safeguarding_training", "safeguarding training date", "safeguarding training",
        "safeguarding training completed", "child protection training",
        "child protection training date", "last safeguarding training",
    ),
}  # fmt: skip
PUPIL_HEADERS = {
    "upn": ("upn", "unique pupil number"),
    "forename": ("forename", "legal forename", "preferred forename", "first name"),
    "surname": ("surname", "legal surname", "preferred surname", "last name"),
    "class": ("class", "reg group", "registration group", "form", "tutor group", "class name"),
    "parent_email": (
        "parent_email",
        "parent email",
        "primary contact email",
        "priority 1 contact email",
        "contact email",
    ),
    "dob": ("dob", "date of birth", "birth date"),
}
REQUIRED = {"staff": ("email", "forename", "surname"), "pupils": ("upn", "forename", "surname")}


class RosterError(ValueError):
    """The file as a whole cannot be read (missing columns, not a CSV, no usable rows)."""


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def usable(self) -> int:
        return self.created + self.updated


def _columns(header: list[str], wanted: dict[str, tuple[str, ...]], what: str) -> dict[str, int]:
    norm = [header_key(h) for h in header]
    found: dict[str, int] = {}
    for key, aliases in wanted.items():
        for alias in aliases:
            a = header_key(alias)
            if a in norm:
                found[key] = norm.index(a)
                break
    missing = [k for k in REQUIRED[what] if k not in found]
    if missing:
        raise RosterError(
            f"the {what} file has no column for {', '.join(missing)} "
            f"(columns found: {', '.join(h for h in header if h) or 'none'})"
        )
    return found


def _rows(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    return read_rows(text, RosterError)


def _name(value: str, what: str) -> str:
    v = " ".join(value.split())
    if not v:
        raise ValueError(f"{what} is empty")
    if len(v) > NAME_MAX:
        raise ValueError(f"{what} is longer than {NAME_MAX} characters")
    return v


def _cell(row: list[str], cols: dict[str, int], key: str) -> str:
    i = cols.get(key)
    return row[i].strip() if i is not None and i < len(row) else ""


def _roles(cell: str) -> list[str]:
    """The roles in a cell, in our spelling, always with "staff"; ValueError names a bad one."""
    roles: list[str] = []
    for raw in ROLE_SEPARATORS.split(cell):
        word = "_".join(raw.strip().lower().replace("-", " ").split())
        if not word:
            continue
        role = ROLE_ALIASES.get(word, word)
        if role not in ROLES:
            raise ValueError(
                f"unknown role {raw.strip()[:40]!r} (roles are {', '.join(ROLES)}, separated by ;)"
            )
        if role not in roles:
            roles.append(role)
    return roles if "staff" in roles else ["staff", *roles]


def _dated(value: str, what: str) -> date | None:
    """A date in a roster cell (YYYY-MM-DD or DD/MM/YYYY), None when the cell is empty."""
    if not value:
        return None
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{what} {value[:40]!r} is not a date (use YYYY-MM-DD or DD/MM/YYYY)")


def _past_date(value: str, today: date, what: str) -> date | None:
    """A date in a roster cell that must lie in a pupil's lifetime up to today."""
    day = _dated(value, what)
    if day is None:
        return None
    if day > today:
        raise ValueError(f"{what} {value!r} is in the future")
    if old := too_long_ago(day, today, f"{what} {value!r}"):
        raise ValueError(old)
    return day


def _parse_dob(value: str, today: date) -> date | None:
    return _past_date(value, today, "date of birth")


async def import_staff(
    units: Units, text: str, actor: str = "cli", deactivate_missing: bool = False
) -> ImportReport:
    """Add or update staff. With ``deactivate_missing``, anyone active but absent from the
    file (a leaver) is deactivated: they can no longer book, and stop receiving alerts."""
    header, rows = _rows(text)
    cols = _columns(header, STAFF_HEADERS, "staff")
    report = ImportReport()
    seen: set[str] = set()
    async with units.write() as u:
        s, now = u.session, u.now
        today = u.local(now).date()
        for line, row in rows:
            try:
                email = normalise_email(_cell(row, cols, "email"))
                if not EMAIL_RE.match(email) or len(email) > 320:
                    raise ValueError(f"{email or 'the email'!r} is not an email address")
                if email in seen:
                    raise ValueError(f"{email} appears earlier in the file")
                forename = _name(_cell(row, cols, "forename"), "forename")
                surname = _name(_cell(row, cols, "surname"), "surname")
                roles = _roles(_cell(row, cols, "roles"))
                dbs = _past_date(_cell(row, cols, "dbs_checked"), today, "DBS check date")
                training = _past_date(
                    _cell(row, cols, "safeguarding_training"), today, "safeguarding training date"
                )
            except ValueError as exc:
                report.rejected.append((line, str(exc)))
                continue
            seen.add(email)
            person = await _staff(s, email)
            if person is None:
                s.add(
                    Staff(
                        email=email,
                        forename=forename,
                        surname=surname,
                        roles=";".join(roles),
                        active=True,
                        created_at=now,
                        updated_at=now,
                        dbs_checked=dbs,
                        safeguarding_training=training,
                    )
                )
                report.created += 1
            else:
                person.forename, person.surname = forename, surname
                person.roles, person.active, person.updated_at = ";".join(roles), True, now
                # A file without these dates (or an empty cell) leaves what is on record.
                if dbs:
                    person.dbs_checked = dbs
                if training:
                    person.safeguarding_training = training
                report.updated += 1
        if deactivate_missing and report.usable:
            report.deactivated = await _deactivate(s, Staff, Staff.email, seen, now)
        _audit(u, actor, "staff", report)
    return report


async def _deactivate(
    s: AsyncSession, model: type[Staff] | type[Pupil], key: Any, keep: set[str], now: datetime
) -> int:
    stmt = (
        update(model)
        .where(model.active.is_(True), key.not_in(keep))
        .values(active=False, updated_at=now)
    )
    return await rows_changed(s, stmt)


def _audit(u: Unit, actor: str, what: str, report: ImportReport) -> None:
    if report.usable:
        u.audit(
            actor,
            f"roster.import_{what}",
            "roster",
            what,
            {
                "created": report.created,
                "updated": report.updated,
                "deactivated": report.deactivated,
                "rejected": len(report.rejected),
            },
        )


async def _staff(s: AsyncSession, email: str) -> Staff | None:
    return (await s.execute(select(Staff).where(Staff.email == email))).scalar_one_or_none()


async def import_pupils(
    units: Units, text: str, actor: str = "cli", deactivate_missing: bool = False
) -> ImportReport:
    """Add or update pupils. With ``deactivate_missing``, pupils absent from the file (left
    the school) are deactivated: they can't be booked; their records are kept."""
    header, rows = _rows(text)
    cols = _columns(header, PUPIL_HEADERS, "pupils")
    report = ImportReport()
    seen: set[str] = set()
    async with units.write() as u:
        s, now = u.session, u.now
        today = u.local(now).date()
        for line, row in rows:
            try:
                upn = _cell(row, cols, "upn").upper().replace(" ", "")
                if not UPN_RE.match(upn):
                    raise ValueError(
                        f"UPN {upn or '(empty)'!r} is not a UPN (a letter then 12 characters)"
                    )
                if upn in seen:
                    raise ValueError(f"UPN {upn} appears earlier in the file")
                forename = _name(_cell(row, cols, "forename"), "forename")
                surname = _name(_cell(row, cols, "surname"), "surname")
                class_name = _cell(row, cols, "class")[:50]
                parent = _cell(row, cols, "parent_email")
                parent_email = normalise_email(parent) if parent else None
                if parent_email and not EMAIL_RE.match(parent_email):
                    raise ValueError("the parent email is not an email address")
                dob = _parse_dob(_cell(row, cols, "dob"), today)
            except ValueError as exc:
                report.rejected.append((line, str(exc)))
                continue
            seen.add(upn)
            pupil = (await s.execute(select(Pupil).where(Pupil.upn == upn))).scalar_one_or_none()
            if pupil is None:
                s.add(
                    Pupil(
                        upn=upn,
                        forename=forename,
                        surname=surname,
                        class_name=class_name,
                        parent_email=parent_email,
                        date_of_birth=dob,
                        active=True,
                        created_at=now,
                        updated_at=now,
                    )
                )
                report.created += 1
            else:
                pupil.forename, pupil.surname, pupil.class_name = forename, surname, class_name
                if parent_email:
                    pupil.parent_email = parent_email
                if dob:
                    pupil.date_of_birth = dob
                pupil.active, pupil.updated_at = True, now
                report.updated += 1
        if deactivate_missing and report.usable:
            report.deactivated = await _deactivate(s, Pupil, Pupil.upn, seen, now)
        _audit(u, actor, "pupils", report)
    return report
