"""`chatbot logs export` and `chatbot records purge`: reading and tidying call records.

    chatbot logs export --from 2026-12-01 --to 2026-12-18 --as slt@school.uk [--out FILE]
                        [--pupil NAME-OR-UPN] [--class NAME]
    chatbot records purge --as slt@school.uk [--dry-run]

``--as`` names who is acting, as in ``chatbot concerns``: the export gives SLT, the DSL and
deputy DSLs every log and other staff their own calls' logs; the purge is for SLT, the DSL and
deputy DSLs. Every run, allowed or refused, is audited with who it was run as.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from chatbot.bookings import logbook, retention
from chatbot.fields import FieldError
from chatbot.ui import no_controls
from chatbot.uow import Units

AS_HELP = "your school email, recorded as who acted (required)"
GIVE_AS = "Give your school email with --as."


def add_parser(subparsers: Any) -> None:
    lg = subparsers.add_parser("logs", help="Keeping in Touch call logs")
    lsub = lg.add_subparsers(dest="logs_cmd", required=True)
    e = lsub.add_parser("export", help="write the call logs of a date range as CSV")
    e.add_argument("--from", dest="start", required=True, help="first call date, YYYY-MM-DD")
    e.add_argument("--to", dest="end", required=True, help="last call date, YYYY-MM-DD")
    e.add_argument("--pupil", default="", help="only calls with this pupil (UPN or name)")
    e.add_argument("--class", dest="class_name", help="only calls with a pupil in this class")
    e.add_argument("--out", type=Path, help="CSV file to write (default: print it)")
    # Not required by the parser, so that a run without it is refused *and* audited.
    e.add_argument("--as", dest="as_email", default="", help=AS_HELP)
    lg.set_defaults(handler=run)

    rec = subparsers.add_parser("records", help="call records past their retention period")
    rsub = rec.add_subparsers(dest="records_cmd", required=True)
    pg = rsub.add_parser(
        "purge", help="delete call logs, checklist ticks and withdrawn consents past retention"
    )
    pg.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    pg.add_argument("--as", dest="as_email", default="", help=AS_HELP)
    rec.set_defaults(handler=run)


async def run(args: argparse.Namespace, units: Units) -> int:
    if args.cmd == "logs":
        return await _export(args, units)
    return await _purge(args, units)


def _refused(args: argparse.Namespace, why: str) -> int:
    print(why, file=sys.stderr)
    if not args.as_email.strip():
        print(GIVE_AS, file=sys.stderr)
    return 2


async def _export(args: argparse.Namespace, units: Units) -> int:
    try:
        start = logbook.day(args.start, "--from")
        end = logbook.day(args.end, "--to")
    except FieldError as e:
        print(e.message, file=sys.stderr)
        return 2
    if end < start:
        print("--to is before --from.", file=sys.stderr)
        return 2
    f = logbook.LogFilter(start, end, class_name=args.class_name)
    destination = f"file {args.out.name}" if args.out else "printed"
    res = await logbook.export(units, args.as_email, f, destination, pupil=args.pupil)
    if not res.ok:
        return _refused(args, res.text)
    if args.out is None:
        print(no_controls(res.text), end="")  # to a terminal: nothing that could steer it
        return 0
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(res.text)
    except OSError as exc:
        print(f"Cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"Wrote {res.count} log(s) to {args.out} (readable only by you).")
    return 0


async def _purge(args: argparse.Namespace, units: Units) -> int:
    report = await retention.purge(units, args.as_email, dry_run=args.dry_run)
    if report.refused:
        return _refused(args, report.refused)
    verb = "Would delete" if args.dry_run else "Deleted"
    for what, kind in (
        ("call log(s)", report.logs),
        ("call checklist(s)", report.ticks),
        ("withdrawn consent record(s)", report.consents),
    ):
        line = f"{verb} {len(kind.due)} {what} past retention"
        if kind.held:
            line += f"; kept {len(kind.held)} held for a safeguarding concern"
        print(line + ".")
    return 0
