"""The `chatbot` command, run as a real process against a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import PUPILS_CSV, STAFF_CSV, submit


def chatbot(
    tmp_path: Path, *args: str, policy: Path | None = None, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(extra or {})
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    env.pop("CHATBOT_POLICY", None)
    if policy is not None:
        env["CHATBOT_POLICY"] = str(policy)
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_import_reports_bad_rows_with_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "staff.csv"
    f.write_text(STAFF_CSV + "not-an-email,Bad,Row,staff\nx@school.test,Ex,Ample,wizard\n")
    r = chatbot(tmp_path, "import", "staff", str(f))
    assert r.returncode == 0, r.stderr
    assert "7 added" in r.stdout and "2 skipped" in r.stdout
    assert ":9: skipped" in r.stderr and "not an email address" in r.stderr
    assert ":10: skipped" in r.stderr and "unknown role 'wizard'" in r.stderr
    again = chatbot(tmp_path, "import", "staff", str(f))
    assert "0 added, 7 updated" in again.stdout


def test_file_with_no_usable_rows_exits_non_zero(tmp_path: Path) -> None:
    f = tmp_path / "pupils.csv"
    f.write_text("upn,forename,surname\nnope,A,B\n")
    r = chatbot(tmp_path, "import", "pupils", str(f))
    assert r.returncode == 2  # bad input, nothing changed (was 1 until exit codes were made one)
    assert "No usable rows" in r.stderr


def test_missing_column_named(tmp_path: Path) -> None:
    f = tmp_path / "pupils.csv"
    f.write_text("name,class\nSam,Year 3\n")
    r = chatbot(tmp_path, "import", "pupils", str(f))
    assert r.returncode == 2
    assert "no column for upn" in r.stderr


def test_consent_grant_list_withdraw(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(PUPILS_CSV)
    assert chatbot(tmp_path, "import", "pupils", str(tmp_path / "p.csv")).returncode == 0
    eml = tmp_path / "reply.eml"
    eml.write_bytes(b"Subject: Re: video calls\r\n\r\nYes, happy for Sam to join.\r\n")
    r = chatbot(
        tmp_path,
        "consent",
        "grant",
        "A123456789012",
        "--parent-email",
        "parent.sam@home.test",
        "--received",
        "2026-11-27 18:05",
        "--eml",
        str(eml),
    )
    assert r.returncode == 0, r.stderr
    listed = chatbot(tmp_path, "consent", "list")
    assert "A123456789012" in listed.stdout and "1 pupil(s)" in listed.stdout
    bad = chatbot(
        tmp_path,
        "consent",
        "grant",
        "Z999999999999",
        "--parent-email",
        "x@y.test",
        "--received",
        "2026-11-27",
        "--evidence",
        "<id@x> Re: calls",
    )
    assert bad.returncode == 2 and "not on the pupil roster" in bad.stderr
    long_ago = chatbot(
        tmp_path,
        "consent",
        "grant",
        "B123456789012",
        "--parent-email",
        "parent.zoe@home.test",
        "--received",
        "0001-01-01",
        "--evidence",
        "<id@x> Re: calls",
    )
    assert long_ago.returncode == 2
    assert "received_date: That date is more than 25 years ago" in long_ago.stderr
    # The CLI trusts the server account: any --as (or none) may withdraw, and it is recorded.
    r = chatbot(tmp_path, "consent", "withdraw", "A123456789012", "--as", "office@school.test")
    assert r.returncode == 0, r.stderr
    assert "0 pupil(s)" in chatbot(tmp_path, "consent", "list").stdout
    with closing(sqlite3.connect(tmp_path / "cli.db")) as con:
        labels = con.execute("SELECT withdrawn_by_label FROM consent").fetchall()
    assert labels == [("office@school.test",)]


def test_concerns_purge_and_hold_need_a_dsl(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(STAFF_CSV)
    assert chatbot(tmp_path, "import", "staff", str(tmp_path / "s.csv")).returncode == 0
    for args in (
        ("concerns", "purge"),
        ("concerns", "purge", "--as", "head@school.test"),
        ("concerns", "hold", "--reference", "C-2026-0001", "--on"),
        ("concerns", "hold", "--reference", "C-2026-0001", "--on", "--as", "slt@school.test"),
    ):
        r = chatbot(tmp_path, *args)
        assert r.returncode == 2, (args, r.stdout)
        assert "Only a DSL or deputy DSL" in r.stderr and "recorded" in r.stderr, args
    r = chatbot(tmp_path, "concerns", "purge", "--dry-run", "--as", "dsl@school.test")
    assert r.returncode == 0, r.stderr
    assert "Would delete 0 record(s)" in r.stdout


def test_call_logs_export_and_records_purge(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(STAFF_CSV)
    assert chatbot(tmp_path, "import", "staff", str(tmp_path / "s.csv")).returncode == 0
    dates = ("--from", "2026-12-01", "--to", "2026-12-31")
    out = tmp_path / "logs.csv"
    r = chatbot(tmp_path, "logs", "export", *dates, "--out", str(out), "--as", "slt@school.test")
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("call,date,start,end,type,host,co_host,co_host_on_call,")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    r = chatbot(tmp_path, "logs", "export", "--from", "2026-12-01", "--to", "soon", "--as", "x")
    assert r.returncode == 2 and "'soon' is not a date" in r.stderr
    r = chatbot(tmp_path, "records", "purge", "--dry-run")
    assert r.returncode == 2 and "--as" in r.stderr
    r = chatbot(tmp_path, "records", "purge", "--dry-run", "--as", "dsl@school.test")
    assert r.returncode == 0, r.stderr
    assert "Would delete 0 call log(s) past retention." in r.stdout
    with closing(sqlite3.connect(tmp_path / "cli.db")) as con:
        actions = [a for (a,) in con.execute("SELECT action FROM audit_event ORDER BY id")]
    assert actions[-3:] == ["calllog.read", "records.purge_refused", "records.purge_run"]


def test_consent_names_from_a_roster_are_printed_inert(tmp_path: Path) -> None:
    """A pupil's name carrying a terminal hyperlink (OSC 8) reaches the terminal as text."""
    link = "\x1b]8;;https://evil.example\x07Sam\x1b]8;;\x07"
    (tmp_path / "p.csv").write_text(
        f"upn,forename,surname\nA123456789012,{link},\u202eTaylor\n", encoding="utf-8"
    )
    assert chatbot(tmp_path, "import", "pupils", str(tmp_path / "p.csv")).returncode == 0
    granted = chatbot(
        tmp_path,
        "consent",
        "grant",
        "A123456789012",
        "--parent-email",
        "parent.sam@home.test",
        "--received",
        "2026-11-27 18:05",
        "--evidence",
        "<id@home.test> Re: calls",
    )
    listed = chatbot(tmp_path, "consent", "list")
    for r in (granted, listed):
        assert r.returncode == 0, r.stderr
        assert "]8;;https://evil.exampleSam]8;; " in r.stdout  # the initial was the RLO
        assert not any(ch in r.stdout for ch in "\x1b\x07\u202e"), r.stdout


def test_policy_show_prints_defaults(tmp_path: Path) -> None:
    r = chatbot(tmp_path, "policy", "show")
    assert r.returncode == 0
    assert 'start = "09:00"' in r.stdout and "Zoom" in r.stdout


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[hours]\nstart = "25:00"\n', "start"),
        ('[hours]\nstart = "15:00"\nend = "09:00"\n', "end"),
        ('[calls]\nmax_minutes = "long"\n', "max_minutes"),
        ("[calls]\nsurprise = 1\n", "surprise"),
    ],
)
def test_bad_policy_file_stops_start_up(tmp_path: Path, toml: str, named: str) -> None:
    f = tmp_path / "policy.toml"
    f.write_text(toml)
    for args in (("policy", "show"), ("db", "upgrade")):
        r = chatbot(tmp_path, *args, policy=f)
        assert r.returncode == 2
        assert "Cannot start" in r.stderr and named in r.stderr


def test_db_upgrade_creates_sqlite_file(tmp_path: Path) -> None:
    r = chatbot(tmp_path, "db", "upgrade")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cli.db").exists()
    assert r.stdout == "Database is up to date (sqlite).\n"
    assert r.stderr == ""  # no migration log lines unless --verbose
    r = chatbot(tmp_path, "--verbose", "db", "upgrade")
    assert "INFO" in r.stderr


def file_concerns(tmp_path: Path, *values: dict[str, str]) -> list[str]:
    """Concerns filed through the core on the CLI's database; their references."""
    from chatbot.bootstrap import build_bot
    from chatbot.policy import default_policy
    from chatbot.ports import FixedClock
    from chatbot.storage.db import Database
    from chatbot.uow import Units
    from tests.unit.test_concern_support import MONDAY_10AM, concerns, good

    async def run() -> list[str]:
        units = Units(
            Database(f"sqlite+aiosqlite:///{tmp_path}/cli.db"),
            default_policy(),
            FixedClock(MONDAY_10AM),
        )
        bot = build_bot(units)
        for over in values:
            await bot.handle(submit("teacher@school.test", "concern", good(**over)))
        refs = [c.reference for c in await concerns(units)]
        await units.db.dispose()
        return refs

    return asyncio.run(run())


def test_concerns_list_for_the_dsl_without_log_lines(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(STAFF_CSV)
    (tmp_path / "p.csv").write_text(PUPILS_CSV)
    assert chatbot(tmp_path, "import", "staff", str(tmp_path / "s.csv")).returncode == 0
    assert chatbot(tmp_path, "import", "pupils", str(tmp_path / "p.csv")).returncode == 0
    first, urgent = file_concerns(tmp_path, {}, {"risk": "yes", "category": "violence"})
    r = chatbot(tmp_path, "concerns", "list", "--as", "dsl@school.test")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{urgent} · URGENT · NOT ACKNOWLEDGED · ")
    assert lines[0].endswith(" old · Violence or encouraging people to hurt others")
    assert lines[1].startswith(f"{first} · NOT ACKNOWLEDGED · ")
    assert lines[2] == "2 open concern(s), 2 not acknowledged."
    assert "secret" not in r.stdout and "Sam" not in r.stdout  # no narrative, no names
    assert r.stderr == ""
    for args in ((), ("--as", "teacher@school.test")):
        r = chatbot(tmp_path, "concerns", "list", *args)
        assert r.returncode == 2 and first not in r.stdout
        assert r.stderr.startswith("Only the DSL and deputy DSL"), r.stderr
        assert "WARNING" not in r.stderr  # the refusal, not a log line
    r = chatbot(tmp_path, "--verbose", "concerns", "list", "--as", "teacher@school.test")
    assert "WARNING chatbot.concerns" in r.stderr
    with closing(sqlite3.connect(tmp_path / "cli.db")) as con:
        actions = con.execute(
            "SELECT action, actor_label FROM audit_event WHERE action LIKE "
            "'concern.list%' ORDER BY id"
        ).fetchall()
    assert actions == [
        ("concern.list", "dsl@school.test"),
        ("concern.list_refused", "cli (no --as given)"),
        ("concern.list_refused", "teacher@school.test"),
        ("concern.list_refused", "teacher@school.test"),
    ]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_file_is_readable_by_this_account_only(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    r = chatbot(tmp_path, "db", "upgrade")
    assert r.returncode == 0, r.stderr
    assert mode(db) == 0o600
    assert "0600" not in r.stderr  # a new file is private from the start: nothing to report

    # A file left readable by others (copied in, or made by an older version) is tightened,
    # with its write-ahead log, and the log says so once.
    db.chmod(0o644)
    wal = tmp_path / "cli.db-wal"
    wal.touch(mode=0o644)
    wal.chmod(0o644)
    r = chatbot(tmp_path, "--verbose", "consent", "list")  # log lines are shown with -v only
    assert r.returncode == 0, r.stderr
    assert mode(db) == 0o600
    assert not wal.exists() or mode(wal) == 0o600
    assert r.stderr.count("now 0600") == 1 and "cli.db-wal" in r.stderr
    r = chatbot(tmp_path, "consent", "list")
    assert "0600" not in r.stderr


def test_console_demo_with_piped_stdin(tmp_path: Path) -> None:
    env = dict(os.environ, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "console", "--demo"],
        input="/my-calls\n/help\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "Demo school loaded" in r.stdout
    assert "no upcoming calls" in r.stdout


def test_console_concern_never_reaches_the_logs(tmp_path: Path) -> None:
    """The real logging set-up of `chatbot`: no SQL echo, so no concern text in the logs."""
    env = dict(os.environ, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    secret = "Amira said something worrying XYZZY"
    script = "\n".join(["/concern", "Amira", "9", "", "no", "", "", secret, "/quit"]) + "\n"
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "console", "--demo"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "C-20" in r.stdout  # the receipt's reference: the concern was filed
    assert "XYZZY" not in r.stderr and "Amira" not in r.stderr
    assert "SELECT" not in r.stderr and "INSERT" not in r.stderr


def test_console_keeps_log_lines_out_of_the_chat(tmp_path: Path) -> None:
    """A refused click is logged as a warning for the server's operator; the console shows
    the person the refusal, not the log line."""
    env = dict(os.environ, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    script = "\n".join(["/concern", "", "9", "", "no", "", "", "Worrying words", "1"]) + "\n"
    r = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "console", "--demo"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "posted in the DSL channel" in r.stdout
    assert "This attempt has been recorded" in r.stdout  # the teacher clicked View details
    assert r.stderr == ""
    assert "WARNING" not in r.stdout and "INFO" not in r.stdout


def test_consent_letter_uses_the_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[school]\nname = "Brook Primary"\n[calls]\nmax_minutes = 20\n')
    r = chatbot(tmp_path, "consent", "letter", policy=policy)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Subject: ")
    assert "Brook Primary" in r.stdout and "at most 20 minutes" in r.stdout


def grant(
    tmp_path: Path, upn: str, received: str, *evidence: str
) -> subprocess.CompletedProcess[str]:
    return chatbot(
        tmp_path,
        "consent",
        "grant",
        upn,
        "--parent-email",
        "parent@home.test",
        "--reason",  # not the roster's parent address
        "wrote from a work address, confirmed by phone",
        "--received",
        received,
        *(evidence or ("--evidence", "<CAF1@mail.home.test> Re: video calls")),
    )


def test_consent_received_in_iso_8601_and_exit_codes(tmp_path: Path) -> None:
    """--received takes ISO 8601 as well as 'YYYY-MM-DD HH:MM'; a day alone is stored as a
    day; every refusal exits 2 with the reason (a bad date used to exit 1)."""
    (tmp_path / "p.csv").write_text(PUPILS_CSV)
    assert chatbot(tmp_path, "import", "pupils", str(tmp_path / "p.csv")).returncode == 0
    bad = grant(tmp_path, "A123456789012", "2026-13-01")
    assert bad.returncode == 2, bad.stderr
    assert "--received" in bad.stderr and "'2026-13-01' is not a date" in bad.stderr
    for refused, why in (
        (grant(tmp_path, "A123456789012", "2026-11-20", "--evidence", "ok"), "evidence: Start"),
        (grant(tmp_path, "A123456789012", "2026-11-20T25:00"), "is not a date"),
        (grant(tmp_path, "Z999999999999", "2026-11-20"), "not on the pupil roster"),
    ):
        assert refused.returncode == 2 and why in refused.stderr, refused.stderr
    eml = tmp_path / "ok.eml"
    eml.write_bytes(b"ok\n")
    r = grant(tmp_path, "A123456789012", "2026-11-20", "--eml", str(eml))
    assert r.returncode == 2 and "not a saved email" in r.stderr, r.stderr

    for upn, received in (
        ("A123456789012", "2026-11-20T18:03:00"),
        ("B123456789012", "2026-11-20T18:03+01:00"),
        ("C123456789012", "2026-11-20"),
    ):
        r = grant(tmp_path, upn, received)
        assert r.returncode == 0, (received, r.stderr)
    with closing(sqlite3.connect(tmp_path / "cli.db")) as con:
        rows = con.execute("SELECT received_on, received_at FROM consent ORDER BY id").fetchall()
    assert rows == [
        ("2026-11-20", "2026-11-20 18:03:00.000000"),
        ("2026-11-20", "2026-11-20 17:03:00.000000"),  # the offset was honoured
        ("2026-11-20", None),  # a day, not midnight
    ]
    listed = chatbot(tmp_path, "consent", "list").stdout
    assert "received 2026-11-20 18:03" in listed and "received 2026-11-20 17:03" in listed
    assert "00:00" not in listed

    w = chatbot(tmp_path, "consent", "withdraw", "A123456789012")
    assert w.returncode == 0 and "They had no calls booked" in w.stdout, w.stderr
    helped = chatbot(tmp_path, "--help")
    assert "exit codes:" in helped.stdout and "2    refused" in helped.stdout


TERMS_ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
    b"BEGIN:VEVENT\r\nSUMMARY:Autumn term 2\r\nDTSTART;VALUE=DATE:20261102\r\n"
    b"DTEND;VALUE=DATE:20261219\r\nEND:VEVENT\r\n"
    b"BEGIN:VEVENT\r\nSUMMARY:Christmas holiday\r\nDTSTART;VALUE=DATE:20261219\r\n"
    b"DTEND;VALUE=DATE:20270104\r\nEND:VEVENT\r\n"
    b"BEGIN:VEVENT\r\nSUMMARY:Sports day\r\nDTSTART;VALUE=DATE:20261120\r\nEND:VEVENT\r\n"
    b"END:VCALENDAR\r\n"
)


async def test_term_dates_imported_from_the_command_line_close_the_holidays(
    tmp_path: Path,
) -> None:
    from chatbot.bootstrap import build_bot
    from chatbot.effects import FormErrors
    from chatbot.policy import default_policy
    from chatbot.ports import FixedClock
    from chatbot.roster import importer as roster
    from chatbot.uow import Units
    from tests.conftest import GOOD, HOST, MONDAY_8AM, open_database, submit

    bad = tmp_path / "bad.ics"
    bad.write_bytes(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    r = chatbot(tmp_path, "policy", "terms", "import", str(bad))
    assert r.returncode == 2 and "nothing was imported" in r.stderr, r.stderr
    listed = chatbot(tmp_path, "policy", "terms", "list")
    assert listed.returncode == 0 and "NO TERM DATES ARE SET" in listed.stderr

    ics = tmp_path / "council.ics"
    ics.write_bytes(TERMS_ICS)
    r = chatbot(tmp_path, "policy", "terms", "import", str(ics), "--as", "office@school.test")
    assert r.returncode == 0, r.stderr
    assert "1 term(s), 1 holiday(s), 0 INSET day(s) imported" in r.stdout
    assert "skipped Sports day: not a term, holiday or INSET day" in r.stderr
    listed = chatbot(tmp_path, "policy", "terms", "list")
    assert "2026-12-19 to 2027-01-03  holiday  Christmas holiday" in listed.stdout
    assert "NO TERM DATES" not in listed.stderr

    db = open_database(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    try:
        core = Units(db=db, policy=default_policy(), clock=FixedClock(MONDAY_8AM))
        await roster.import_staff(core, STAFF_CSV)
        await roster.import_pupils(core, PUPILS_CSV)
        bot = build_bot(core)
        [err] = await bot.handle(submit(HOST, "book_call", dict(GOOD, date="2026-12-22")))
        assert isinstance(err, FormErrors)
        assert err.errors["date"].startswith(
            "Tuesday 22 December 2026 is in a school holiday (Christmas holiday)."
        )
    finally:
        await db.dispose()


def test_too_old_sqlite_is_refused_at_start_with_what_to_do(tmp_path: Path) -> None:
    # The CLI as a school's server would run it, on a Python whose SQLite predates RETURNING.
    old = (
        "import sqlite3, sys; sqlite3.sqlite_version_info = (3, 31, 1); "
        "from adapters.cli import main; sys.exit(main(['db', 'upgrade']))"
    )
    env = dict(os.environ, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/old.db")
    res = subprocess.run(
        [sys.executable, "-c", old], capture_output=True, text=True, env=env, timeout=60
    )
    assert res.returncode != 0
    assert "Cannot start" in res.stderr and "3.31.1" in res.stderr and "3.35" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "old.db").exists()  # refused before anything was created
    # This machine's SQLite is new enough: the same command works.
    assert chatbot(tmp_path, "db", "upgrade").returncode == 0
