"""`chatbot concerns ...`: export a concern's record, purge past retention, legal hold.

    chatbot concerns list --as dsl@school.uk
    chatbot concerns export --reference C-2026-0042 --as dsl@school.uk [--out FILE]
    chatbot concerns purge --as dsl@school.uk [--dry-run]
    chatbot concerns hold --reference C-2026-0042 --on|--off --as dsl@school.uk

Each is refused unless ``--as`` names an active DSL or deputy DSL on the roster (the head
teacher may list and export concerns about members of staff), and every
run, allowed or refused, is audited with who it was run as. ``--as`` is not a login: the CLI
trusts whoever can run it on the server, and records who they say they are.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from chatbot.concerns import export, records, retention
from chatbot.concerns import notices as cn
from chatbot.roster.identity import cli_actor
from chatbot.ui import no_controls
from chatbot.uow import Units

AS_HELP = "your school email; you must be a DSL or deputy DSL"
GIVE_AS = "Give your school email with --as; only a DSL or deputy DSL may do this."


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("concerns", help="safeguarding concern records (DSL only)")
    sub = p.add_subparsers(dest="concerns_cmd", required=True)

    ls = sub.add_parser("list", help="open concerns, those not yet acknowledged first")
    ls.add_argument("--as", dest="as_email", default="", help=AS_HELP + " (required)")

    e = sub.add_parser("export", help="write a concern's full record and chronology")
    e.add_argument("--reference", required=True, help="for example C-2026-0042")
    e.add_argument("--out", type=Path, help="file to write (default: print it)")
    e.add_argument("--as", dest="as_email", required=True, help=AS_HELP)

    pg = sub.add_parser("purge", help="delete records past retention and not on legal hold")
    pg.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    # Not required by the parser, so that a run without it is refused *and* audited.
    pg.add_argument("--as", dest="as_email", default="", help=AS_HELP + " (required)")

    h = sub.add_parser("hold", help="place or lift a legal hold (stops the purge)")
    h.add_argument("--reference", required=True)
    on_off = h.add_mutually_exclusive_group(required=True)
    on_off.add_argument("--on", dest="hold", action="store_true")
    on_off.add_argument("--off", dest="hold", action="store_false")
    h.add_argument("--as", dest="as_email", default="", help=AS_HELP + " (required)")
    p.set_defaults(handler=run)


async def run(args: argparse.Namespace, units: Units) -> int:
    if args.concerns_cmd == "list":
        return await _list(args, units)
    if args.concerns_cmd == "export":
        return await _export(args, units)
    if args.concerns_cmd == "purge":
        return await _purge(args, units)
    if args.concerns_cmd == "hold":
        return await _hold(args, units)
    raise AssertionError(args.concerns_cmd)


async def _list(args: argparse.Namespace, units: Units) -> int:
    async with units.write() as u:  # the list is audited
        who, label = await cli_actor(u.session, args.as_email, retention.NO_AS)
        rows, why = await records.open_concerns(u, who, label)
    if rows is None:
        return _refused(args, why)
    for c in rows:
        print(no_controls(cn.listed_line(c, units.now())))
    waiting = sum(1 for c in rows if c.acknowledged_by is None)
    print(f"{len(rows)} open concern(s), {waiting} not acknowledged.")
    return 0


async def _export(args: argparse.Namespace, units: Units) -> int:
    destination = f"file {args.out.name}" if args.out else "printed"
    res = await export.export(units, args.reference, args.as_email, destination)
    if not res.ok:
        print(res.text, file=sys.stderr)
        return 2
    if args.out is None:
        # To the terminal: without control sequences a narrative or name could carry. The
        # file (below) keeps the record exactly as it was written.
        print(no_controls(res.text), end="")
        return 0
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(res.text)
    except OSError as exc:
        print(f"Cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"Wrote {args.reference.upper()} to {args.out} (readable only by you).")
    return 0


def _refused(args: argparse.Namespace, why: str) -> int:
    print(why, file=sys.stderr)
    if not args.as_email.strip():
        print(GIVE_AS, file=sys.stderr)
    return 2


async def _purge(args: argparse.Namespace, units: Units) -> int:
    report = await retention.purge(units, args.as_email, dry_run=args.dry_run)
    if report.refused:
        return _refused(args, report.refused)
    verb = "Would delete" if args.dry_run else "Deleted"
    print(
        f"{verb} {len(report.purged)} record(s) past retention"
        + (f": {', '.join(report.purged)}" if report.purged else ".")
    )
    if report.held:
        print(
            f"Kept {len(report.held)} past retention because of a legal hold: "
            f"{', '.join(report.held)}"
        )
    if report.undated:
        print(
            f"Kept {len(report.undated)} with no pupil date of birth on file (review by "
            f"hand): {', '.join(report.undated)}"
        )
    return 0


async def _hold(args: argparse.Namespace, units: Units) -> int:
    err = await retention.set_hold(units, args.reference, args.hold, args.as_email)
    if err:
        return _refused(args, err)
    print(f"Legal hold {'placed on' if args.hold else 'lifted from'} {args.reference.upper()}.")
    return 0
