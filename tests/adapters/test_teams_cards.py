"""A form's definition round-trips through a Teams card's data: what ``form_spec`` writes is
every field of the form (so a field added to ``Input`` or ``Form`` later can't be dropped
silently), in plain JSON types, and ``form_from_spec`` reads the same form back."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace

from adapters.teams.cards import PUPIL_KINDS, form_from_spec, form_spec
from chatbot.bookings.forms import booking_form
from chatbot.policy import default_policy
from chatbot.ui import Form, Input, Option


def forms() -> list[Form]:
    p = default_policy()
    filled = booking_form(
        p, {"pupils": ("A123456789012", "B123456789012"), "date": "2026-12-01", "plan": "Maths"}
    )
    people = {"pupils": (Option("A123456789012", "Sam T (Year 3)"),)}
    filled = replace(
        filled,
        inputs=tuple(replace(i, options=people.get(i.id, i.options)) for i in filled.inputs),
        state={"booking_id": "7"},
    )
    extra = Input("why", "Why", "long_text", required=False, hint="A hint", max_length=500)
    return [booking_form(p), filled, replace(filled, inputs=(*filled.inputs, extra))]


def test_every_field_of_the_form_is_in_the_card_data_as_json() -> None:
    for form in forms():
        spec = form_spec(form)
        # What dataclasses would give, less the state (it travels beside the spec) and the
        # people pickers' choices (the core fills them in again on every redraw).
        expected = json.loads(json.dumps(asdict(form)))
        expected.pop("state")
        for i in expected["inputs"]:
            if i["kind"] in (*PUPIL_KINDS, "staff"):
                i["options"] = []
        assert spec == expected
        assert json.loads(json.dumps(spec)) == spec  # lists, not tuples
        assert set(expected["inputs"][0]) == {f.name for f in fields(Input)}


def test_the_form_read_back_from_the_card_is_the_same_form() -> None:
    for form in forms():
        back = form_from_spec(json.loads(json.dumps(form_spec(form))), dict(form.state))
        assert back is not None
        people = (*PUPIL_KINDS, "staff")
        assert back == replace(
            form,
            inputs=tuple(
                replace(i, initial=None, options=() if i.kind in people else i.options)
                for i in form.inputs
            ),
        )
