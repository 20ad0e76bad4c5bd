"""Issue #11, points 6 and 7 from the CLI: `chatbot logs export` (CSV, audited) and
`chatbot records purge` (call logs, checklist ticks and consent past retention, with a dry
run), through the same parser and handler `chatbot` runs."""

from __future__ import annotations

import argparse
import csv
import io
import os
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters import cli as chatbot_cli
from adapters import records_cli
from chatbot.consent import service as consent
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.storage.models import AuditEvent, CallLog, ChecklistTick, Concern, Consent
from chatbot.uow import Units
from tests.conftest import COHOST, HOST, action, submit
from tests.integration.test_call_log_policy import two_logged_calls
from tests.integration.test_sweeps import at
from tests.unit.test_concern_support import count, good

SLT = ("--as", "slt@school.test")
RANGE = ("--from", "2026-12-01", "--to", "2026-12-31")


async def run(core: Units, *argv: str) -> int:
    args = chatbot_cli._parser().parse_args(list(argv))
    assert args.cmd in ("logs", "records")
    return await records_cli.run(args, core)


async def audits(core: Units, name: str) -> list[AuditEvent]:
    async with core.db.transaction() as s:
        q = select(AuditEvent).where(AuditEvent.action == name).order_by(AuditEvent.id)
        return list((await s.execute(q)).scalars())


def rows(printed: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(printed)))


# ---------------------------------------------------------------- export


async def test_export_writes_csv_for_slt_and_audits_it(
    school: Units, bot: Bot, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = '=HYPERLINK("https://evil.test","Click")'
    sam, zoe = await two_logged_calls(bot, clock, hostile)
    assert await run(school, "logs", "export", *RANGE, *SLT) == 0
    found = rows(capsys.readouterr().out)
    assert [r["call"] for r in found] == [f"Call #{zoe}", f"Call #{sam}"]  # latest first
    sam_row = found[1]
    assert sam_row["summary"] == "'" + hostile  # a spreadsheet shows it, never runs it
    assert sam_row["pupils"] == "Sam Taylor" and sam_row["upns"] == "A123456789012"
    assert (sam_row["date"], sam_row["start"], sam_row["end"]) == ("2026-12-01", "10:00", "10:20")
    assert (sam_row["host"], sam_row["co_host"], sam_row["co_host_on_call"]) == (
        "Tess Teacher",
        "Colin Colleague",
        "yes",
    )
    assert (sam_row["actual_minutes"], sam_row["worrying"]) == ("18", "no")
    [read] = await audits(school, "calllog.read")
    assert read.actor_label == "slt@school.test" and read.subject_id == "cli"
    assert read.detail == {
        "from": "2026-12-01",
        "to": "2026-12-31",
        "count": 2,
        "bookings": [zoe, sam],
        "destination": "printed",
    }


async def test_every_formula_start_is_neutralised(
    school: Units, bot: Bot, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sam, _ = await two_logged_calls(bot, clock)
    clock.set(at(12, days=5))
    starts = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "plain"]
    for value in starts:
        async with school.db.transaction() as s:
            log = (await s.execute(select(CallLog).where(CallLog.booking_id == sam))).scalar_one()
            log.attended = value
        assert await run(school, "logs", "export", *RANGE, *SLT) == 0
        [row] = [r for r in rows(capsys.readouterr().out) if r["call"] == f"Call #{sam}"]
        expected = value if value == "plain" else "'" + value
        if value == "\rx":
            expected = "'x"  # the CR itself is a control character and never reaches a terminal
        assert row["attended"] == expected, value


async def test_export_to_a_file_is_private_and_filters_by_pupil_and_class(
    school: Units,
    bot: Bot,
    clock: FixedClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sam, zoe = await two_logged_calls(bot, clock)
    out = tmp_path / "logs.csv"
    argv = ("logs", "export", *RANGE, "--pupil", "Zoë", "--out", str(out), *SLT)
    assert await run(school, *argv) == 0
    assert "Wrote 1 log(s)" in capsys.readouterr().out
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert [r["call"] for r in rows(out.read_text())] == [f"Call #{zoe}"]
    assert await run(school, "logs", "export", *RANGE, "--class", "Year 4", *SLT) == 0
    assert rows(capsys.readouterr().out) == []
    assert (
        await run(school, "logs", "export", "--from", "2026-12-02", "--to", "2026-12-02", *SLT) == 0
    )
    assert [r["call"] for r in rows(capsys.readouterr().out)] == [f"Call #{zoe}"]
    details = [a.detail for a in await audits(school, "calllog.read")]
    assert details[0]["destination"] == "file logs.csv" and details[0]["pupil_ids"]
    assert details[1]["class"] == "Year 4" and details[1]["count"] == 0


async def test_export_host_sees_own_stranger_refused_and_bad_dates_named(
    school: Units, bot: Bot, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sam, _ = await two_logged_calls(bot, clock)
    assert await run(school, "logs", "export", *RANGE, "--as", HOST) == 0
    assert [r["call"] for r in rows(capsys.readouterr().out)] == [f"Call #{sam}"]
    for who in (("--as", "nobody@else.test"), ()):
        assert await run(school, "logs", "export", *RANGE, *who) == 2
        err = capsys.readouterr()
        assert err.out == "" and "this attempt has been recorded" in err.err
    assert "Give your school email with --as" in err.err
    refused = await audits(school, "calllog.read_refused")
    assert [r.actor_label for r in refused] == ["nobody@else.test", "cli (no --as given)"]
    for dates, words in (
        (("--from", "2026-13-01", "--to", "2026-12-31"), "'2026-13-01' is not a date"),
        (("--from", "2026-12-31", "--to", "2026-12-01"), "--to is before --from"),
    ):
        assert await run(school, "logs", "export", *dates, *SLT) == 2
        assert words in capsys.readouterr().err
    assert len(await audits(school, "calllog.read")) == 1


# ---------------------------------------------------------------- retention


async def test_purge_removes_call_records_past_retention_except_what_is_held(
    school: Units, bot: Bot, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sam, zoe = await two_logged_calls(bot, clock)
    # Ticks on both calls (Tue 1 and Wed 2 Dec, 10:00).
    for booking_id, days in ((sam, 0), (zoe, 1)):
        clock.set(at(9, 50, days=days))
        await bot.handle(action(COHOST, "checklist.tick", f"{booking_id}:waiting_room"))
    # A concern from Sam's call, still open: Sam's call is held. Then both parents withdraw.
    clock.set(at(12, days=2))
    state = {"booking_id": str(sam)}
    await bot.handle(
        submit(HOST, "concern", good(when_date="2026-12-01", when_time="10:10"), state)
    )
    for upn in ("A123456789012", "B123456789012"):
        async with school.write() as u:
            assert (await consent.withdraw(u, upn, None, "cli", cli=True)).error is None
    async with school.db.transaction() as s:
        (await s.execute(select(Concern))).scalar_one().legal_hold = True  # Sam's consent too

    # Six years on (the defaults), nothing is past retention yet.
    clock.set(datetime(2032, 11, 30, 12, tzinfo=UTC))
    assert await run(school, "records", "purge", *SLT) == 0
    assert "Deleted 0 call log(s)" in capsys.readouterr().out
    clock.set(datetime(2032, 12, 4, 12, tzinfo=UTC))

    assert await run(school, "records", "purge", "--dry-run", *SLT) == 0
    said = capsys.readouterr().out
    assert "Would delete 1 call log(s) past retention; kept 1 held" in said
    assert "Would delete 1 call checklist(s) past retention; kept 1 held" in said
    assert "Would delete 1 withdrawn consent record(s) past retention; kept 1 held" in said
    assert await count(school, CallLog) == 2 and await count(school, Consent) == 2

    for who in (("--as", HOST), ("--as", "nobody@else.test"), ()):
        assert await run(school, "records", "purge", *who) == 2
        assert "this attempt has been recorded" in capsys.readouterr().err
    assert await count(school, CallLog) == 2

    assert await run(school, "records", "purge", *SLT) == 0
    assert "Deleted 1 call log(s)" in capsys.readouterr().out
    async with school.db.transaction() as s:
        assert list((await s.execute(select(CallLog.booking_id))).scalars()) == [sam]
        assert list((await s.execute(select(ChecklistTick.booking_id))).scalars()) == [sam]
        kept = list((await s.execute(select(Consent.pupil_id))).scalars())
    assert len(kept) == 1  # Sam's, held by the concern about him on legal hold
    assert [a.subject_id for a in await audits(school, "calllog.purge")] == [str(zoe)]
    assert [a.subject_id for a in await audits(school, "checklist.purge")] == [str(zoe)]
    assert len(await audits(school, "consent.purge")) == 1
    runs = await audits(school, "records.purge_run")
    assert [(r.detail["dry_run"], r.detail["logs_due"], r.detail["logs_held"]) for r in runs] == [
        (False, 0, 0),
        (True, 1, 1),
        (False, 1, 1),
    ]
    assert len(await audits(school, "records.purge_refused")) == 3
    assert await count(school, AuditEvent) > 0  # the trail itself is never purged


async def test_retention_years_come_from_the_policy(
    school: Units, bot: Bot, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    await two_logged_calls(bot, clock)
    school.policy = replace(school.policy, call_log_years=10, checklist_years=10)
    clock.set(datetime(2033, 6, 1, 12, tzinfo=UTC))
    assert await run(school, "records", "purge", *SLT) == 0
    assert await count(school, CallLog) == 2
    school.policy = replace(school.policy, call_log_years=2)
    assert await run(school, "records", "purge", *SLT) == 0
    assert await count(school, CallLog) == 0


def test_retention_settings_are_in_the_policy_file() -> None:
    from chatbot.policy import PolicyError, default_policy, policy_from_toml

    p = default_policy()
    assert (p.call_log_years, p.checklist_years, p.consent_years_after_withdrawal) == (6, 6, 6)
    mine = policy_from_toml(
        "[retention]\ncall_logs_years = 3\nconsent_years_after_withdrawal = 1\n"
    )
    assert (mine.call_log_years, mine.consent_years_after_withdrawal) == (3, 1)
    with pytest.raises(PolicyError, match=r"\[retention\] checklist_years"):
        policy_from_toml("[retention]\nchecklist_years = 0\n")


def test_parser_knows_the_commands() -> None:
    args = chatbot_cli._parser().parse_args(["records", "purge", "--dry-run"])
    assert isinstance(args, argparse.Namespace) and args.as_email == "" and args.dry_run
    with pytest.raises(SystemExit):
        chatbot_cli._parser().parse_args(["logs", "export", "--from", "2026-12-01"])
