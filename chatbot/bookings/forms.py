"""The booking form: what staff fill in to book a call, with the school's rules in its intro."""

from __future__ import annotations

from chatbot.policy import Policy
from chatbot.ui import Form, Input, Option

FORM_ID = "book_call"
PLAN_MAX = 2000


def booking_form(p: Policy, initial: dict[str, str | tuple[str, ...]] | None = None) -> Form:
    init = initial or {}
    kinds = (Option("one_to_one", "One-to-one"), Option("group", "Group"))
    return Form(
        id=FORM_ID,
        title="Book a video call",
        intro=(
            f"Calls run on school days, {p.hours_text()}, for up to {p.max_call_minutes} "
            f"minutes, at most {p.calls_per_pupil_per_week} a week per pupil, with written "
            "parental consent and a second member of staff."
        ),
        submit_label="Book",
        inputs=(
            Input("pupils", "Pupils", "pupils", initial=init.get("pupils")),
            Input(
                "kind",
                "Type of call",
                "select",
                options=kinds,
                initial=init.get("kind", "one_to_one"),
            ),
            Input("date", "Date", "date", initial=init.get("date")),
            Input("start", "Start time", "time", initial=init.get("start"), placeholder="10:00"),
            Input(
                "duration",
                "Length in minutes",
                "number",
                initial=init.get("duration", str(min(20, p.max_call_minutes))),
                hint=f"At most {p.max_call_minutes}.",
            ),
            Input(
                "cohost",
                "Co-host (second member of staff)",
                "staff",
                required=p.cohost_required_one_to_one or p.cohost_required_group,
                initial=init.get("cohost"),
            ),
            Input(
                "platform",
                "Platform",
                "select",
                options=tuple(Option(x, x) for x in p.platforms),
                initial=init.get("platform", p.platforms[0]),
            ),
            Input(
                "plan",
                "Plan for the conversation",
                "long_text",
                max_length=PLAN_MAX,
                initial=init.get("plan"),
                placeholder="e.g. Sam shares their reading book; we sing the class song.",
            ),
        ),
    )
