"""The `chatbot` command: serve, console, database, roster, consent, policy, manifests."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path

from adapters import concerns_cli
from adapters.zoom import check as zoom_check
from chatbot.config import Settings, SettingsError
from chatbot.logsafe import quiet_libraries
from chatbot.policy import PolicyError, load_policy, to_toml
from chatbot.ports import SystemClock
from chatbot.roster.identity import cli_actor
from chatbot.storage.db import Database
from chatbot.storage.migrate import upgrade
from chatbot.storage.models import Staff
from chatbot.ui import no_controls
from chatbot.uow import Units

AS_HELP = "your school email, recorded as who acted (the CLI trusts the server account)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chatbot",
        description="Safe live video for schools: a Slack and Teams bot. Settings come from "
        "the environment (DATABASE_URL, CHATBOT_POLICY, SLACK_*, MicrosoftApp*, ZOOM_*).",
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
        help="when their email arrived: YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (school time)",
    )
    ev = g.add_mutually_exclusive_group(required=True)
    ev.add_argument("--evidence", help="the email's Message-ID and subject")
    ev.add_argument("--eml", type=Path, help="the saved .eml file (its SHA-256 is stored)")
    g.add_argument("--as", dest="as_email", help=AS_HELP)
    w = csub.add_parser("withdraw", help="withdraw consent")
    w.add_argument("upn")
    w.add_argument("--as", dest="as_email", help=AS_HELP)
    csub.add_parser("list", help="pupils with consent on file")
    csub.add_parser("letter", help="print the information email to send parents first")

    pol = sub.add_parser("policy", help="the school policy in force")
    pol.add_argument("action", choices=["show"])

    man = sub.add_parser("manifest", help="Slack manifest / Teams app package")
    msub = man.add_subparsers(dest="platform", required=True)
    ms = msub.add_parser("slack", help="print the Slack app manifest")
    ms.add_argument("--url", required=True, help="public base URL, e.g. https://bot.school.uk")
    mt = msub.add_parser("teams", help="build the Teams app package (zip)")
    mt.add_argument("--app-id", required=True)
    mt.add_argument("--out", type=Path, default=Path("app.zip"))

    concerns_cli.add_parser(sub)
    zoom_check.add_parser(sub)
    return p


async def _units(settings: Settings) -> Units:
    policy = load_policy(settings.policy_path)
    db = Database(settings.database_url)
    await upgrade(db)
    return Units(db=db, policy=policy, clock=SystemClock())


async def _cli_actor(units: Units, as_email: str | None) -> tuple[Staff | None, str]:
    async with units.read() as u:
        return await cli_actor(u.session, as_email)


def _parse_received(text: str, units: Units) -> datetime:
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=units.policy.zone)
        except ValueError:
            continue
    raise SystemExit(f"--received {text!r}: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM'")


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.cmd == "policy":
        print(to_toml(load_policy(settings.policy_path)), end="")
        return 0
    if args.cmd == "consent" and args.consent_cmd == "letter":
        from chatbot.consent.letter import letter_text

        print(letter_text(load_policy(settings.policy_path)))
        return 0
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
        return await _run_with_database(args, units)
    finally:
        await units.db.dispose()


async def _run_with_database(args: argparse.Namespace, units: Units) -> int:
    from chatbot.consent import service as consent
    from chatbot.roster import importer as roster

    if args.cmd == "db":
        print(f"Database is up to date ({units.db.dialect}).")
        return 0
    if args.cmd == "import":
        try:
            text = args.file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"Cannot read {args.file}: {exc}", file=sys.stderr)
            return 2
        fn = roster.import_staff if args.what == "staff" else roster.import_pupils
        try:
            report = await fn(units, text, actor="cli", deactivate_missing=args.deactivate_missing)
        except roster.RosterError as exc:
            print(f"{args.file}: {exc}", file=sys.stderr)
            return 2
        for line, reason in report.rejected:
            print(f"{args.file}:{line}: skipped: {reason}", file=sys.stderr)
        gone = f", {report.deactivated} deactivated" if args.deactivate_missing else ""
        print(
            f"{args.what}: {report.created} added, {report.updated} updated{gone}, "
            f"{len(report.rejected)} skipped."
        )
        if report.usable == 0:
            print("No usable rows: nothing was imported.", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "consent":
        if args.consent_cmd == "grant":
            if args.eml:
                try:
                    evidence, kind = consent.eml_evidence(args.eml), "eml_sha256"
                except OSError as exc:
                    print(f"Cannot read {args.eml}: {exc}", file=sys.stderr)
                    return 2
            else:
                evidence, kind = args.evidence, "message_id"
            actor, label = await _cli_actor(units, args.as_email)
            async with units.write() as u:
                res = await consent.grant(
                    u,
                    upn=args.upn,
                    parent_email=args.parent_email,
                    received_at=_parse_received(args.received, units),
                    evidence_kind=kind,
                    evidence=evidence,
                    actor=actor,
                    actor_label=label,
                )
            if res.errors:
                for field, msg in res.errors.items():
                    print(f"{field}: {msg}", file=sys.stderr)
                return 2
            assert res.pupil is not None
            name = no_controls(res.pupil.short_name)
            print(f"Recorded written consent for {name} ({res.pupil.upn}).")
            return 0
        if args.consent_cmd == "withdraw":
            actor, label = await _cli_actor(units, args.as_email)
            async with units.write() as u:
                err = await consent.withdraw(u, args.upn, actor, label, cli=True)
            if err:
                print(err, file=sys.stderr)
                return 2
            print(f"Consent withdrawn for {args.upn.upper()}.")
            return 0
        async with units.read() as u:
            rows = await consent.listing(u)
        for pupil, c in rows:
            when = c.received_at.astimezone(units.policy.zone).strftime("%Y-%m-%d %H:%M")
            name = no_controls(pupil.short_name)  # from a roster file: shown inert
            print(f"{pupil.upn}  {name:<24} {c.parent_email:<32} received {when}")
        print(f"{len(rows)} pupil(s) with consent on file.")
        return 0
    if args.cmd == "concerns":
        return await concerns_cli.run(args, units)
    raise AssertionError(args.cmd)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_libraries()  # no SQL values or request bodies (concern text) in the logs
    args = _parser().parse_args(argv)
    if args.cmd == "console":
        logging.getLogger().setLevel(logging.WARNING)  # keep the chat readable
    try:
        settings = Settings.from_env()
        return asyncio.run(_run(args, settings))
    except (PolicyError, SettingsError) as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
