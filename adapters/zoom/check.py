"""`chatbot zoom check [--all]`: what the IT technician needs to know about the Zoom connection.

Without ``--all``: which settings are missing and where each is found, whether Zoom accepts
the credentials, and whether the app was given every scope the bot uses. With ``--all``: every
active member of staff on the roster, whether they are a user of the school's Zoom account
and whether their account settings (screen sharing, renaming) follow the policy, as a table.
Secrets are never printed, only whether they are set. Exit status 0 when all is well, 1 when
something needs doing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from adapters.zoom import missing
from chatbot.config import Settings
from chatbot.meetings import rules
from chatbot.ports import MeetingError
from chatbot.storage.models import Staff
from chatbot.uow import Units

if TYPE_CHECKING:  # the client (and aiohttp) load only when a check talks to Zoom
    from adapters.zoom.client import ZoomClient

WHERE = {
    "ZOOM_ACCOUNT_ID": "your Server-to-Server OAuth app → App Credentials → Account ID",
    "ZOOM_CLIENT_ID": "the same page → Client ID",
    "ZOOM_CLIENT_SECRET": "the same page → Client secret",
    "ZOOM_WEBHOOK_SECRET": "the app's Features → Access → Secret Token (for POST /zoom/events)",
}
# What the bot does -> the granular scopes that allow it, or the classic scope that does.
SCOPES: dict[str, tuple[str, str]] = {
    "create meetings": ("meeting:write:meeting:admin", "meeting:write:admin"),
    "read meetings back": ("meeting:read:meeting:admin", "meeting:read:admin"),
    "change meetings": ("meeting:update:meeting:admin", "meeting:write:admin"),
    "delete meetings": ("meeting:delete:meeting:admin", "meeting:write:admin"),
    "find a meeting after a restart": ("meeting:read:list_meetings:admin", "meeting:read:admin"),
    "read hosts' settings": ("user:read:settings:admin", "user:read:admin"),
}
FIX_SCOPE = ("change hosts' settings", ("user:update:settings:admin", "user:write:admin"))


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("zoom", help="the connection to Zoom")
    sub = p.add_subparsers(dest="zoom_cmd", required=True)
    c = sub.add_parser("check", help="say what is missing from the Zoom set-up")
    c.add_argument(
        "--all",
        action="store_true",
        help="also check every member of staff's Zoom account settings (a table)",
    )


def needed_scopes(fix_allowed: bool) -> dict[str, tuple[str, str]]:
    """The scopes the bot uses; changing hosts' settings only if the policy file allows it."""
    scopes = dict(SCOPES)
    if fix_allowed:
        scopes[FIX_SCOPE[0]] = FIX_SCOPE[1]
    return scopes


async def run(settings: Settings, units: Units | None, fix_allowed: bool) -> int:
    """``units`` given: audit every member of staff (``--all``)."""
    ok = True
    for name in missing(settings):
        ok = False
        print(f"missing  {name}: set it from {WHERE[name]}.")
    if not settings.zoom_configured:
        print("Zoom is not connected: the bot does not create meetings. See the README.")
        return 1
    from adapters.zoom.client import ZoomClient

    client = ZoomClient(settings)
    try:
        try:
            await client.token()
        except MeetingError as e:
            print(f"Zoom refused the credentials or can't be reached ({e.kind}).")
            print("Check ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET, that the app is")
            print("activated in the Zoom Marketplace, and that this server can reach")
            print(f"{settings.zoom_oauth_url}.")
            return 1
        print(f"ok       credentials accepted by Zoom ({settings.zoom_oauth_url})")
        for does, (granular, classic) in needed_scopes(fix_allowed).items():
            if granular in client.scopes or classic in client.scopes:
                print(f"ok       scope to {does}")
            else:
                ok = False
                print(f"missing  scope to {does}: add {granular} to the app (Scopes page)")
        if units is not None:
            ok = await _audit(client, units) and ok
    finally:
        await client.close()
    print("All set." if ok else "Something above needs doing.")
    return 0 if ok else 1


async def _audit(client: ZoomClient, units: Units) -> bool:
    async with units.read() as u:
        staff = list(
            (
                await u.session.execute(
                    select(Staff).where(Staff.active.is_(True)).order_by(Staff.email)
                )
            ).scalars()
        )
    rows: list[tuple[str, str, str, str, str]] = []
    ok = True
    for person in staff:
        try:
            found = rules.breaches(await client.user_settings(person.email))
        except MeetingError as e:
            ok = False
            user = "not a Zoom user" if e.not_found else f"error {e.kind}"
            rows.append((person.email, user, "-", "-", "can't host Zoom calls"))
            continue
        keys = {b.key for b in found}
        sharing = "participants can" if "screen_sharing" in keys else "host only"
        renaming = "allowed" if "rename" in keys else "off"
        ok = ok and not found
        verdict = "OK" if not found else "fix: " + "; ".join(b.how for b in found)
        rows.append((person.email, "yes", sharing, renaming, verdict))
    header = ("staff email", "Zoom user", "screen sharing", "renaming", "policy")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)), row[4])
    print(f"{len(rows)} member(s) of staff checked.")
    return ok
