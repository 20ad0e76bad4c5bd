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
EMAIL_CONSENT = "tests/unit/test_email_consent.py"
EMAIL_DELIVERY = "tests/integration/test_email_delivery.py"
TIMING = "tests/integration/test_call_checklist_timing.py"
CALL_LOG = "tests/integration/test_call_log_policy.py"
RECORDS = "tests/unit/test_call_records.py"
ACCESS = "tests/unit/test_concern_access.py"
CONSENT = "tests/unit/test_consent.py"
WITHDRAWAL = "tests/unit/test_consent_withdrawal.py"
STAFF_CHECKS = "tests/unit/test_staff_checks.py"
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
        "Parents agree by return of email, and the email is kept as proof.",
        (),
        ("chatbot.consent.by_email:request", "chatbot.consent.by_email:take_in"),
        (
            f"{EMAIL_CONSENT}::test_request_reply_and_confirming_click_record_consent",
            f"{EMAIL_CONSENT}::test_reply_from_another_address_is_held_until_accepted_with_a_reason",
        ),
    ),
    Requirement(
        "Invitations are emailed to participants before the meeting, with a passcode; "
        "families are reminded of an adult nearby, a shared room and suitable dress.",
        ("email.family_reminders",),
        ("chatbot.mail.invites:call_confirmed", "chatbot.mail.invites:invite_letter"),
        (f"{EMAIL_DELIVERY}::test_one_invitation_per_family_then_cancellations",),
    ),
    Requirement(
        "SLT are informed by email of arranged meetings.",
        ("email.slt_notices",),
        ("chatbot.mail.slt:queue_slt_email",),
        (f"{EMAIL_DELIVERY}::test_slt_hear_by_the_policys_choice",),
    ),
    Requirement(
        "A parent who withdraws consent stops their child's calls still to come: cancelled, "
        "or held as the school chooses, with the host, co-host and SLT told why.",
        ("consent.on_withdrawal",),
        (
            "chatbot.consent.service:withdraw",
            "chatbot.bookings.holds:stop_calls",
            "chatbot.bookings.holds:call_off_held_calls",
        ),
        (
            f"{WITHDRAWAL}::test_withdrawal_cancels_every_call_still_to_come_and_says_why",
            f"{WITHDRAWAL}::test_hold_keeps_the_call_but_it_cannot_be_accepted_or_started",
            f"{WITHDRAWAL}::test_a_call_still_on_hold_at_the_cohost_deadline_is_called_off",
            "tests/unit/test_policy.py::test_consent_and_staff_settings",
        ),
    ),
    Requirement(
        "Agreement is in writing: the parent's email itself is the evidence (its Message-ID "
        "and subject, or the saved .eml), with when it arrived.",
        (),
        ("chatbot.consent.service:evidence_problem", "chatbot.fields:parse_moment"),
        (
            f"{CONSENT}::test_evidence_must_find_the_email_again",
            f"{CONSENT}::test_an_eml_that_is_not_an_email_is_refused",
            f"{CONSENT}::test_a_date_without_a_time_is_stored_as_a_date",
            "tests/adapters/test_cli.py::test_consent_received_in_iso_8601_and_exit_codes",
        ),
    ),
    Requirement(
        "Live video may not suit every pupil: the school records why and how the family keeps "
        "in touch instead, and such a pupil is not booked.",
        (),
        ("chatbot.consent.suitability:mark_unsuitable", "chatbot.bookings.rules:check_booking"),
        (
            "tests/unit/test_video_unsuitable.py::"
            "test_marked_not_suitable_refuses_booking_with_the_reason",
            "tests/unit/test_video_unsuitable.py::"
            "test_only_slt_dsl_or_admin_mark_video_suitable_again",
        ),
    ),
    Requirement(
        "Staff on calls are DBS checked and have up-to-date safeguarding training.",
        ("staff.checks_missing", "staff.training_valid_months"),
        ("chatbot.bookings.rules:check_gaps", "chatbot.roster.importer:import_staff"),
        (
            f"{STAFF_CHECKS}::test_roster_dates_role_spellings_and_semicolons",
            f"{STAFF_CHECKS}::test_by_default_slt_are_told_and_the_call_is_booked",
            f"{STAFF_CHECKS}::test_refuse_setting_stops_the_booking_naming_what_is_missing",
        ),
    ),
    Requirement(
        "School days follow the school's term dates (an iCalendar feed or CSV, with holidays "
        "and INSET days); start-up warns loudly while none are set.",
        ("hours.terms", "hours.closures"),
        ("chatbot.terms.calendar:closed_reason", "chatbot.terms.calendar:warn_if_no_term_dates"),
        (
            "tests/unit/test_school_calendar.py::"
            "test_bookings_in_holidays_refused_naming_the_holiday",
            "tests/adapters/test_cli.py::"
            "test_term_dates_imported_from_the_command_line_close_the_holidays",
            "tests/adapters/test_serve.py::test_serve_warns_loudly_until_term_dates_are_set",
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
        "Checks are ticked when they are done: before-the-call checks from when the checklist "
        "is sent, start-of-call checks from the start; checks still unticked a few minutes "
        "into the call go to the host and then to SLT.",
        ("calls.checklist_lead_minutes", "calls.checklist_slt_after_minutes"),
        ("chatbot.policy:Policy.checklist_opens_at", "chatbot.bookings.checklist:tick"),
        (
            f"{TIMING}::test_items_tick_only_from_when_they_can_have_been_done",
            f"{TIMING}::test_when_checks_open_follows_the_policy",
            f"{TIMING}::test_unticked_checks_go_to_slt_a_few_minutes_into_the_call",
            f"{TIMING}::test_slt_escalation_time_from_policy_and_not_when_all_ticked",
        ),
    ),
    Requirement(
        "Staff follow the Employee Code of Conduct and use school accounts, never personal "
        "ones; an adult is present at the pupil's home and headphones are not used.",
        (
            "contacts.code_of_conduct_url",
            "checklist:code_of_conduct",
            "checklist:school_account",
            "checklist:adult_nearby",
        ),
        ("chatbot.bookings.notices:checklist",),
        (
            f"{TIMING}::test_checklist_has_the_items_the_policy_implies",
            f"{TIMING}::test_code_of_conduct_link_comes_from_the_policy_file",
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
        "The log shows the call was run safely: a second member of staff there (SLT told at "
        "once if not) and kept to the school's length (SLT told if it ran over).",
        ("calls.max_minutes",),
        ("chatbot.bookings.calllog:save",),
        (
            f"{CALL_LOG}::test_log_asks_whether_the_second_member_of_staff_was_there",
            f"{CALL_LOG}::test_second_member_of_staff_absent_goes_to_slt_at_once",
            f"{CALL_LOG}::test_call_longer_than_the_policy_allows_is_flagged_to_slt",
        ),
    ),
    Requirement(
        "A worry noted in a log is reported to the DSL: the host is reminded until a concern "
        "about the call is filed, then the DSL is told (without the log's words).",
        ("calls.worry_reminder_after_minutes", "calls.worry_dsl_after_minutes"),
        ("chatbot.bookings.calllog:worry_unfiled", "chatbot.bookings.scheduled:_worry_report"),
        (
            f"{CALL_LOG}::test_worrying_log_stays_open_until_a_concern_is_filed",
            f"{CALL_LOG}::test_concern_filed_from_the_log_closes_it",
        ),
    ),
    Requirement(
        "Logs can be read on a need-to-know basis: hosts their own, SLT and the DSL all; every "
        "reading is audited.",
        (),
        ("chatbot.bookings.logbook:find", "chatbot.bookings.logbook:audit_read"),
        (
            f"{CALL_LOG}::test_logs_read_in_chat_by_host_slt_and_dsl_and_every_read_audited",
            f"{RECORDS}::test_export_writes_csv_for_slt_and_audits_it",
            f"{RECORDS}::test_export_host_sees_own_stranger_refused_and_bad_dates_named",
        ),
    ),
    Requirement(
        "Call logs, checklist ticks and consent records are kept no longer than needed, unless "
        "a safeguarding matter holds them.",
        (
            "retention.call_logs_years",
            "retention.checklist_years",
            "retention.consent_years_after_withdrawal",
        ),
        ("chatbot.bookings.retention:purge",),
        (
            f"{RECORDS}::test_purge_removes_call_records_past_retention_except_what_is_held",
            f"{RECORDS}::test_retention_years_come_from_the_policy",
        ),
    ),
    Requirement(
        "Any safeguarding concern reaches the DSL, and is followed up until someone takes it: "
        "re-sent, escalated, then sent to every DSL and SLT member again and again (urgent "
        "ones day and night) until acknowledged; it never goes quiet.",
        (
            "concerns.ack_minutes",
            "concerns.urgent_ack_minutes",
            "concerns.repeat_minutes",
            "concerns.urgent_repeat_minutes",
        ),
        ("chatbot.concerns.filing:file", "chatbot.concerns.chase:chase"),
        (
            f"{CONCERNS}::test_file_stores_first_then_receipt",
            f"{CHASE}::test_chase_resends_then_escalates_at_configured_times",
            f"{CHASE}::test_urgent_concern_repeats_until_acknowledged",
            f"{CHASE}::test_repeat_interval_comes_from_the_policy",
            f"{CHASE}::test_ordinary_concern_repeats_in_school_hours_only",
            f"{CHASE}::test_a_repeat_is_sent_once_by_replicas_sweeping_together",
        ),
    ),
    Requirement(
        "Out of hours, SLT are the contact; immediate danger means the police; CEOP is offered.",
        ("contacts.police_phone", "contacts.ceop_url", "contacts.out_of_hours"),
        ("chatbot.concerns.notices:receipt", "chatbot.concerns.filing:send_alert"),
        (
            f"{CONCERNS}::test_immediate_risk_receipt",
            "tests/unit/test_policy_trace.py::test_receipt_names_every_contact_the_policy_sets",
            f"{CHASE}::test_out_of_hours_alerts_slt_at_once",
            f"{CHASE}::test_urgent_repeats_out_of_hours_also_reach_the_slt_channel",
        ),
    ),
    Requirement(
        "Concerns about a member of staff follow the whistleblowing route, never via them: the "
        "head teacher they go to may read and note them (every read audited) and acknowledge "
        "them as themselves.",
        ("school.head_teacher_email",),
        ("chatbot.concerns.filing:audience", "chatbot.concerns.access:may_see"),
        (
            f"{CHASE}::test_concern_about_staff_goes_to_dsl_channel_and_head",
            f"{CHASE}::test_concern_about_a_dsl_never_reaches_them",
            f"{ACCESS}::test_head_teacher_reads_notes_and_acknowledges_a_concern_about_staff",
            f"{ACCESS}::test_head_teacher_named_in_the_policy_reads_a_concern_about_staff",
            f"{ACCESS}::test_routing_gives_no_one_else_the_details",
        ),
    ),
    Requirement(
        "The DSL can see which concerns are still open and which nobody has taken yet.",
        (),
        ("chatbot.concerns.records:open_concerns", "adapters.concerns_cli:run"),
        (
            f"{ACCESS}::test_dsl_lists_open_concerns_unacknowledged_first",
            f"{ACCESS}::test_concerns_list_is_only_for_those_concerns_go_to",
            "tests/adapters/test_cli.py::test_concerns_list_for_the_dsl_without_log_lines",
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


def test_receipt_names_every_contact_the_policy_sets() -> None:
    """The contacts the policy names are in the words the reporter is given, not only in
    the settings: the police and school numbers and CEOP for an urgent concern, and the
    out-of-hours route when school is closed."""
    from chatbot.concerns.notices import receipt
    from chatbot.policy import default_policy

    p = default_policy()
    shown = str(receipt("C-2026-0001", p, urgent=True, out_of_hours=True).to_json())
    for value in (p.contacts.police_phone, p.contacts.school_phone, p.contacts.ceop_url):
        assert value in shown
    assert p.contacts.out_of_hours in shown
