"""`/calls log` through the Slack adapter: the slash command (declared in the manifest)
answers privately, within Block Kit's limits, with people's text escaped."""

from __future__ import annotations

from chatbot.ports import FixedClock
from chatbot.router import Bot
from chatbot.uow import Units
from tests.adapters.test_slack_render import check_message
from tests.adapters.test_slack_support import running
from tests.integration.test_call_log_policy import two_logged_calls


async def test_calls_log_slash_command(school: Units, bot: Bot, clock: FixedClock) -> None:
    sam, zoe = await two_logged_calls(bot, clock, "Told <!channel> about fish & chips")
    async with running(school) as slack:
        status, body, _ = await slack.command("U0SLT", "/calls", "log")
        assert status == 200 and body["response_type"] == "ephemeral", body
        check_message(body)
        shown = str(body["blocks"])
        assert f"Call #{sam}" in shown and f"Call #{zoe}" in shown
        assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown
        assert "fish &amp; chips" in shown

        status, body, _ = await slack.command("U0TEACHER", "/calls", "log")
        shown = str(body["blocks"])
        assert f"Call #{sam}" in shown and f"Call #{zoe}" not in shown
