"""Export, legal hold and retention purge, through `chatbot concerns ...` handlers."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import update

from adapters import concerns_cli
from chatbot.concerns.retention import retain_until
from chatbot.outbox import Dispatcher
from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.storage.models import Concern, ConcernEvent, OutboxMessage, Pupil
from chatbot.uow import Units
from tests.conftest import action
from tests.unit.test_concern_support import (
    MONDAY_10AM,
    NARRATIVE,
    audits,
    concerns,
    count,
    events,
    file_concern,
)


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    concerns_cli.add_parser(sub)
    return p.parse_args(["concerns", *argv])


async def cli(core: Units, *argv: str) -> int:
    args = parse(*argv)
    assert args.handler is concerns_cli.run
    return await concerns_cli.run(args, core)


AS_DSL = ("--as", "dsl@school.test")


@pytest.fixture(autouse=True)
def in_school_hours(clock: FixedClock) -> None:
    clock.set(MONDAY_10AM)


async def test_export_writes_chronology_and_is_audited(
    school: Units,
    bot: Bot,
    dispatcher: Dispatcher,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await file_concern(bot)
    await dispatcher.drain()
    [c] = await concerns(school)
    school.clock.advance(minutes=1)  # type: ignore[attr-defined]
    await bot.handle(action("dsl@school.test", "concern.view", str(c.id)))
    await bot.handle(action("dsl@school.test", "concern.ack", str(c.id)))
    out = tmp_path / "record.txt"
    assert (
        await cli(
            school,
            "export",
            "--reference",
            c.reference.lower(),
            "--out",
            str(out),
            "--as",
            "dsl@school.test",
        )
        == 0
    )
    text = out.read_text()
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert c.reference in text and NARRATIVE in text and "Sam Taylor" in text
    for line in ("Filed", "Alert delivered", "Details viewed", "Acknowledged", "Record exported"):
        assert line in text, line
    chronology = text.split("Chronology:")[1]
    order = [
        chronology.index(w)
        for w in ("Filed", "Alert delivered", "Details viewed", "Acknowledged", "Record exported")
    ]
    assert order == sorted(order), chronology
    [a] = await audits(school, "concern.export")
    assert a.actor_label == "dsl@school.test" and a.subject_id == c.reference
    assert NARRATIVE not in capsys.readouterr().out  # only the file holds the record

    assert (
        await cli(school, "export", "--reference", c.reference, "--as", "deputy@school.test") == 0
    )
    assert NARRATIVE in capsys.readouterr().out


async def test_printed_export_sends_no_control_sequence_to_the_terminal(
    school: Units, bot: Bot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A narrative carrying a terminal hyperlink and a clear-screen sequence is printed inert;
    the file written with --out keeps the record exactly as it was reported."""
    narrative = "Seen: \x1b]8;;https://evil.example\x07click\x1b]8;;\x07 then \x1b[2J\u202eend"
    await file_concern(bot, narrative=narrative)
    [c] = await concerns(school)
    assert await cli(school, "export", "--reference", c.reference, "--as", "dsl@school.test") == 0
    printed = capsys.readouterr().out
    assert "Seen: ]8;;https://evil.exampleclick]8;; then [2Jend" in printed
    assert not any(ch in printed for ch in "\x1b\x07\u202e")
    out = tmp_path / "record.txt"
    assert (
        await cli(
            school,
            "export",
            "--reference",
            c.reference,
            "--out",
            str(out),
            "--as",
            "dsl@school.test",
        )
        == 0
    )
    assert narrative in out.read_text()


async def test_export_refused_for_non_dsl(
    school: Units, bot: Bot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await file_concern(bot)
    [c] = await concerns(school)
    out = tmp_path / "record.txt"
    for who in ("teacher@school.test", "head@school.test", "nobody@else.test"):
        assert (
            await cli(school, "export", "--reference", c.reference, "--out", str(out), "--as", who)
            == 2
        )
    assert not out.exists()
    assert NARRATIVE not in capsys.readouterr().out
    assert [a.actor_label for a in await audits(school, "concern.export_refused")] == [
        "teacher@school.test",
        "head@school.test",
        "nobody@else.test",
    ]
    assert await audits(school, "concern.export") == []
    assert await cli(school, "export", "--reference", "C-1999-0001", "--as", "dsl@school.test") == 2


def test_retention_date() -> None:
    assert retain_until(date(2010, 5, 4), 0) == date(2035, 5, 4)
    assert retain_until(date(2010, 5, 4), 6) == date(2041, 5, 4)
    assert retain_until(date(2008, 2, 29), 0) == date(2033, 3, 1)
    assert retain_until(None, 6) is None
    assert retain_until(date(9999, 12, 31), 6) == date.max  # kept, and the purge carries on


async def _set_dob(core: Units, upn: str, dob: date) -> None:
    async with core.db.transaction() as s:
        await s.execute(update(Pupil).where(Pupil.upn == upn).values(date_of_birth=dob))


async def test_purge_respects_retention_and_legal_hold(
    school: Units, bot: Bot, dispatcher: Dispatcher, capsys: pytest.CaptureFixture[str]
) -> None:
    await _set_dob(school, "A123456789012", date(2000, 1, 1))  # 25 on 1 Jan 2025: past
    await _set_dob(school, "C123456789012", date(2019, 5, 5))  # 25 in 2044: keep
    await file_concern(bot)  # C-0001 Sam: past retention -> purged
    await file_concern(bot)  # C-0002 Sam: past retention but on legal hold -> kept
    await file_concern(bot, pupil="C123456789012")  # C-0003: not yet due -> kept
    await file_concern(bot, pupil="")  # C-0004: no pupil -> kept, review by hand
    await dispatcher.drain()
    await bot.sweep()
    assert (
        await cli(school, "hold", "--reference", "C-2026-0002", "--on", "--as", "dsl@school.test")
        == 0
    )
    [h] = await audits(school, "concern.legal_hold")
    assert h.detail == {"on": True} and h.actor_label == "dsl@school.test"

    assert await cli(school, "purge", "--dry-run", "--as", "deputy@school.test") == 0
    said = capsys.readouterr().out
    assert "Would delete 1 record(s) past retention: C-2026-0001" in said
    assert "legal hold: C-2026-0002" in said and "C-2026-0004" in said
    assert await count(school, Concern) == 4

    assert await cli(school, "purge", *AS_DSL) == 0
    assert [c.reference for c in await concerns(school)] == [
        "C-2026-0002",
        "C-2026-0003",
        "C-2026-0004",
    ]
    gone_id = 1
    assert await events(school, gone_id) == []
    async with school.db.transaction() as s:
        from sqlalchemy import select

        keys = set((await s.execute(select(OutboxMessage.thread_key))).scalars())
    assert "concern:1" not in keys and "concern:2" in keys
    [p] = await audits(school, "concern.purge")
    assert p.subject_id == "C-2026-0001" and p.detail == {"retained_until": "2025-01-01"}
    assert p.actor_label == "dsl@school.test"
    runs = await audits(school, "concern.purge_run")
    assert [(r.actor_label, r.detail["dry_run"], r.detail["purged"]) for r in runs] == [
        ("deputy@school.test", True, 1),
        ("dsl@school.test", False, 1),
    ]

    # Lifting the hold lets the next purge remove it.
    assert await cli(school, "hold", "--reference", "C-2026-0002", "--off", *AS_DSL) == 0
    assert await cli(school, "purge", *AS_DSL) == 0
    assert [c.reference for c in await concerns(school)] == ["C-2026-0003", "C-2026-0004"]
    assert await count(school, ConcernEvent) > 0


async def test_review_years_extend_retention(school: Units, bot: Bot) -> None:
    import dataclasses

    school.policy = dataclasses.replace(school.policy, retention_review_years=2)
    await _set_dob(school, "A123456789012", date(2000, 1, 1))  # kept until 1 Jan 2027
    await file_concern(bot)
    assert await cli(school, "purge", *AS_DSL) == 0
    assert await count(school, Concern) == 1
    school.clock.set(MONDAY_10AM.replace(year=2027, month=1, day=2))  # type: ignore[attr-defined]
    assert await cli(school, "purge", *AS_DSL) == 0
    assert await count(school, Concern) == 0


async def test_hold_unknown_reference(school: Units, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli(school, "hold", "--reference", "C-2026-9999", "--on", *AS_DSL) == 2
    assert "No concern with reference" in capsys.readouterr().err


async def test_hold_and_purge_only_for_a_dsl_and_every_attempt_audited(
    school: Units, bot: Bot, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--as` must name an active DSL or deputy DSL, as for export; head teacher (SLT and
    admin) is not enough. A refusal changes nothing and is audited with who it was run as."""
    await _set_dob(school, "A123456789012", date(2000, 1, 1))  # past retention
    await file_concern(bot)
    await file_concern(bot, category="staff_conduct", staff="dsl@school.test")
    refused_as: list[tuple[str, ...]] = [
        (),
        ("--as", "teacher@school.test"),
        ("--as", "head@school.test"),
        ("--as", "nobody@else.test"),
    ]
    for who in refused_as:
        assert await cli(school, "hold", "--reference", "C-2026-0001", "--on", *who) == 2
        assert await cli(school, "purge", *who) == 2
        said = capsys.readouterr().err
        assert said.count("Only a DSL or deputy DSL on the roster") == 2, said
        assert ("Give your school email with --as" in said) == (not who)
    # The DSL the second concern is about may not put it on hold either.
    assert await cli(school, "hold", "--reference", "C-2026-0002", "--on", *AS_DSL) == 2
    assert [(c.reference, c.legal_hold) for c in await concerns(school)] == [
        ("C-2026-0001", False),
        ("C-2026-0002", False),
    ]
    labels = ["cli (no --as given)", "teacher@school.test", "head@school.test", "nobody@else.test"]
    held = await audits(school, "concern.legal_hold_refused")
    assert [a.actor_label for a in held] == [*labels, "dsl@school.test"]
    assert {a.subject_id for a in held} == {"C-2026-0001", "C-2026-0002"}
    assert [a.actor_label for a in await audits(school, "concern.purge_refused")] == labels
    assert await audits(school, "concern.legal_hold") == []
    assert await audits(school, "concern.purge") == []
    assert await audits(school, "concern.purge_run") == []
    # A deputy DSL may.
    deputy = ("--as", "deputy@school.test")
    assert await cli(school, "hold", "--reference", "C-2026-0001", "--on", *deputy) == 0
    [h] = await audits(school, "concern.legal_hold")
    assert h.actor_label == "deputy@school.test"


async def test_a_removed_dsl_loses_access_at_once(school: Units, bot: Bot) -> None:
    """The Bot reuses roster matches for a few seconds, but never for concern decisions."""
    from chatbot.effects import Ephemeral, Popup
    from chatbot.roster import importer as roster
    from tests.conftest import STAFF_CSV, command, submit
    from tests.unit.test_concern_support import concerns, good

    await bot.handle(command("dsl@school.test", "my-calls"))  # the DSL is now a cached match
    await bot.handle(submit("teacher@school.test", "concern", good()))
    [c] = await concerns(school)
    [eff] = await bot.handle(action("dsl@school.test", "concern.view", str(c.id)))
    assert isinstance(eff, Popup)
    demoted = STAFF_CSV.replace(
        "dsl@school.test,Dee,Lead,staff;dsl", "dsl@school.test,Dee,Lead,staff"
    )
    await roster.import_staff(school, demoted)
    [eff] = await bot.handle(action("dsl@school.test", "concern.view", str(c.id)))
    assert isinstance(eff, Ephemeral)


@pytest.mark.parametrize(
    ("column", "value"),
    [("narrative", "Something else entirely."), ("category", "other"), ("reporter_label", "X")],
)
async def test_a_filed_report_cannot_be_changed_even_by_sql(
    school: Units, bot: Bot, column: str, value: str
) -> None:
    """The database itself refuses to change what the reporter wrote, whatever code tries."""
    from sqlalchemy.exc import DBAPIError

    await file_concern(bot)
    [c] = await concerns(school)
    with pytest.raises(DBAPIError, match="never changed"):
        async with school.db.transaction() as s:
            await s.execute(update(Concern).where(Concern.id == c.id).values({column: value}))
    [again] = await concerns(school)
    assert (again.narrative, again.category) == (NARRATIVE, c.category)
    # The workflow columns still change: acknowledging works.
    async with school.db.transaction() as s:
        await s.execute(update(Concern).where(Concern.id == c.id).values(legal_hold=True))
    [held] = await concerns(school)
    assert held.legal_hold


async def test_the_chronology_cannot_be_edited_even_by_sql(school: Units, bot: Bot) -> None:
    from sqlalchemy.exc import DBAPIError

    await file_concern(bot)
    [c] = await concerns(school)
    before = await events(school, c.id)
    assert before  # "filed" at least
    with pytest.raises(DBAPIError):
        async with school.db.transaction() as s:
            await s.execute(
                update(ConcernEvent).where(ConcernEvent.concern_id == c.id).values(kind="edited")
            )
    assert await events(school, c.id) == before
