"""`chatbot consent request` and `chatbot consent import` as real processes, the settings
that choose how mail goes, and the console demo's folder of .eml files (#13)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from chatbot.config import Settings, SettingsError
from tests.adapters.test_cli import chatbot
from tests.conftest import STAFF_CSV
from tests.email_support import parse

PUPILS = """upn,forename,surname,class,parent_email
D123456789012,Dora,Day,Year 4,parent.dora@home.example
"""


def env(tmp_path: Path) -> dict[str, str]:
    return {"MAIL_FOLDER": str(tmp_path / "mail"), "MAIL_FROM": "office@ashlea.example"}


def test_request_and_import_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "staff.csv").write_text(STAFF_CSV)
    (tmp_path / "pupils.csv").write_text(PUPILS)
    assert chatbot(tmp_path, "import", "staff", str(tmp_path / "staff.csv")).returncode == 0
    assert chatbot(tmp_path, "import", "pupils", str(tmp_path / "pupils.csv")).returncode == 0

    off = chatbot(tmp_path, "consent", "request", "D123456789012", "--as", "teacher@school.test")
    assert off.returncode == 2 and "can't send email yet" in off.stderr

    r = chatbot(
        tmp_path, "consent", "request", "D123456789012", "--as", "teacher@school.test",
        extra=env(tmp_path),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "shows as consent requested" in r.stdout
    (sent,) = (tmp_path / "mail").glob("*.eml")  # sent at once through the folder transport
    request = sent.read_bytes()
    assert parse(request)["To"] == "parent.dora@home.example"

    listed = chatbot(tmp_path, "consent", "list")
    assert "Dora D: consent requested" in listed.stdout

    from tests.email_support import reply_to

    reply = tmp_path / "reply.eml"
    reply.write_bytes(reply_to(request, sender="parent.dora@home.example"))
    kept = chatbot(tmp_path, "consent", "import", str(reply))
    assert kept.returncode == 0, kept.stderr
    assert "Kept the reply for Dora D" in kept.stdout and "asked to confirm" in kept.stdout
    twice = chatbot(tmp_path, "consent", "import", str(reply))
    assert twice.returncode == 2 and "already kept" in twice.stderr

    huge = tmp_path / "huge.eml"
    with huge.open("wb") as f:
        f.write(b"From: parent.dora@home.example\r\n\r\n")
        f.truncate(30 * 1024 * 1024)
    big = chatbot(tmp_path, "consent", "import", str(huge))
    assert big.returncode == 2 and "30.0 MB" in big.stderr and "Nothing was kept" in big.stderr
    missing = chatbot(tmp_path, "consent", "import", str(tmp_path / "nope.eml"))
    assert missing.returncode == 2 and "Cannot read" in missing.stderr


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"SMTP_URL": "http://mail.school.test", "MAIL_FROM": "o@school.example"}, "SMTP_URL"),
        ({"SMTP_URL": "smtp://mail:notaport", "MAIL_FROM": "o@school.example"}, "SMTP_URL"),
        ({"SMTP_URL": "smtp://mail.school.example"}, "MAIL_FROM"),
        ({"SMTP_URL": "smtp://m.example", "MAIL_FROM": "not an address"}, "MAIL_FROM"),
        (
            {
                "SMTP_URL": "smtp://m.example",
                "GRAPH_MAILBOX": "o@s.example",
                "MAIL_FROM": "o@s.example",
            },
            "not both",
        ),
        ({"SLT_EMAIL": "slt@school.example"}, "SLT_EMAIL"),
        (
            {
                "SMTP_URL": "smtp://m.example",
                "MAIL_FROM": "o@s.example",
                "SLT_EMAIL": "a@s.example, bad",
            },
            "SLT_EMAIL",
        ),
    ],
)
def test_mail_settings_are_checked(settings: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(settings)


def test_passwords_stay_out_of_the_settings_repr() -> None:
    s = Settings.from_env(
        {"SMTP_URL": "smtps://bot:hunter2@mail.example:465", "MAIL_FROM": "o@s.example"}
    )
    assert s.mail_transport == "smtp" and "hunter2" not in repr(s)


async def test_console_demo_writes_the_emails_to_a_folder_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.console.main import DEMO_MAIL_FOLDER, run_console

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("/consent ask\nDylan\n/quit\n"))
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    assert await run_console(settings, None, demo=True) == 0
    out = capsys.readouterr().out
    assert f"written to {tmp_path / DEMO_MAIL_FOLDER}/ as .eml files" in out
    assert "Emailed Dylan E's parent" in out
    (eml,) = (tmp_path / DEMO_MAIL_FOLDER).glob("*.eml")
    m = parse(eml.read_bytes())
    assert m["To"] == "dylan.parent@home.example" and "reply to agree" in str(m["Subject"])
