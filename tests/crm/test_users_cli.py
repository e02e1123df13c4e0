"""``patron users ...`` as an administrator runs it, on SQLite and PostgreSQL."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from patron.cli import app
from patron.crm.services import audit, auth, users
from patron.i18n import set_language

runner = CliRunner()


@pytest.fixture(autouse=True)
def english():
    set_language("en")
    yield
    set_language(None)


def patron(db_url, *args, input=None):
    return runner.invoke(app, ["users", *args, "--database-url", db_url], input=input)


def test_create_with_password_stdin(db_url, session):
    result = patron(
        db_url,
        "create",
        "Alice",
        "--role",
        "admin",
        "--password-stdin",
        "--display-name",
        "Alice Wang",
        input="correct horse battery\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created user alice (admin)" in result.output
    assert "correct horse" not in result.output
    user = users.get_user_by_name(session, "alice")
    assert user.role == "admin" and user.display_name == "Alice Wang"
    assert users.verify_password(user, "correct horse battery")
    events, total = audit.list_events(session, action="user.create")
    assert total == 1 and events[0].actor_id is None


def test_create_generates_a_password_and_prints_it_once(db_url, session):
    result = patron(db_url, "create", "bob", "--role", "staff")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if "shown only now" in line)
    password = lines[header + 1].strip()
    assert len(password) >= 16 and result.output.count(password) == 1
    user = users.get_user_by_name(session, "bob")
    assert users.verify_password(user, password)
    assert auth.authenticate(session, "bob", password).id == user.id


def test_a_short_password_exits_2_and_creates_nobody(db_url, session):
    result = patron(db_url, "create", "carol", "--password-stdin", input="short\n")
    assert result.exit_code == 2
    assert "at least 8 characters" in result.output
    assert users.get_user_by_name(session, "carol") is None


def test_a_taken_username_exits_2(db_url):
    assert patron(db_url, "create", "dave", "--generate-password").exit_code == 0
    result = patron(db_url, "create", "DAVE", "--generate-password")
    assert result.exit_code == 2 and "already taken" in result.output


def test_list_set_password_token_disable(db_url, session):
    patron(db_url, "create", "root", "--role", "admin", "--generate-password")
    patron(
        db_url, "create", "erin", "--role", "analyst", "--password-stdin", input="old password\n"
    )

    listing = patron(db_url, "list")
    assert listing.exit_code == 0
    assert "root" in listing.output and "erin" in listing.output and "analyst" in listing.output

    result = patron(db_url, "set-password", "erin", "--password-stdin", input="new password\n")
    assert result.exit_code == 0, result.output
    erin = users.get_user_by_name(session, "erin")
    assert users.verify_password(erin, "new password")
    assert not users.verify_password(erin, "old password")
    session.rollback()

    result = patron(db_url, "token", "erin", "--name", "export script")
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("pat_")
    assert auth.token_user(session, token).username == "erin"
    assert auth.list_api_tokens(session, erin)[0].name == "export script"
    session.rollback()

    assert patron(db_url, "disable", "erin").exit_code == 0
    assert auth.token_user(session, token) is None
    session.rollback()
    assert patron(db_url, "enable", "erin").exit_code == 0
    assert auth.token_user(session, token) is not None
    session.rollback()

    result = patron(db_url, "disable", "root")  # the last admin
    assert result.exit_code == 2 and "last active admin" in result.output
    result = patron(db_url, "token", "nobody")
    assert result.exit_code == 2 and "nobody" in result.output


def test_password_stdin_from_a_real_pipe(db_url, session):
    """The installed command, with the password piped in as a script would."""
    env = {**os.environ, "PATRON_LANG": "en", "COLUMNS": "200"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "patron.cli",
            "users",
            "create",
            "frank",
            "--role",
            "manager",
            "--password-stdin",
            "--database-url",
            db_url,
        ],
        input="piped password\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "piped password" not in result.stdout
    assert users.verify_password(users.get_user_by_name(session, "frank"), "piped password")
