"""Someone who is not on the staff roster can still report a concern, but no picker on any
surface ever shows them a member of staff or a pupil: not the list a colleague was just
shown, not the answer to a search."""

from __future__ import annotations

import copy
import json

from chatbot.uow import Units
from tests.adapters.test_console import run as run_console
from tests.adapters.test_slack_support import running
from tests.adapters.test_teams_adapter import Teams
from tests.adapters.test_teams_adapter import connector as connector  # noqa: F401 (fixture)
from tests.adapters.test_teams_adapter import teams as teams  # noqa: F401 (fixture)

STAFF = ("teacher@school.test", "colleague@school.test", "dsl@school.test", "Tess", "Colin")
PUPILS = ("A123456789012", "B123456789012", "Sam", "Taylor")


def leaks(text: str) -> list[str]:
    return [x for x in (*STAFF, *PUPILS) if x in text]


async def test_slack_pickers_show_an_outsider_nobody(school: Units) -> None:
    async with running(school) as slack:
        # A colleague searches first, so nothing can be left over for the outsider.
        status, found = await slack.suggest("U0TEACHER", "pupils", "sa")
        assert status == 200 and found["options"]
        status, found = await slack.suggest("U0STRANGE", "pupils", "sa")
        assert status == 200 and found == {"options": []}
        status, found = await slack.suggest("U0STRANGE", "pupil", "")
        assert status == 200 and found == {"options": []}

        view = await slack.open_form("U0STRANGE", "/concern")  # reporting is open to all
        assert view["callback_id"] == "concern"
        assert leaks(json.dumps(view)) == []


async def test_teams_pickers_show_an_outsider_nobody(teams: Teams) -> None:
    t = teams
    for who in ("teacher@school.test", "stranger@elsewhere.test"):
        assert await t.install(who) == 201
    assert await t.say("teacher@school.test", "concern") == 201
    mine = t.last_to("teacher@school.test")
    assert "colleague@school.test" in mine.text  # a colleague's staff picker lists the roster

    assert await t.say("stranger@elsewhere.test", "concern") == 201
    form = t.last_to("stranger@elsewhere.test")
    assert "Report a safeguarding concern" in form.text
    assert leaks(form.text) == []

    # Searching the pupil picker of the form they were given finds nobody either.
    [card] = form.cards
    [search] = [
        b
        for e in card["body"]
        if e["type"] == "ActionSet"
        for b in e["actions"]
        if b["data"].get("search") == "pupil"
    ]
    before = len(t.connector.calls)
    a = t.activity(
        "card_submit_personal",
        "stranger@elsewhere.test",
        value=dict(copy.deepcopy(search["data"]), find_pupil="Sam"),
        replyToId="",
    )
    assert await t.post(a) == 201
    answers = t.connector.calls[before:]
    assert answers and all(leaks(c.text) == [] for c in answers)


async def test_console_pickers_show_an_outsider_nobody(school: Units) -> None:
    out = await run_console(
        school,
        "stranger@elsewhere.test",
        ["/concern", "Sam", "cancel"],
    )
    assert "Report a safeguarding concern" in out
    assert "No pupil matches 'Sam'" in out
    assert leaks(out.replace("'Sam'", "")) == []
