"""The `chatbot` command: serve, console, database, roster, consent, policy, manifests."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import date, datetime
from pathlib import Path

from adapters import concerns_cli, records_cli
from adapters.zoom import check as zoom_check
from chatbot.config import Settings, SettingsError
from chatbot.fields import parse_moment
from chatbot.logsafe import quiet_libraries
from chatbot.policy import PolicyError, load_policy, to_toml
from chatbot.ports import SystemClock
from chatbot.roster.identity import cli_actor
from chatbot.storage.db import Database, DatabaseUnusable
from chatbot.storage.migrate import upgrade
from chatbot.storage.models import Staff
from chatbot.ui import no_controls
from chatbot.uow import Units

AS_HELP = "your school email, recorded as who acted (the CLI trusts the server account)"
# Every command exits with one of these (see EXIT_CODES_HELP).
OK, UNEXPECTED, REFUSED, INTERRUPTED = 0, 1, 2, 130
EXIT_CODES_HELP = """exit codes:
  0    done
  1    an unexpected failure (a bug, or the database could not be reached); see the log
  2    refused, and nothing was changed: bad input (a file, a date, an argument), a bad
       setting or policy file, or something the --as person may not do
  130  interrupted (Ctrl+C)"""


def _moment(text: str) -> date | datetime:
    """--received: a day, or a day and time (ISO 8601); argparse refuses anything else."""
    try:
        return parse_moment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chatbot",
        description="Safe live video for schools: a Slack and Teams bot. Settings come from "
        "the environment (DATABASE_URL, CHATBOT_POLICY, SLACK_*, MicrosoftApp*, ZOOM_*).",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show log lines (information and warnings) on stderr; `serve` always does, other "
        "commands show only errors without it",
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the HTTP server for Slack and Teams")
    s.add_argument(
        "--host",
        help="address to listen on (default 0.0.0.0, all interfaces; 127.0.0.1 with "
        "--teams-emulator)",
    )
    s.add_argument("--port", type=int, default=3978)
    mode = s.add_mutually_exclusive_group()
    mode.add_argument(
        "--production",
        action="store_true",
        help="refuse to start without Teams or Slack credentials",
    )
    mode.add_argument(
        "--teams-emulator",
        action="store_true",
        help="without MicrosoftAppId, run /api/messages unauthenticated for the Bot Framework "
        "Emulator (only on a loopback address; replies go only to loopback)",
    )

    c = sub.add_parser("console", help="chat with the bot in this terminal")
    c.add_argument("--as", dest="email", help="your school email (must be on the roster)")
    c.add_argument("--demo", action="store_true", help="load a demo school first")

    d = sub.add_parser("db", help="database maintenance")
    d.add_argument("action", choices=["upgrade"])

    imp = sub.add_parser("import", help="import the staff or pupil roster from CSV")
    imp.add_argument("what", choices=["staff", "pupils"])
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--deactivate-missing",
        action="store_true",
        help="deactivate people on the roster who are not in this file (leavers)",
    )

    con = sub.add_parser("consent", help="record written parental consent")
    csub = con.add_subparsers(dest="consent_cmd", required=True)
    g = csub.add_parser("grant", help="record a parent's written agreement")
    g.add_argument("upn")
    g.add_argument("--parent-email", required=True)
    g.add_argument(
        "--received",
        required=True,
        type=_moment,
        help="when their email arrived: YYYY-MM-DD (the day alone), 'YYYY-MM-DD HH:MM' or "
        "ISO 8601 such as 2026-11-20T18:03:00 or 2026-11-20T18:03+00:00 (school time unless "
        "an offset is given)",
    )
    ev = g.add_mutually_exclusive_group(required=True)
    ev.add_argument(
        "--evidence",
        help="the email's Message-ID (in angle brackets, from its headers) and subject, "
        "e.g. '<CA+abc@mail.gmail.com> Re: video calls'",
    )
    ev.add_argument("--eml", type=Path, help="the saved .eml file (its SHA-256 is stored)")
    g.add_argument("--as", dest="as_email", help=AS_HELP)
    g.add_argument(
        "--reason",
        default="",
        help="why you accept it, when the address is not the parent email on the roster",
    )
    r = csub.add_parser("request", help="email the parent the information and ask them to agree")
    r.add_argument("upn")
    r.add_argument(
        "--as", dest="as_email", required=True, help="your school email: their reply comes to you"
    )
    i = csub.add_parser("import", help="keep a parent's reply (a saved .eml file) as evidence")
    i.add_argument("eml", type=Path)
    w = csub.add_parser("withdraw", help="withdraw consent")
    w.add_argument("upn")
    w.add_argument("--as", dest="as_email", help=AS_HELP)
    csub.add_parser("list", help="pupils with consent on file")
    csub.add_parser("letter", help="print the information email to send parents first")

    pol = sub.add_parser("policy", help="the school policy in force, and its term dates")
    psub = pol.add_subparsers(dest="policy_cmd", required=True)
    psub.add_parser("show", help="print the policy in force as TOML")
    terms = psub.add_parser("terms", help="the school calendar: terms, holidays, INSET days")
    tsub = terms.add_subparsers(dest="terms_cmd", required=True)
    ti = tsub.add_parser(
        "import",
        help="import term dates from an iCalendar (.ics) file or a CSV (name, start, end, "
        "kind); replaces what was imported before from a file of the same name",
    )
    ti.add_argument("file", type=Path)
    ti.add_argument(
        "--replace", action="store_true", help="replace the whole imported calendar instead"
    )
    ti.add_argument("--as", dest="as_email", help=AS_HELP)
    tsub.add_parser("list", help="the imported terms, holidays and INSET days")

    man = sub.add_parser("manifest", help="Slack manifest / Teams app package")
    msub = man.add_subparsers(dest="platform", required=True)
    ms = msub.add_parser("slack", help="print the Slack app manifest")
    ms.add_argument("--url", required=True, help="public base URL, e.g. https://bot.school.uk")
    mt = msub.add_parser("teams", help="build the Teams app package (zip)")
    mt.add_argument("--app-id", required=True)
    mt.add_argument("--out", type=Path, default=Path("app.zip"))

    concerns_cli.add_parser(sub)
    records_cli.add_parser(sub)
    zoom_check.add_parser(sub)
    return p


async def _units(settings: Settings) -> Units:
    from adapters.email import mail_setup

    policy = load_policy(settings.policy_path)
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    await upgrade(db)
    return Units(db=db, policy=policy, clock=SystemClock(), mail=mail_setup(settings))


async def _cli_actor(units: Units, as_email: str | None) -> tuple[Staff | None, str]:
    async with units.read() as u:
        return await cli_actor(u.session, as_email)


def _in_school_time(moment: date | datetime, units: Units) -> date | datetime:
    """A time given without an offset is school time; a day alone stays a day."""
    if isinstance(moment, datetime) and moment.tzinfo is None:
        return moment.replace(tzinfo=units.policy.zone)
    return moment


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.cmd == "policy" and args.policy_cmd == "show":
        print(to_toml(load_policy(settings.policy_path)), end="")
        return OK
    if args.cmd == "consent" and args.consent_cmd == "letter":
        from chatbot.consent.letter import letter_text

        print(letter_text(load_policy(settings.policy_path)))
        return OK
    if args.cmd == "manifest":
        if args.platform == "slack":
            from adapters.slack.manifest import main as slack_manifest

            return slack_manifest(args)
        from adapters.teams.package import main as teams_package

        return teams_package(args)
    if args.cmd == "serve":
        from adapters.server import serve

        host = args.host or ("127.0.0.1" if args.teams_emulator else "0.0.0.0")
        return await serve(settings, host, args.port, args.production, args.teams_emulator)
    if args.cmd == "console":
        from adapters.console.main import run_console

        return await run_console(settings, args.email, args.demo)
    if args.cmd == "zoom":
        policy = load_policy(settings.policy_path)
        if not args.all:
            return await zoom_check.run(settings, None, policy.zoom_fix_user_settings)
        units = await _units(settings)
        try:
            return await zoom_check.run(settings, units, policy.zoom_fix_user_settings)
        finally:
            await units.db.dispose()

    units = await _units(settings)
    try:
        if args.cmd == "consent" and args.consent_cmd in ("request", "import"):
            return await _consent_by_email(args, units, settings)
        return await _run_with_database(args, units)
    finally:
        await units.db.dispose()


async def _run_with_database(args: argparse.Namespace, units: Units) -> int:
    from chatbot.consent import service as consent
    from chatbot.roster import importer as roster

    if args.cmd == "db":
        print(f"Database is up to date ({units.db.dialect}).")
        return OK
    if args.cmd == "import":
        try:
            text = args.file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"Cannot read {args.file}: {exc}", file=sys.stderr)
            return REFUSED
        fn = roster.import_staff if args.what == "staff" else roster.import_pupils
        try:
            report = await fn(units, text, actor="cli", deactivate_missing=args.deactivate_missing)
        except roster.RosterError as exc:
            print(f"{args.file}: {exc}", file=sys.stderr)
            return REFUSED
        for line, reason in report.rejected:
            print(f"{args.file}:{line}: skipped: {reason}", file=sys.stderr)
        gone = f", {report.deactivated} deactivated" if args.deactivate_missing else ""
        print(
            f"{args.what}: {report.created} added, {report.updated} updated{gone}, "
            f"{len(report.rejected)} skipped."
        )
        if report.usable == 0:
            print("No usable rows: nothing was imported.", file=sys.stderr)
            return REFUSED
        return OK
    if args.cmd == "consent":
        if args.consent_cmd == "grant":
            if args.eml:
                try:
                    evidence, kind = consent.eml_evidence(args.eml), "eml_sha256"
                except OSError as exc:
                    print(f"Cannot read {args.eml}: {exc}", file=sys.stderr)
                    return REFUSED
                except consent.EvidenceError as exc:
                    print(f"eml: {exc}", file=sys.stderr)
                    return REFUSED
            else:
                evidence, kind = args.evidence, "message_id"
            actor, label = await _cli_actor(units, args.as_email)
            async with units.write() as u:
                res = await consent.grant(
                    u,
                    upn=args.upn,
                    parent_email=args.parent_email,
                    received_at=_in_school_time(args.received, units),
                    evidence_kind=kind,
                    evidence=evidence,
                    actor=actor,
                    actor_label=label,
                    reason=args.reason,
                )
            if res.errors:
                for field, msg in res.errors.items():
                    print(f"{field}: {msg}", file=sys.stderr)
                return REFUSED
            assert res.pupil is not None
            name = no_controls(res.pupil.short_name)
            print(f"Recorded written consent for {name} ({res.pupil.upn}).")
            if res.released:
                print(f"{len(res.released)} call(s) on hold for it can go ahead again.")
            return OK
        if args.consent_cmd == "withdraw":
            actor, label = await _cli_actor(units, args.as_email)
            async with units.write() as u:
                w = await consent.withdraw(u, args.upn, actor, label, cli=True)
            if w.error:
                print(no_controls(w.error), file=sys.stderr)
                return REFUSED
            print(no_controls(w.summary(units.policy.zone)))
            return OK
        from chatbot.consent import by_email

        async with units.read() as u:
            rows = await consent.listing(u)
            asked = [(p, by_email.status_line(u, r, p)) for r, p in await by_email.open_requests(u)]
        for pupil, c in rows:
            if c.received_at is None:
                when = f"{c.received_on:%Y-%m-%d}      "
            else:
                when = c.received_at.astimezone(units.policy.zone).strftime("%Y-%m-%d %H:%M")
            name = no_controls(pupil.short_name)  # from a roster file: shown inert
            print(f"{pupil.upn}  {name:<24} {c.parent_email:<32} received {when}")
        print(f"{len(rows)} pupil(s) with consent on file.")
        for pupil, line in asked:
            print(f"{pupil.upn}  {no_controls(line)}")
        if asked:
            print(f"{len(asked)} consent request(s) waiting for a reply.")
        return OK
    if args.cmd == "policy":
        return await _terms(args, units)
    if args.cmd == "concerns":
        return await concerns_cli.run(args, units)
    if args.cmd in ("logs", "records"):
        return await records_cli.run(args, units)
    raise AssertionError(args.cmd)


async def _consent_by_email(args: argparse.Namespace, units: Units, settings: Settings) -> int:
    """`consent request` (the email goes out now if the mail is set up) and `consent import`."""
    from adapters.email import transport
    from chatbot.consent import by_email
    from chatbot.mail.inbound import MAX_MESSAGE_BYTES, too_large
    from chatbot.mail.outbox import MailDispatcher

    if args.consent_cmd == "request":
        actor, _ = await _cli_actor(units, args.as_email)
        if actor is None or not actor.active:
            print(f"--as {args.as_email[:80]!r} is not on the staff roster.", file=sys.stderr)
            return REFUSED
        async with units.write() as u:
            words, req = await by_email.request(u, actor, args.upn)
        print(no_controls(words), file=sys.stdout if req else sys.stderr)
        email = transport(settings)
        if req is not None and email is not None:
            await MailDispatcher(units, email).drain()
        return OK if req else REFUSED
    try:
        size = args.eml.stat().st_size
        if size > MAX_MESSAGE_BYTES:  # refused before it is read into memory
            print(too_large(size).reason, file=sys.stderr)
            return REFUSED
        raw = args.eml.read_bytes()
    except OSError as exc:
        print(f"Cannot read {args.eml}: {exc.strerror or exc}", file=sys.stderr)
        return REFUSED
    async with units.write() as u:
        outcome = await by_email.take_in(u, raw, "file")
    print(no_controls(outcome.text), file=sys.stdout if outcome.kept else sys.stderr)
    return OK if outcome.kept else REFUSED


async def _terms(args: argparse.Namespace, units: Units) -> int:
    """`chatbot policy terms import FILE` and `chatbot policy terms list`."""
    from chatbot.terms import calendar
    from chatbot.terms.reading import CalendarFileError, read_file

    if args.terms_cmd == "list":
        async with units.read() as u:
            entries = await calendar.listing(u)
        for e in entries:
            print(f"{e.starts_on} to {e.ends_on}  {e.kind:<8} {no_controls(e.name)}")
        print(f"{len(entries)} entr(ies) in the imported school calendar.")
        if not await calendar.has_term_dates(units):
            print(calendar.NO_TERMS_WARNING, file=sys.stderr)
        return OK
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"Cannot read {args.file}: {exc}", file=sys.stderr)
        return REFUSED
    try:
        read = read_file(args.file.name, data, units.policy.zone)
    except CalendarFileError as exc:
        print(f"{args.file}: {exc}; nothing was imported.", file=sys.stderr)
        return REFUSED
    for which, why in read.skipped:
        print(f"{args.file}: skipped {no_controls(which)}: {why}", file=sys.stderr)
    actor, label = await _cli_actor(units, args.as_email)
    async with units.write() as u:
        removed = await calendar.replace_from(
            u, args.file.name, read.entries, actor.email if actor else label, args.replace
        )
    counts = {k: sum(1 for e in read.entries if e.kind == k) for k in calendar.KINDS}
    print(
        f"Term dates: {counts['term']} term(s), {counts['holiday']} holiday(s), "
        f"{counts['inset']} INSET day(s) imported; {removed} earlier entr(ies) replaced; "
        f"{len(read.skipped)} skipped."
    )
    return OK


def setup_logging(cmd: str, verbose: bool) -> None:
    """The server logs from INFO up, to stderr, for its operator. The console and one-off
    commands are a conversation and a command's answer: there only errors are shown (a chase's
    warning or a migration's INFO line is not something the person at the keyboard asked for),
    unless ``--verbose``."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if cmd != "serve" and not verbose:
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.ERROR)  # also what quieted libraries pass on at WARNING
    quiet_libraries()  # no SQL values or request bodies (concern text) in the logs


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.cmd, args.verbose)
    try:
        settings = Settings.from_env()
        return asyncio.run(_run(args, settings))
    except (PolicyError, SettingsError, DatabaseUnusable) as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return REFUSED
    except KeyboardInterrupt:
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
