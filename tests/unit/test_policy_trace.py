"""Where each requirement of the school's live-video policy is carried out.

Each entry restates one requirement (in our words) and names the policy setting, the code and
the tests that carry it out. This test fails if any of them disappears or is renamed, so the
map stays true. Requirements the bot can only remind people of (dress, rooms, language) are
carried by checklist items; those it cannot see at all (home filtering, family circumstances)
are left to the school and are not listed.
"""

from __future__ import annotations

import ast
import importlib
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DEFAULTS = ROOT / "chatbot" / "policy" / "default_policy.toml"


@dataclass(frozen=True)
class Requirement:
    says: str
    # dotted keys in default_policy.toml, "checklist:<key>" or "categories:<key>"
    settings: tuple[str, ...] = ()
    code: tuple[str, ...] = ()  # "module:attribute"
    tests: tuple[str, ...] = ()  # "path::test_name"


BOOKING_RULES = "tests/unit/test_booking_rules.py"
SWEEPS = "tests/integration/test_sweeps.py"
CONCERNS = "tests/unit/test_concerns.py"
CHASE = "tests/unit/test_concern_chase.py"
ZOOM = "tests/adapters/test_zoom_meetings.py"
ZOOM_EVENTS = "tests/adapters/test_zoom_events.py"

TRACE = (
    Requirement(
        "Calls happen on school days only (weekends, bank holidays, closures and terms).",
        ("hours.days", "hours.bank_holidays", "hours.closures", "hours.terms"),
        ("chatbot.bookings.rules:check_booking", "chatbot.policy:Policy.closed_reason"),
        (
            f"{BOOKING_RULES}::test_weekend_refused",
            f"{BOOKING_RULES}::test_bank_holiday_refused",
            "tests/unit/test_policy.py::test_terms_and_closures",
        ),
    ),
    Requirement(
        "Calls happen within normal school hours, start to finish.",
        ("hours.start", "hours.end"),
        ("chatbot.bookings.rules:check_booking",),
        (
            f"{BOOKING_RULES}::test_start_before_hours_refused",
            f"{BOOKING_RULES}::test_end_after_hours_refused",
        ),
    ),
    Requirement(
        "Calls are kept short, so families can get on with their day.",
        ("calls.max_minutes", "calls.min_minutes"),
        ("chatbot.bookings.rules:check_booking",),
        (f"{BOOKING_RULES}::test_too_long_refused", f"{BOOKING_RULES}::test_longest_allowed"),
    ),
    Requirement(
        "No more than one call a week with each pupil.",
        ("calls.per_pupil_per_week",),
        ("chatbot.bookings.service:week_slots",),
        (
            f"{BOOKING_RULES}::test_second_call_same_week_refused",
            f"{BOOKING_RULES}::test_weekly_limit_counts_every_pupil_of_a_group",
            "tests/integration/test_cohost_race.py",
        ),
    ),
    Requirement(
        "A second member of staff joins every call, group or one-to-one, and accepts first.",
        ("calls.cohost_required_group", "calls.cohost_required_one_to_one"),
        ("chatbot.bookings.cohost:answer", "chatbot.bookings.rules:check_booking"),
        (
            f"{BOOKING_RULES}::test_no_cohost_group_refused",
            f"{BOOKING_RULES}::test_no_cohost_one_to_one_refused",
            f"{SWEEPS}::test_cohost_no_answer_lapses",
        ),
    ),
    Requirement(
        "SLT are told when a call is arranged (and when it is cancelled).",
        (),
        ("chatbot.bookings.notices:slt_notice",),
        (
            "tests/unit/test_booking_flow.py::test_full_booking_to_slt",
            "tests/adapters/test_slack_booking.py::test_full_booking_from_command_to_slt_post",
        ),
    ),
    Requirement(
        "Only the school's agreed platform is used, with school accounts.",
        ("calls.platforms",),
        ("chatbot.bookings.rules:check_booking",),
        (f"{BOOKING_RULES}::test_platform_not_agreed_refused",),
    ),
    Requirement(
        "Parents are sent the information first and agree in writing before a child joins.",
        ("calls.consent_required", "checklist:parent_info"),
        ("chatbot.consent.service:grant", "chatbot.consent.letter:letter_text"),
        (
            f"{BOOKING_RULES}::test_no_consent_refused",
            f"{BOOKING_RULES}::test_refused_after_consent_withdrawn",
            "tests/unit/test_parent_letter.py::test_letter_follows_the_schools_settings",
        ),
    ),
    Requirement(
        "The host has a plan for the conversation.",
        (),
        ("chatbot.bookings.forms:booking_form",),
        (f"{BOOKING_RULES}::test_plan_empty_refused",),
    ),
    Requirement(
        "Meeting security: emailed invitation with passcode, waiting room, video on, no screen "
        "sharing or renaming, only expected people admitted, meeting locked.",
        (
            "checklist:invite_passcode",
            "checklist:waiting_room",
            "checklist:video_on",
            "checklist:no_screen_share",
            "checklist:no_rename",
            "checklist:admit_expected",
            "checklist:lock_meeting",
        ),
        ("chatbot.bookings.checklist:tick",),
        (
            f"{SWEEPS}::test_checklist_sent_once_at_lead_time",
            f"{SWEEPS}::test_unticked_items_flagged_at_start",
        ),
    ),
    Requirement(
        "With Zoom connected, the bot makes each confirmed call's meeting with a passcode, "
        "waiting room, video on and join before host off, reads it back, checks the host's "
        "screen sharing and renaming settings, and sees whether the second member of staff "
        "joined and how long the call ran.",
        (
            "zoom.cohost_absent_minutes",
            "zoom.overrun_slt_after_minutes",
            "zoom.fix_user_settings",
            "calls.max_minutes",
        ),
        (
            "chatbot.meetings.rules:mismatches",
            "chatbot.meetings.rules:breaches",
            "chatbot.meetings.worker:run",
            "chatbot.meetings.events:run_sweeps",
        ),
        (
            f"{ZOOM}::test_meeting_created_after_acceptance_with_each_setting",
            f"{ZOOM}::test_read_back_mismatch_reported_and_flagged_until_fixed",
            f"{ZOOM}::test_user_settings_that_break_the_policy_reported_with_how_to_fix",
            f"{ZOOM_EVENTS}::test_cohost_absent_tells_host_and_slt",
            f"{ZOOM_EVENTS}::test_overlong_call_flagged_to_host_then_slt",
            f"{ZOOM_EVENTS}::test_meeting_started_at_odd_times_reported_to_slt",
        ),
    ),
    Requirement(
        "Suitable dress, background and room; household aware; confidential talk away from "
        "other adults; professional language.",
        (
            "checklist:clothing_background",
            "checklist:not_bedroom",
            "checklist:household_aware",
            "checklist:confidential_room",
            "checklist:professional_language",
        ),
        ("chatbot.policy:Policy.checklist_stage",),
        ("tests/unit/test_policy.py::test_default_checklist_and_categories",),
    ),
    Requirement(
        "Each conversation is logged on a Keeping in Touch record.",
        ("calls.log_nudge_after_minutes", "calls.log_report_after_minutes"),
        ("chatbot.bookings.calllog:save",),
        (f"{SWEEPS}::test_log_requested_nudged_reported", f"{SWEEPS}::test_call_log_form_saves"),
    ),
    Requirement(
        "Any safeguarding concern reaches the DSL, and is followed up until someone takes it.",
        ("concerns.ack_minutes", "concerns.urgent_ack_minutes"),
        ("chatbot.concerns.filing:file", "chatbot.concerns.chase:chase"),
        (
            f"{CONCERNS}::test_file_stores_first_then_receipt",
            f"{CHASE}::test_chase_resends_then_escalates_at_configured_times",
        ),
    ),
    Requirement(
        "Out of hours, SLT are the contact; immediate danger means the police; CEOP is offered.",
        ("contacts.police_phone", "contacts.ceop_url", "contacts.out_of_hours"),
        ("chatbot.concerns.notices:receipt",),
        (
            f"{CONCERNS}::test_immediate_risk_receipt",
            f"{CHASE}::test_out_of_hours_alerts_slt_at_once",
        ),
    ),
    Requirement(
        "Concerns about a member of staff follow the whistleblowing route, never via them.",
        ("school.head_teacher_email",),
        ("chatbot.concerns.filing:audience",),
        (
            f"{CHASE}::test_concern_about_staff_goes_to_dsl_channel_and_head",
            f"{CHASE}::test_concern_about_a_dsl_never_reaches_them",
        ),
    ),
    Requirement(
        "Harmful online content and abuse can be reported under its own category.",
        ("categories:self_harm", "categories:online_abuse", "categories:pornography"),
        ("chatbot.policy:Policy.category",),
        ("tests/unit/test_policy.py::test_default_checklist_and_categories",),
    ),
    Requirement(
        "Personal data is need-to-know and kept no longer than needed (data protection).",
        ("concerns.retention_review_years",),
        ("chatbot.concerns.access:may_see", "chatbot.logsafe:quiet_libraries"),
        (
            f"{CONCERNS}::test_view_details_need_to_know",
            f"{CONCERNS}::test_no_narrative_pupil_name_or_parent_email_in_logs_or_alerts",
            "tests/unit/test_concern_records.py::test_purge_respects_retention_and_legal_hold",
        ),
    ),
)


@cache
def default_settings() -> dict[str, object]:
    return tomllib.loads(DEFAULTS.read_text())


@cache
def functions_in(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text())
    return frozenset(
        n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    )


@pytest.mark.parametrize("req", TRACE, ids=[r.says[:40] for r in TRACE])
def test_each_requirement_is_carried_out(req: Requirement) -> None:
    assert req.code and req.tests, "every requirement names its code and its tests"
    data = default_settings()
    lists = {
        "checklist": {item["key"] for item in data["checklist"]},  # type: ignore[index, union-attr]
        "categories": {c["key"] for c in data["concern_categories"]},  # type: ignore[index, union-attr]
    }
    for key in req.settings:
        if ":" in key:
            kind, _, item = key.partition(":")
            assert item in lists[kind], key
            continue
        table, name = key.split(".")
        assert table in data, key
        # Optional settings are documented as comments in the file; both count.
        text = DEFAULTS.read_text()
        assert name in data[table] or f"# {name} =" in text, key  # type: ignore[operator]
    for ref in req.code:
        module, _, attr = ref.partition(":")
        obj: object = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    for ref in req.tests:
        path, _, name = ref.partition("::")
        assert (ROOT / path).is_file(), path
        if name:
            assert name in functions_in(path), ref
