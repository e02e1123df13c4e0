"""Staff accounts: creation, passwords (argon2id), role changes, and their audit trail."""

import json

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from patron.crm.services import audit, auth, users
from patron.crm.services.errors import Conflict, Invalid, NotFound
from patron.crm.tables import AuditEvent, User, WebSession


def make(session, name="alice", role="staff", password="correct horse", **options):
    user, _ = users.create_user(session, username=name, role=role, password=password, **options)
    return user


def trail(session):
    """Every audit value ever written, as one JSON text."""
    events = session.scalars(select(AuditEvent)).all()
    return json.dumps([[e.action, e.before, e.after] for e in events], ensure_ascii=False)


def test_create_user_hashes_with_argon2id(session):
    user, generated = users.create_user(
        session,
        username="Alice",
        role="manager",
        password="correct horse",
        display_name="爱丽丝",
        language="zh-CN",
    )
    session.commit()
    assert generated is None
    assert user.username == "alice"  # usernames are compared in lower case
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    assert users.verify_password(user, "correct horse")
    assert not users.verify_password(user, "correct horsE")
    assert users.get_user_by_name(session, " ALICE ").id == user.id
    assert users.get_user(session, user.id).display_name == "爱丽丝"
    assert user.timezone == "Asia/Shanghai" and user.active


def test_a_generated_password_is_returned_once_and_works(session):
    user, generated = users.create_user(session, username="bob", role="staff")
    assert generated and len(generated) >= 16
    assert users.verify_password(user, generated)
    assert generated not in trail(session)


def test_user_creation_is_audited_without_the_hash(session):
    admin = make(session, "root", "admin")
    user = make(session, "carol", "analyst", actor=admin)
    session.commit()
    events, total = audit.list_events(session, action="user.create", object_id=user.id)
    assert total == 1
    assert events[0].actor_id == admin.id
    assert events[0].after["username"] == "carol" and events[0].after["role"] == "analyst"
    assert "password_hash" not in events[0].after
    assert "$argon2" not in trail(session)


@pytest.mark.parametrize("password", ["", "short", "7chars!"])
def test_passwords_under_eight_characters_are_refused(session, password):
    with pytest.raises(Invalid) as info:
        make(session, password=password)
    assert info.value.field == "password" and info.value.status == 422
    assert users.get_user_by_name(session, "alice") is None


def test_eight_characters_are_enough(session):
    assert users.verify_password(make(session, password="8 chars!"), "8 chars!")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"username": "two words"}, "username"),
        ({"username": ""}, "username"),
        ({"username": "x" * 65}, "username"),
        ({"role": "owner"}, "role"),
        ({"language": "fr"}, "language"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_bad_values_name_their_field(session, options, field):
    values = {"username": "alice", "role": "staff", "password": "correct horse", **options}
    with pytest.raises(Invalid) as info:
        users.create_user(session, **values)
    assert info.value.field == field


def test_chinese_usernames_are_allowed(session):
    assert make(session, "张伟").username == "张伟"


def test_usernames_are_unique_whatever_the_case(session):
    make(session, "alice")
    session.commit()
    with pytest.raises(Conflict) as info:
        make(session, "ALICE")
    assert info.value.field == "username" and info.value.status == 409


def test_get_and_list(session):
    make(session, "zoe")
    make(session, "adam")
    assert [u.username for u in users.list_users(session)] == ["adam", "zoe"]
    with pytest.raises(NotFound):
        users.get_user(session, 10_000)
    assert users.get_user_by_name(session, "nobody") is None


def test_update_user_audits_only_what_changed(session):
    admin = make(session, "root", "admin")
    user = make(session, "dave", "staff")
    users.update_user(
        session,
        user,
        actor=admin,
        role="manager",
        display_name="Dave",
        language="en",
        timezone="Europe/Berlin",
        active=True,
    )
    session.commit()
    assert (user.role, user.display_name, user.language, user.timezone) == (
        "manager",
        "Dave",
        "en",
        "Europe/Berlin",
    )
    events, total = audit.list_events(session, action="user.update")
    assert total == 1
    assert events[0].before == {
        "role": "staff",
        "display_name": "",
        "language": None,
        "timezone": "Asia/Shanghai",
    }
    assert events[0].after == {
        "role": "manager",
        "display_name": "Dave",
        "language": "en",
        "timezone": "Europe/Berlin",
    }
    assert events[0].actor_name == "root"

    users.update_user(session, user, actor=admin, role="manager")  # no change
    assert audit.list_events(session, action="user.update")[1] == 1
    with pytest.raises(Invalid):
        users.update_user(session, user, actor=admin, role="boss")


def test_disabling_a_user_ends_their_sessions(session):
    admin = make(session, "root", "admin")
    user = make(session, "erin")
    secret, _ = auth.start_session(session, user)
    session.commit()
    users.update_user(session, user, actor=admin, active=False)
    session.commit()
    assert auth.session_user(session, secret) is None
    assert session.scalars(select(WebSession)).all() == []
    events, _ = audit.list_events(session, action="user.update")
    assert events[0].after == {"active": False, "sessions_ended": 1}


def test_the_last_admin_cannot_be_disabled_or_demoted(session):
    root = make(session, "root", "admin")
    with pytest.raises(Conflict):
        users.update_user(session, root, actor=root, active=False)
    with pytest.raises(Conflict):
        users.update_user(session, root, actor=root, role="manager")
    assert root.role == "admin" and root.active
    other = make(session, "second", "admin")
    users.update_user(session, root, actor=other, role="manager")
    assert root.role == "manager"


def test_set_password_replaces_the_hash_and_is_audited(session):
    user = make(session, "frank")
    old_hash = user.password_hash
    changed_before = user.password_changed_at
    users.set_password(session, user, "new password", actor=None)
    session.commit()
    assert user.password_hash != old_hash
    assert users.verify_password(user, "new password")
    assert not users.verify_password(user, "correct horse")
    assert user.password_changed_at > changed_before
    events, total = audit.list_events(session, action="user.password")
    assert total == 1 and events[0].after["sessions_ended"] == 0
    assert "new password" not in trail(session) and "$argon2" not in trail(session)
    with pytest.raises(Invalid) as info:
        users.set_password(session, user, "short", actor=None)
    assert info.value.field == "password"


def test_a_password_change_ends_every_web_session(engine, session):
    user = make(session, "gina")
    copied, _ = auth.start_session(session, user)
    other, _ = auth.start_session(session, user)
    session.commit()
    assert auth.session_user(session, copied)[0].id == user.id
    users.set_password(session, user, "brand new pass", actor=user)
    session.commit()
    session.expunge_all()
    # The copied cookie of a session opened before the change no longer logs in.
    assert auth.session_user(session, copied) is None
    assert auth.session_user(session, other) is None
    assert session.scalars(select(WebSession)).all() == []


def test_a_malformed_hash_is_no_match(session):
    user = make(session)
    user.password_hash = "not a hash"
    assert not users.verify_password(user, "correct horse")


def test_an_old_hash_is_rehashed_at_login(session):
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    user = make(session, "hank")
    user.password_hash = weak.hash("correct horse")
    session.commit()
    assert "m=8192,t=1,p=1" in user.password_hash
    auth.authenticate(session, "hank", "correct horse")
    session.commit()
    session.expunge_all()
    stored = session.scalars(select(User).where(User.username == "hank")).one()
    assert "m=8192" not in stored.password_hash
    assert not PasswordHasher().check_needs_rehash(stored.password_hash)
    assert users.verify_password(stored, "correct horse")
    events, _ = audit.list_events(session, action="user.login")
    assert events[0].after == {"username": "hank", "rehashed": True}
