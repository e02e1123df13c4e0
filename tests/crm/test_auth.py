"""Logins: rate limits, server-side sessions, API tokens, and what each leaves in the trail."""

import datetime as dt
import hashlib
import json

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from patron.crm.services import audit, auth, users
from patron.crm.services.errors import Forbidden, NotFound
from patron.crm.tables import ApiToken, LoginAttempt, WebSession
from patron.crm.tables.base import utcnow

PASSWORD = "correct horse"


def make(session, name="alice", role="staff", password=PASSWORD):
    user, _ = users.create_user(session, username=name, role=role, password=password)
    session.commit()
    return user


def fail(session, username, *, ip="", password="wrong password"):
    """One failed login, committed as the web layer must (see auth's module docstring)."""
    with pytest.raises(auth.LoginFailed) as info:
        auth.authenticate(session, username, password, ip=ip)
    assert info.value.keeps_changes
    session.commit()
    return info.value


def age_attempts(session, by=auth.RATE_WINDOW):
    """Move every login attempt ``by`` into the past, as if that time had gone by."""
    for attempt in session.scalars(select(LoginAttempt)):
        attempt.at -= by
    session.commit()


@pytest.fixture
def cheap_hashing(monkeypatch):
    """argon2id with small parameters, for tests that make many attempts (cost only)."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    users._dummy_hash.cache_clear()  # the dummy hash of unknown usernames, cheap as well
    yield
    monkeypatch.undo()
    users._dummy_hash.cache_clear()


# Logging in ----------------------------------------------------------------------------


def test_authenticate_returns_the_user_and_audits_the_login(session):
    alice = make(session)
    user = auth.authenticate(session, "Alice", PASSWORD, ip="10.0.0.7")
    session.commit()
    assert user.id == alice.id
    events, total = audit.list_events(session, action="user.login")
    assert total == 1
    assert events[0].actor_id == alice.id and events[0].ip == "10.0.0.7"
    attempt = session.scalars(select(LoginAttempt)).one()
    assert attempt.success and attempt.username == "alice" and attempt.ip == "10.0.0.7"


@pytest.mark.parametrize("case", ["wrong_password", "unknown_user", "inactive"])
def test_failures_look_alike_and_are_audited_without_the_password(session, case):
    alice = make(session)
    make(session, "root", "admin")
    username, password = "alice", "wrong password"
    if case == "unknown_user":
        username = "mallory"
    if case == "inactive":
        users.update_user(session, alice, actor=None, active=False)
        session.commit()
        password = PASSWORD
    error = fail(session, username, ip="10.0.0.9", password=password)
    assert error.status == 401 and error.code == "login_failed"
    assert error.message == auth.LoginFailed().message  # the same answer for all three
    events, total = audit.list_events(session, action="user.login_failed")
    assert total == 1
    assert events[0].after == {"username": username, "reason": case}
    assert events[0].actor_id is None and events[0].ip == "10.0.0.9"
    assert password not in json.dumps([events[0].before, events[0].after])
    assert not session.scalars(select(LoginAttempt)).one().success


def test_an_unknown_username_costs_one_argon2_verification(session, monkeypatch):
    make(session)
    calls = []

    class Counting(PasswordHasher):
        def verify(self, hash, password):
            calls.append(hash.split("$")[3])  # the parameters, e.g. m=65536,t=3,p=4
            return super().verify(hash, password)

    monkeypatch.setattr(users, "_hasher", Counting())
    fail(session, "alice")
    fail(session, "nobody")
    assert len(calls) == 2
    assert calls[0] == calls[1]  # same work factor for a real and a dummy hash


# The rate limit ------------------------------------------------------------------------


def test_five_failures_for_one_username_lock_it_for_fifteen_minutes(session):
    make(session)
    for _ in range(auth.MAX_FAILURES_PER_USERNAME):
        fail(session, "alice", ip="10.0.0.1")
    with pytest.raises(auth.LoginRateLimited) as info:
        # The right password from another address: still refused, unchecked.
        auth.authenticate(session, "alice", PASSWORD, ip="10.0.0.2")
    session.commit()
    error = info.value
    assert error.status == 429 and error.code == "rate_limited" and error.keeps_changes
    assert 800 < error.retry_after <= 900
    events, total = audit.list_events(session, action="user.login_failed")
    assert total == 6 and events[0].after["reason"] == "rate_limited"
    # Refused attempts are not counted, so the wait does not grow.
    assert session.query(LoginAttempt).count() == 5
    # Other usernames are not affected.
    make(session, "bob")
    assert auth.authenticate(session, "bob", PASSWORD, ip="10.0.0.1").username == "bob"

    age_attempts(session)
    assert auth.authenticate(session, "alice", PASSWORD).username == "alice"


def test_retry_after_counts_down_to_when_the_oldest_failure_leaves_the_window(session):
    make(session)
    now = utcnow()
    for minutes in (10, 9, 8, 7, 6):
        session.add(LoginAttempt(username="alice", ip="", at=now - dt.timedelta(minutes=minutes)))
    session.commit()
    with pytest.raises(auth.LoginRateLimited) as info:
        auth.authenticate(session, "alice", PASSWORD)
    assert 240 < info.value.retry_after <= 300  # 15 - 10 minutes
    assert "5" in info.value.message  # "try again in 5 min"


def test_a_successful_login_clears_its_username_count(session):
    make(session)
    for _ in range(4):
        fail(session, "alice")
    auth.authenticate(session, "alice", PASSWORD)
    session.commit()
    for _ in range(5):  # five more failures are allowed: the earlier four are forgiven
        fail(session, "alice")
    with pytest.raises(auth.LoginRateLimited):
        auth.authenticate(session, "alice", PASSWORD)


def test_twenty_failures_from_one_address_lock_it(session, cheap_hashing):
    make(session)
    for i in range(auth.MAX_FAILURES_PER_IP - 1):
        fail(session, f"ghost{i}", ip="10.6.6.6")
    # A success from the address does not reset its count ...
    auth.authenticate(session, "alice", PASSWORD, ip="10.6.6.6")
    session.commit()
    fail(session, "ghost", ip="10.6.6.6")  # the 20th failure
    # ... so now even a right password from that address waits.
    with pytest.raises(auth.LoginRateLimited) as info:
        auth.authenticate(session, "alice", PASSWORD, ip="10.6.6.6")
    assert 0 < info.value.retry_after <= 900
    session.rollback()
    # Another address is free, and so is this one once the failures are old.
    assert auth.authenticate(session, "alice", PASSWORD, ip="10.0.0.1")
    session.commit()
    age_attempts(session)
    assert auth.authenticate(session, "alice", PASSWORD, ip="10.6.6.6")


def test_an_unknown_address_is_limited_per_username_only(session, cheap_hashing):
    make(session)
    for i in range(auth.MAX_FAILURES_PER_IP + 1):
        fail(session, f"ghost{i}", ip="")
    assert auth.authenticate(session, "alice", PASSWORD, ip="").username == "alice"


def test_a_failure_rolled_back_by_the_caller_is_forgotten(session):
    """Why both errors say keeps_changes: a rollback loses the attempt."""
    make(session)
    for _ in range(6):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(session, "alice", "wrong password")
        session.rollback()
    assert session.query(LoginAttempt).count() == 0


# Web sessions --------------------------------------------------------------------------


def test_a_session_stores_only_the_digest_of_its_secret(session):
    alice = make(session)
    secret, web = auth.start_session(session, alice, ip="10.0.0.1", user_agent="Firefox")
    session.commit()
    assert len(secret) >= 43
    assert web.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert web.csrf_token and web.csrf_token != secret
    assert web.expires_at - web.created_at == auth.SESSION_ABSOLUTE
    row = session.execute(select(WebSession.__table__)).one()
    assert secret not in [str(value) for value in row]
    user, found = auth.session_user(session, secret)
    assert user.id == alice.id and found.id == web.id
    assert auth.session_user(session, secret + "x") is None
    assert auth.session_user(session, "") is None
    assert auth.session_user(session, None) is None


def test_logout_ends_the_session_for_good(session):
    alice = make(session)
    secret, _ = auth.start_session(session, alice)
    session.commit()
    auth.end_session(session, secret, ip="10.0.0.1")
    session.commit()
    assert auth.session_user(session, secret) is None
    events, total = audit.list_events(session, action="user.logout")
    assert total == 1 and events[0].actor_id == alice.id and events[0].ip == "10.0.0.1"
    auth.end_session(session, secret)  # twice is harmless
    assert audit.list_events(session, action="user.logout")[1] == 1


def test_a_session_expires_after_twelve_idle_hours(session):
    alice = make(session)
    secret, web = auth.start_session(session, alice)
    web.last_seen_at = utcnow() - auth.SESSION_IDLE - dt.timedelta(seconds=1)
    session.commit()
    assert auth.session_user(session, secret) is None
    session.commit()
    assert session.query(WebSession).count() == 0  # the expired row is gone


def test_a_session_expires_after_seven_days_however_busy(session):
    alice = make(session)
    secret, web = auth.start_session(session, alice)
    web.created_at = utcnow() - auth.SESSION_ABSOLUTE
    web.expires_at = utcnow() - dt.timedelta(seconds=1)
    session.commit()
    assert auth.session_user(session, secret) is None


def test_last_seen_is_written_at_most_once_a_minute(session):
    alice = make(session)
    secret, web = auth.start_session(session, alice)
    session.commit()
    first = web.last_seen_at
    auth.session_user(session, secret)
    session.commit()
    assert session.get(WebSession, web.id).last_seen_at == first
    two_minutes_ago = utcnow() - dt.timedelta(minutes=2)
    session.execute(update(WebSession).values(last_seen_at=two_minutes_ago))
    session.commit()
    session.expunge_all()
    auth.session_user(session, secret)
    session.commit()
    session.expunge_all()
    assert session.get(WebSession, web.id).last_seen_at > two_minutes_ago + dt.timedelta(seconds=90)


def test_a_disabled_user_has_no_session(session):
    alice = make(session)
    make(session, "root", "admin")
    secret, _ = auth.start_session(session, alice)
    session.commit()
    alice.active = False  # directly, without update_user ending the sessions
    session.commit()
    assert auth.session_user(session, secret) is None
    with pytest.raises(Forbidden):
        auth.start_session(session, alice)


def test_starting_a_session_deletes_expired_ones(session):
    alice = make(session)
    _, old = auth.start_session(session, alice)
    old.expires_at = utcnow() - dt.timedelta(seconds=1)
    session.commit()
    auth.start_session(session, alice)
    session.commit()
    assert session.query(WebSession).count() == 1


# API tokens ----------------------------------------------------------------------------


def test_api_tokens_are_pat_secrets_stored_as_digests(session):
    alice = make(session)
    token, row = auth.create_api_token(session, alice, name="nightly export")
    session.commit()
    assert token.startswith("pat_") and len(token) >= 4 + 43
    assert row.prefix == token[4:12] and len(row.prefix) == 8
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert auth.token_user(session, token).id == alice.id
    session.commit()
    assert session.get(ApiToken, row.id).last_used_at is not None
    assert auth.token_user(session, token[4:]) is None  # the bare secret is not a token
    assert auth.token_user(session, token + "x") is None
    assert auth.token_user(session, None) is None
    events, total = audit.list_events(session, action="token.create")
    assert total == 1
    assert events[0].after == {
        "user_id": alice.id,
        "username": "alice",
        "name": "nightly export",
        "prefix": row.prefix,
    }
    assert token not in json.dumps([e.after for e in audit.list_events(session)[0]])


def test_a_revoked_token_stops_working_and_is_kept(session):
    alice = make(session)
    token, row = auth.create_api_token(session, alice)
    session.commit()
    revoked = auth.revoke_api_token(session, row.id, actor=alice)
    session.commit()
    assert revoked.revoked_at is not None
    assert auth.token_user(session, token) is None
    assert [t.id for t in auth.list_api_tokens(session, alice)] == [row.id]
    auth.revoke_api_token(session, row.id, actor=alice)  # again: nothing more recorded
    assert audit.list_events(session, action="token.revoke")[1] == 1
    with pytest.raises(NotFound):
        auth.revoke_api_token(session, 10_000, actor=alice)


def test_only_the_owner_or_an_admin_revokes_a_token(session):
    alice = make(session)
    bob = make(session, "bob")
    root = make(session, "root", "admin")
    _, row = auth.create_api_token(session, alice)
    session.commit()
    with pytest.raises(Forbidden):
        auth.revoke_api_token(session, row.id, actor=bob)
    assert auth.revoke_api_token(session, row.id, actor=root).revoked_at is not None
    events, _ = audit.list_events(session, action="token.revoke")
    assert events[0].actor_id == root.id and events[0].after["username"] == "alice"


def test_a_disabled_users_tokens_stop_working(session):
    alice = make(session)
    make(session, "root", "admin")
    token, _ = auth.create_api_token(session, alice)
    users.update_user(session, alice, actor=None, active=False)
    session.commit()
    assert auth.token_user(session, token) is None
    users.update_user(session, alice, actor=None, active=True)
    session.commit()
    assert auth.token_user(session, token).id == alice.id


def test_tokens_are_listed_newest_first(session):
    alice = make(session)
    bob = make(session, "bob")
    ids = [auth.create_api_token(session, alice, name=str(i))[1].id for i in range(3)]
    auth.create_api_token(session, bob)
    session.commit()
    assert [t.id for t in auth.list_api_tokens(session, alice)] == ids[::-1]
