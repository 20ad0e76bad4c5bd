"""Tests for chatbot.policy: defaults, the school calendar, file loading and validation."""

from __future__ import annotations

import dataclasses
from datetime import date, time
from pathlib import Path

import pytest

from chatbot.policy import (
    DEFAULT_POLICY_FILE,
    ChecklistItem,
    ConcernCategory,
    PolicyError,
    Term,
    default_policy,
    load_policy,
    policy_from_env,
    to_toml,
)


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ defaults


def test_defaults_follow_the_written_policy() -> None:
    p = load_policy(None)
    assert p == default_policy()
    assert p.school_days == frozenset({0, 1, 2, 3, 4})
    assert (p.day_start, p.day_end) == (time(9, 0), time(15, 0))
    assert p.max_call_minutes == 30
    assert p.calls_per_pupil_per_week == 1
    assert p.platforms == ("Zoom",)
    assert p.consent_required is True
    assert p.cohost_required("group") and p.cohost_required("one_to_one")
    assert p.bank_holidays == "england"
    assert p.contacts.school_phone == "0115 9892744"
    assert p.contacts.police_phone == "999"
    assert p.zone.key == "Europe/London"
    assert p.hours_text() == "09:00 to 15:00, Monday to Friday"


def test_default_checklist_and_categories() -> None:
    p = default_policy()
    assert [i.key for i in p.checklist_stage("before")] == [
        "invite_passcode",
        "school_account",
        "waiting_room",
        "video_on",
        "parent_info",
        "code_of_conduct",
    ]
    assert [i.key for i in p.checklist_stage("start")] == [
        "no_screen_share",
        "no_rename",
        "admit_expected",
        "adult_nearby",
        "lock_meeting",
    ]
    assert [i.key for i in p.checklist_stage("environment")] == [
        "clothing_background",
        "not_bedroom",
        "household_aware",
        "confidential_room",
        "professional_language",
    ]
    assert len(p.checklist) == 16 and all(i.label for i in p.checklist)
    keys = [c.key for c in p.concern_categories]
    assert keys == [
        "discrimination",
        "drugs",
        "extremism",
        "malware_hacking",
        "pornography",
        "piracy",
        "self_harm",
        "violence",
        "online_abuse",
        "inappropriate_behaviour",
        "staff_conduct",
        "other",
    ]
    assert p.category("self_harm") == ConcernCategory("self_harm", p.concern_categories[6].label)
    assert p.category("nope") is None


def test_bad_stage_or_kind_argument_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        default_policy().checklist_stage("after")
    with pytest.raises(ValueError):
        default_policy().cohost_required("class")


def test_consent_and_staff_settings(tmp_path: Path) -> None:
    p = default_policy()
    assert (p.consent_on_withdrawal, p.staff_checks_missing) == ("cancel", "warn")
    assert p.training_valid_months == 36
    text = '[consent]\non_withdrawal = "hold"\n[staff]\nchecks_missing = "refuse"\n'
    school = load_policy(write(tmp_path, text + "training_valid_months = 24\n"))
    assert (school.consent_on_withdrawal, school.staff_checks_missing) == ("hold", "refuse")
    assert school.training_valid_months == 24
    assert load_policy(write(tmp_path, to_toml(school), "again.toml")) == school


def test_default_policy_file_equals_defaults() -> None:
    assert load_policy(DEFAULT_POLICY_FILE) == load_policy(None)
    assert DEFAULT_POLICY_FILE.name == "default_policy.toml"


# ------------------------------------------------------------------ calendar


@pytest.mark.parametrize(
    ("day", "holiday"),
    [
        (date(2026, 12, 25), "Christmas Day"),
        (date(2026, 8, 31), "Late Summer Bank Holiday"),
        (date(2026, 4, 3), "Good Friday"),
        (date(2026, 5, 4), "May Day"),
    ],
)
def test_england_bank_holidays_are_closed(day: date, holiday: str) -> None:
    reason = default_policy().closed_reason(day)
    assert reason is not None and "bank holiday" in reason and holiday in reason
    assert not default_policy().is_school_day(day)


def test_christmas_reason_wording() -> None:
    assert default_policy().closed_reason(date(2026, 12, 25)) == (
        "25 December 2026 is a bank holiday (Christmas Day)"
    )


def test_weekends_are_closed_weekdays_open() -> None:
    p = default_policy()
    assert p.closed_reason(date(2026, 12, 5)) == "Saturday 5 December 2026 is not a school day"
    assert not p.is_school_day(date(2026, 12, 6))
    assert p.is_school_day(date(2026, 12, 7))
    assert p.closed_reason(date(2026, 12, 7)) is None


def test_bank_holidays_none_and_scotland(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, '[hours]\nbank_holidays = "none"\n'))
    assert p.bank_holidays is None and p.is_school_day(date(2026, 8, 31))
    scot = load_policy(write(tmp_path, '[hours]\nbank_holidays = "scotland"\n'))
    assert scot.is_school_day(date(2026, 8, 31))  # not a holiday in Scotland
    assert not scot.is_school_day(date(2026, 8, 3))  # Scottish summer bank holiday


def test_terms_and_closures(tmp_path: Path) -> None:
    p = load_policy(
        write(
            tmp_path,
            """
[hours]
closures = ["2026-09-04", 2026-10-02]
terms = [{start = "2026-09-03", end = "2026-10-23"}, {start = 2026-11-02, end = 2026-12-18}]
""",
        )
    )
    assert p.terms == (
        Term(date(2026, 9, 3), date(2026, 10, 23)),
        Term(date(2026, 11, 2), date(2026, 12, 18)),
    )
    assert p.closures == (date(2026, 9, 4), date(2026, 10, 2))
    assert p.is_school_day(date(2026, 9, 3))
    assert p.is_school_day(date(2026, 10, 23))  # term end is inclusive
    assert p.closed_reason(date(2026, 9, 4)) == (
        "On Friday 4 September 2026 the school is closed (closure day)"
    )
    assert p.closed_reason(date(2026, 10, 26)) == "Monday 26 October 2026 is outside term time"
    assert not p.is_school_day(date(2026, 9, 2))
    assert p.is_school_day(date(2026, 11, 2))


def test_custom_days_and_hours(tmp_path: Path) -> None:
    text = '[hours]\ndays = ["mon", "Wednesday", "FRI"]\nstart = "08:30"\nend = "16:45"\n'
    p = load_policy(write(tmp_path, text))
    assert p.school_days == frozenset({0, 2, 4})
    assert p.hours_text() == "08:30 to 16:45, Monday, Wednesday and Friday"
    assert not p.is_school_day(date(2026, 12, 8))  # a Tuesday


# ------------------------------------------------------------------ loading


def test_full_custom_file(tmp_path: Path) -> None:
    p = load_policy(
        write(
            tmp_path,
            """
[school]
name = "Test School"
timezone = "Europe/Dublin"
head_teacher_email = "head@test.sch.uk"

[calls]
max_minutes = 45
per_pupil_per_week = 2
cohost_required_one_to_one = false
platforms = ["Zoom", "Teams"]

[concerns]
retention_review_years = 6

[contacts]
school_phone = "01234 567890"

[[checklist]]
key = "only_one"
label = "Just one thing"
stage = "start"

[[concern_categories]]
key = "worry"
label = "A worry"
""",
        )
    )
    assert p.school_name == "Test School" and p.zone.key == "Europe/Dublin"
    assert p.head_teacher_email == "head@test.sch.uk"
    assert p.max_call_minutes == 45 and p.calls_per_pupil_per_week == 2
    assert p.cohost_required("group") and not p.cohost_required("one_to_one")
    assert p.platforms == ("Zoom", "Teams")
    assert p.retention_review_years == 6
    assert p.contacts == dataclasses.replace(default_policy().contacts, school_phone="01234 567890")
    assert p.checklist == (ChecklistItem("only_one", "Just one thing", "start"),)
    assert p.checklist_stage("before") == ()
    assert p.concern_categories == (ConcernCategory("worry", "A worry"),)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "# nothing here\n")) == default_policy()


def test_to_toml_round_trip_defaults(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, to_toml(default_policy()))) == default_policy()


def test_to_toml_round_trip_custom(tmp_path: Path) -> None:
    p = dataclasses.replace(
        default_policy(),
        school_name='St "Quote" \\ School',
        timezone="Europe/Belfast",
        school_days=frozenset({1, 3}),
        day_start=time(8, 15),
        day_end=time(12, 0),
        bank_holidays=None,
        terms=(Term(date(2027, 1, 5), date(2027, 2, 12)),),
        closures=(date(2027, 1, 6),),
        platforms=("Teams",),
        consent_required=False,
        head_teacher_email="head@example.org",
        checklist=(ChecklistItem("x", "Line one\nline two", "environment"),),
        concern_categories=default_policy().concern_categories[:2],
        contacts=dataclasses.replace(default_policy().contacts, out_of_hours="Ring the duty phone"),
    )
    assert load_policy(write(tmp_path, to_toml(p))) == p


def test_policy_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATBOT_POLICY", raising=False)
    assert policy_from_env() == default_policy()
    path = write(tmp_path, "[calls]\nmax_minutes = 20\n")
    monkeypatch.setenv("CHATBOT_POLICY", str(path))
    assert policy_from_env().max_call_minutes == 20
    monkeypatch.setenv("CHATBOT_POLICY", str(tmp_path / "missing.toml"))
    with pytest.raises(PolicyError, match="missing.toml"):
        policy_from_env()


# ------------------------------------------------------------------ validation

BAD_FILES = [
    # (file text, words the message must contain)
    ("[shcool]\n", ["[shcool]", "unknown section", "school"]),
    ("[hours]\nstat = '09:00'\n", ["[hours] stat", "did you mean 'start'"]),
    ("[school]\nphone = '1'\n", ["[school] phone", "[contacts]"]),
    ("top = 1\n", ["[top]"]),
    ("school = 1\n", ["[school]", "table"]),
    ("[calls]\nmax_minutes = true\n", ["[calls] max_minutes", "whole number"]),
    ("[calls]\nmax_minutes = '30'\n", ["[calls] max_minutes", "whole number"]),
    ("[calls]\nmax_minutes = 30.5\n", ["[calls] max_minutes"]),
    ("[calls]\nconsent_required = 1\n", ["[calls] consent_required", "true or false"]),
    ("[school]\nname = 3\n", ["[school] name", "text"]),
    ("[hours]\nstart = '25:00'\n", ["[hours] start", "'25:00' is not a time of day"]),
    ("[hours]\nend = '9am'\n", ["[hours] end", "HH:MM"]),
    ("[hours]\nstart = '09:60'\n", ["[hours] start"]),
    ("[hours]\nstart = '15:00'\nend = '09:00'\n", ["[hours] end", "after"]),
    ("[hours]\nstart = '16:00'\n", ["[hours] start", "after"]),
    ("[school]\ntimezone = 'Mars/Olympus'\n", ["[school] timezone", "Mars/Olympus"]),
    ("[hours]\ndays = ['mon', 'funday']\n", ["[hours] days", "funday"]),
    ("[hours]\ndays = []\n", ["[hours] days"]),
    ("[hours]\nbank_holidays = 'france'\n", ["[hours] bank_holidays", "france"]),
    ("[hours]\nclosures = ['21/12/2026']\n", ["[hours] closures", "YYYY-MM-DD"]),
    ("[calls]\nplatforms = []\n", ["[calls] platforms"]),
    ("[calls]\nplatforms = 'Zoom'\n", ["[calls] platforms", "list"]),
    ("[calls]\nmin_minutes = 0\n", ["[calls] min_minutes", "at least 1"]),
    ("[calls]\nmin_notice_minutes = -5\n", ["[calls] min_notice_minutes"]),
    ("[calls]\nmax_advance_days = 0\n", ["[calls] max_advance_days", "at least 1"]),
    ("[concerns]\nack_minutes = 0\n", ["[concerns] ack_minutes"]),
    ("[concerns]\nretention_review_years = -1\n", ["[concerns] retention_review_years"]),
    ("[calls]\nmax_minutes = 4\n", ["[calls] max_minutes", "min_minutes"]),
    ("[calls]\nmin_minutes = 40\n", ["[calls] min_minutes"]),
    ("[calls]\nlog_report_after_minutes = 60\n", ["[calls] log_report_after_minutes"]),
    ("[concerns]\nurgent_ack_minutes = 20\n", ["[concerns] urgent_ack_minutes"]),
    ("[concerns]\nurgent_repeat_minutes = 90\n", ["[concerns] urgent_repeat_minutes"]),
    ("[concerns]\nrepeat_minutes = 0\n", ["[concerns] repeat_minutes", "at least 1"]),
    ("[school]\nhead_teacher_email = 'nobody'\n", ["[school] head_teacher_email"]),
    ("[contacts]\nschool_phone = ''\n", ["[contacts] school_phone", "empty"]),
    (
        "[[checklist]]\nkey='a'\nlabel='A'\nstage='before'\n"
        "[[checklist]]\nkey='a'\nlabel='B'\nstage='start'\n",
        ["[[checklist]] #2 key", "'a'", "more than once"],
    ),
    ("[[checklist]]\nkey='a'\nlabel='A'\nstage='during'\n", ["[[checklist]] #1 stage", "during"]),
    ("[[checklist]]\nkey='a'\nlabel='A'\n", ["[[checklist]] #1 stage", "missing"]),
    ("[[checklist]]\nkey='a'\nlabel='A'\nstage='start'\ncolour=1\n", ["[[checklist]] #1 colour"]),
    ("[[checklist]]\nkey='Bad Key'\nlabel='A'\nstage='start'\n", ["[[checklist]] #1 key"]),
    ("[checklist]\nkey='a'\n", ["[checklist]", "[[checklist]]"]),
    (
        "[[concern_categories]]\nkey='x'\nlabel='X'\n[[concern_categories]]\nkey='x'\nlabel='Y'\n",
        ["[[concern_categories]] #2 key", "more than once"],
    ),
    ("[[concern_categories]]\nkey='x'\nlabel=''\n", ["[[concern_categories]] #1 label"]),
    (
        "[hours]\nterms = [{start = '2026-10-23', end = '2026-09-03'}]\n",
        ["[hours] terms #1 end", "before"],
    ),
    ("[hours]\nterms = [{start = '2026-09-03'}]\n", ["[hours] terms #1 end", "missing"]),
    ("[hours]\nterms = [{begin = '2026-09-03'}]\n", ["[hours] terms #1 begin"]),
    ("[consent]\non_withdrawal = 'delete'\n", ["[consent] on_withdrawal", "cancel, hold"]),
    ("[consent]\non_withdrawal = 'holds'\n", ["did you mean 'hold'"]),
    ("[staff]\nchecks_missing = 'warning'\n", ["[staff] checks_missing", "did you mean 'warn'"]),
    ("[staff]\nchecks_missing = true\n", ["[staff] checks_missing", "text"]),
    ("[staff]\ntraining_valid_months = 0\n", ["[staff] training_valid_months", "at least 1"]),
    ("[calls]\nmax_minutes = \n", ["not valid TOML", "line 2"]),
    ("[calls\n", ["not valid TOML", "line 1"]),
]


@pytest.mark.parametrize(("text", "words"), BAD_FILES, ids=[t for t, _ in BAD_FILES])
def test_bad_files_raise_policy_error_naming_the_key(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"policy file {path}: ")
    for word in words:
        assert word in message, message


def test_example_error_message(tmp_path: Path) -> None:
    path = write(tmp_path, "[hours]\nstart = '25:00'\n", "x.toml")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value) == (
        f"policy file {path}: [hours] start: '25:00' is not a time of day (use HH:MM, 24-hour)"
    )
    assert isinstance(caught.value, ValueError)


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "nope.toml")


def test_cohost_deadline_must_leave_time_to_answer(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text("[calls]\nmin_notice_minutes = 60\ncohost_answer_by_minutes = 60\n")
    with pytest.raises(PolicyError, match=r"\[calls\] cohost_answer_by_minutes"):
        load_policy(f)
    f.write_text("[calls]\nmin_notice_minutes = 120\ncohost_answer_by_minutes = 60\n")
    assert load_policy(f).cohost_answer_by_minutes == 60
