"""A safeguarding concern over Slack: /concern -> modal -> submission (committed before the
ack) -> DSL channel alert -> Acknowledge; View details refused to a non-DSL user and shown to
the DSL in a modal; someone not on the staff roster can still report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from chatbot.uow import Units
from tests.adapters.test_slack_render import check_call, check_message, check_view
from tests.adapters.test_slack_support import Slack, running

NARRATIVE = "During the call Sam said an older cousin shouts at him at night."


@pytest.fixture
async def slack(school: Units) -> AsyncIterator[Slack]:
    async with running(school) as s:
        yield s
        for call in s.api.calls:
            check_call(call.method, call.body)
        for body in s.api.responses:
            check_message(body, "response_url")


def values_for(view: dict[str, Any], **extra: Any) -> dict[str, Any]:
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    category = inputs["category"]["options"][0]["value"]
    out: dict[str, Any] = {
        "pupil": "A123456789012",
        "category": category,
        "staff": "",
        "risk": "no",
        "when_date": "2026-11-30",
        "when_time": "07:45",
        "narrative": NARRATIVE,
    }
    out.update(extra)
    return {k: v for k, v in out.items() if k in inputs}


async def concerns(core: Units) -> int:
    from chatbot.storage.models import Concern

    async with core.db.transaction() as s:
        return int((await s.execute(select(func.count(Concern.id)))).scalar_one())


async def file_concern(slack: Slack, user: str = "U0TEACHER") -> dict[str, Any]:
    view = await slack.open_form(user, "/concern")
    assert view["callback_id"] == "concern"
    check_view(view)
    status, body = await slack.submit(user, view, values_for(view))
    assert status == 200 and body is None, body  # closed only after it was stored
    return view


async def test_concern_to_dsl_alert_ack_and_view_details(slack: Slack) -> None:
    await file_concern(slack)
    assert await concerns(slack.runtime.units) == 1  # committed by the time Slack got the ack
    assert slack.posts_to("U0TEACHER"), "the reporter gets a receipt"

    await slack.runtime.dispatcher.drain()
    [alert] = slack.posts_to("C0DSL")
    assert NARRATIVE not in str(alert)  # the channel alert is need-to-know: no narrative
    names = [
        e["action_id"].split("#")[0]
        for b in alert["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert "concern.ack" in names and "concern.view" in names
    where = (alert["_channel"], alert["_ts"])

    # A member of staff who is not a DSL clicks View details: refused, nothing opened.
    status, _, click = await slack.click("U0OTHER", alert, "concern.view", *where)
    assert status == 200
    assert slack.api.called("views.open")[-1]["view"]["callback_id"] == "concern"  # no popup
    [refusal] = [r for r in slack.api.responses if r["_key"] == f"act-{click['trigger_id']}"]
    assert refusal["response_type"] == "ephemeral" and NARRATIVE not in str(refusal)

    # The DSL acknowledges: the alert is updated in place.
    status, _, click = await slack.click("U0DSL", alert, "concern.ack", *where)
    assert status == 200
    updates = [u for u in slack.api.called("chat.update") if (u["channel"], u["ts"]) == where]
    assert updates and "concern.ack" not in str(updates[-1]["blocks"])

    # The DSL opens the details: a read-only modal with the narrative.
    status, _, click = await slack.click("U0DSL", alert, "concern.view", *where)
    [popup] = [c for c in slack.api.called("views.open") if c["trigger_id"] == click["trigger_id"]]
    assert popup["view"]["type"] == "modal" and "submit" not in popup["view"]
    assert "Sam said an older cousin" in str(popup["view"]["blocks"])


async def test_someone_off_the_roster_can_still_report(slack: Slack) -> None:
    await file_concern(slack, "U0STRANGE")
    assert await concerns(slack.runtime.units) == 1


async def test_concern_field_errors_keep_the_modal_open(slack: Slack) -> None:
    view = await slack.open_form("U0TEACHER", "/concern")
    status, body = await slack.submit("U0TEACHER", view, values_for(view, narrative=""))
    assert body["response_action"] == "errors" and "narrative" in body["errors"]
    assert await concerns(slack.runtime.units) == 0


async def test_concern_text_stays_out_of_the_logs(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    """Even at DEBUG, nothing logged carries the narrative or the pupil's name, with the
    library loggers held where `chatbot` holds them."""
    import logging

    from chatbot.logsafe import NOISY, quiet_libraries

    before = {name: logging.getLogger(name).level for name in NOISY}
    quiet_libraries()
    caplog.set_level(logging.DEBUG)
    try:
        await file_concern(slack)
        await slack.runtime.dispatcher.drain()
        [alert] = slack.posts_to("C0DSL")
        await slack.click("U0OTHER", alert, "concern.view", alert["_channel"], alert["_ts"])
        await slack.click("U0DSL", alert, "concern.view", alert["_channel"], alert["_ts"])
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)
    assert caplog.records, "the flow logged something, so the scan means something"
    assert NARRATIVE not in caplog.text
    assert "Taylor" not in caplog.text and "parent.sam" not in caplog.text
