"""Logging in: passwords checked with a rate limit, server-side sessions, API tokens.

Sessions and tokens are random secrets (:func:`secrets.token_urlsafe`, 32 bytes) of which
only the SHA-256 digest is stored: a copy of the database does not hand out logins, and
deleting the row (logout, a new password, a disabled user) ends the login at once — the
reason for server-side sessions over signed cookies.

The rate limit counts failed logins in the last 15 minutes: 5 for one username, or 20
from one address, and the next attempt is refused (:class:`LoginRateLimited`, HTTP 429)
without checking the password, until enough failures are older than 15 minutes. A
successful login clears the count of its username (whoever logs in knows the password, so
the earlier failures were theirs or are moot), but not the count of its address: otherwise
someone guessing other people's passwords could reset it by logging into their own
account between guesses. Refused attempts are audited but not counted, so the wait does
not grow while someone keeps trying.

The failed attempt and its audit event are written to the caller's session before the
error is raised, and both errors carry ``keeps_changes = True``: the caller must *commit*
the session before answering 401 or 429 (rolling back would forget the failure, and the
limit would never trigger).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select

from patron.crm.services import audit, token_cache
from patron.crm.services.errors import Forbidden, NotFound, ServiceError
from patron.crm.services.permissions import can
from patron.crm.services.users import (
    get_user_by_name,
    normalise_username,
    rehash_if_needed,
    spend_password_check,
    verify_password,
)
from patron.crm.tables import ApiToken, LoginAttempt, User, WebSession
from patron.crm.tables.base import utcnow
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "SESSION_IDLE",
    "SESSION_ABSOLUTE",
    "LAST_SEEN_EVERY",
    "RATE_WINDOW",
    "MAX_FAILURES_PER_USERNAME",
    "MAX_FAILURES_PER_IP",
    "TOKEN_PREFIX",
    "LoginFailed",
    "LoginRateLimited",
    "authenticate",
    "start_session",
    "session_user",
    "end_session",
    "purge_sessions",
    "create_api_token",
    "token_user",
    "revoke_api_token",
    "list_api_tokens",
    "digest",
]

#: A web session ends after this long without a request ...
SESSION_IDLE = dt.timedelta(hours=12)
#: ... and this long after login, however busy.
SESSION_ABSOLUTE = dt.timedelta(days=7)
#: ``last_seen_at`` (of sessions) and ``last_used_at`` (of tokens) are written at most this
#: often, so a busy client does not turn every read into a write.
LAST_SEEN_EVERY = dt.timedelta(minutes=1)

RATE_WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_USERNAME = 5
MAX_FAILURES_PER_IP = 20

#: API tokens read ``pat_<secret>``, so a leaked one is recognisable in logs and scanners.
TOKEN_PREFIX = "pat_"
_PREFIX_CHARS = 8


class LoginFailed(ServiceError):
    """Wrong username or password, or a disabled user (HTTP 401).

    One message for all three, so the answer does not tell which usernames exist.
    """

    code, status = "login_failed", 401
    keeps_changes = True

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or _("accounts.login_failed"))


class LoginRateLimited(ServiceError):
    """Too many failed logins (HTTP 429); ``retry_after`` is in whole seconds."""

    code, status = "rate_limited", 429
    keeps_changes = True

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(_("accounts.rate_limited", minutes=minutes))
        self.retry_after = retry_after


def digest(secret: str) -> str:
    """The SHA-256 hex digest stored in place of a session or token secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def authenticate(session: Session, username: str, password: str, *, ip: str = "") -> User:
    """The user whose username and password these are; every attempt is recorded.

    An unknown username costs the same argon2 verification as a known one (against a
    dummy hash), so response times do not reveal which usernames exist. A correct password
    whose hash used older argon2 parameters is re-hashed.

    Parameters
    ----------
    ip
        The client's address; ``""`` (unknown, e.g. a local command) is not rate-limited
        per address, only per username.

    Raises
    ------
    LoginRateLimited
        Before checking the password, when the username or the address has too many recent
        failures (audited as ``user.login_failed`` with reason ``rate_limited``).
    LoginFailed
        For an unknown username, a wrong password or a disabled user (recorded as a failed
        attempt and audited as ``user.login_failed``, without the password).

    Both errors leave changes in ``session`` that must be committed (see the module).
    """
    name = normalise_username(username)[:64]
    ip = (ip or "")[:64]
    now = utcnow()
    retry_after = _retry_after(session, name, ip, now)
    user = get_user_by_name(session, name)
    if retry_after:
        _audit_failure(session, name, user, ip, "rate_limited")
        session.flush()
        raise LoginRateLimited(retry_after)
    if user is None:
        spend_password_check(password)
        reason = "unknown_user"
    elif not verify_password(user, password):
        reason = "wrong_password"
    elif not user.active:
        reason = "inactive"
    else:
        reason = ""
    session.add(LoginAttempt(username=name, ip=ip, at=now, success=not reason))
    if user is None or reason:
        _audit_failure(session, name, user, ip, reason)
        session.flush()
        raise LoginFailed()
    rehashed = rehash_if_needed(user, password)
    audit.record(
        session,
        actor=user,
        action="user.login",
        object_type="user",
        object_id=user.id,
        after={"username": user.username, "rehashed": rehashed},
        ip=ip or None,
    )
    session.flush()
    return user


def _audit_failure(session: Session, name: str, user: User | None, ip: str, reason: str) -> None:
    audit.record(
        session,
        actor=None,
        action="user.login_failed",
        object_type="user",
        object_id=user.id if user is not None else None,
        after={"username": name, "reason": reason},
        ip=ip or None,
    )


def _retry_after(session: Session, name: str, ip: str, now: dt.datetime) -> int:
    """Seconds until the username and the address are both under their limits (0: now)."""
    since = now - RATE_WINDOW
    last_success = session.scalar(
        select(LoginAttempt.at)
        .where(LoginAttempt.username == name, LoginAttempt.success.is_(True))
        .order_by(LoginAttempt.at.desc())
        .limit(1)
    )
    by_name = select(LoginAttempt.at).where(
        LoginAttempt.username == name,
        LoginAttempt.success.is_(False),
        LoginAttempt.at > max(since, last_success or since),
    )
    waits = [_wait(session, by_name, MAX_FAILURES_PER_USERNAME, now)]
    if ip:
        by_ip = select(LoginAttempt.at).where(
            LoginAttempt.ip == ip, LoginAttempt.success.is_(False), LoginAttempt.at > since
        )
        waits.append(_wait(session, by_ip, MAX_FAILURES_PER_IP, now))
    return max(waits)


def _wait(session: Session, failures, limit: int, now: dt.datetime) -> int:
    # The newest `limit` failures keep the limit in force until the oldest of them leaves
    # the window; reading only those rows keeps the query small under attack.
    times = list(session.scalars(failures.order_by(LoginAttempt.at.desc()).limit(limit)))
    if len(times) < limit:
        return 0
    seconds = (times[-1] + RATE_WINDOW - now).total_seconds()
    return max(1, math.ceil(seconds))


def start_session(
    session: Session, user: User, *, ip: str | None = None, user_agent: str | None = None
) -> tuple[str, WebSession]:
    """Open a web session for ``user`` (after :func:`authenticate`).

    Returns
    -------
    tuple
        The secret for the cookie (shown to nobody else, stored only as a digest) and the
        session row, whose ``csrf_token`` every form of this session must carry.

    Not audited on its own: :func:`authenticate` records the login. Expired sessions of
    every user are deleted on the way.
    """
    if not user.active:
        raise Forbidden(_("accounts.user_disabled", username=user.username))
    purge_sessions(session)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    web = WebSession(
        token_hash=digest(secret),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + SESSION_ABSOLUTE,
        ip=ip[:64] if ip else None,
        user_agent=user_agent[:255] if user_agent else None,
    )
    session.add(web)
    session.flush()
    return secret, web


def session_user(session: Session, secret: str | None) -> tuple[User, WebSession] | None:
    """The user and session of the cookie ``secret``, or ``None``.

    ``None`` when the secret is unknown, the session expired (12 hours idle or 7 days
    old) or its user is disabled. An expired session is deleted; ``last_seen_at`` is
    refreshed at most once a minute.
    """
    if not secret:
        return None
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == digest(secret))
    ).one_or_none()
    if row is None:
        return None
    web, user = row
    now = utcnow()
    if now >= web.expires_at or now >= web.last_seen_at + SESSION_IDLE:
        session.delete(web)
        session.flush()
        return None
    if not user.active:
        return None
    if now - web.last_seen_at >= LAST_SEEN_EVERY:
        web.last_seen_at = now
        session.flush()
    return user, web


def end_session(session: Session, secret: str | None, *, ip: str | None = None) -> None:
    """Log out: delete the session of ``secret`` (audited as ``user.logout``, from ``ip``).

    An unknown or already ended session is nothing to do.
    """
    if not secret:
        return
    web = session.scalars(
        select(WebSession).where(WebSession.token_hash == digest(secret))
    ).one_or_none()
    if web is None:
        return
    user = session.get(User, web.user_id)
    session.delete(web)
    audit.record(
        session,
        actor=user,
        action="user.logout",
        object_type="user",
        object_id=web.user_id,
        before={"session_id": web.id, "created_at": web.created_at},
        ip=ip,
    )
    session.flush()


def purge_sessions(session: Session) -> int:
    """Delete every expired web session; returns how many."""
    now = utcnow()
    result = session.execute(
        delete(WebSession).where(
            or_(WebSession.expires_at <= now, WebSession.last_seen_at <= now - SESSION_IDLE)
        ),
        execution_options={"synchronize_session": "fetch"},
    )
    return result.rowcount or 0


def create_api_token(
    session: Session, user: User, *, name: str = "", actor: User | None = None
) -> tuple[str, ApiToken]:
    """A new API token for ``user``; audited as ``token.create``.

    Returns
    -------
    tuple
        The token, ``pat_<secret>`` — shown once, stored only as a digest — and its row,
        whose ``prefix`` (the secret's first 8 characters) identifies it in lists as
        ``pat_<prefix>…``.
    """
    secret = secrets.token_urlsafe(32)
    token = TOKEN_PREFIX + secret
    row = ApiToken(
        user_id=user.id,
        name=(name or "").strip()[:128],
        token_hash=digest(token),
        prefix=secret[:_PREFIX_CHARS],
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.create",
        object_type="api_token",
        object_id=row.id,
        after=_token_values(row, user),
    )
    return token, row


def token_user(session: Session, secret: str | None) -> User | None:
    """The user of the bearer token ``secret``, or ``None``.

    ``None`` when the token is unknown, revoked or its user disabled; ``last_used_at`` is
    refreshed at most once a minute. A token verified in the last few seconds is taken
    from :mod:`patron.crm.services.token_cache` without a query (a revocation or a
    disabled user in this process counts at once, one elsewhere within seconds).
    """
    if not secret or not secret.startswith(TOKEN_PREFIX):
        return None
    token_hash = digest(secret)
    cached = token_cache.lookup(session, token_hash)
    if cached is not None:
        return cached
    seen = token_cache.generation()
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash)
    ).one_or_none()
    if row is None:
        return None
    token, user = row
    if token.revoked_at is not None or not user.active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_SEEN_EVERY:
        token.last_used_at = now
        session.flush()
    token_cache.remember(token_hash, user, seen)
    return user


def revoke_api_token(session: Session, token_id: int, *, actor: User | None) -> ApiToken:
    """Revoke a token for good (kept, marked revoked); audited as ``token.revoke``.

    A user may revoke their own tokens; other people's need ``users.manage``. Revoking a
    revoked token changes nothing and records nothing.

    Raises
    ------
    NotFound
        When there is no such token.
    Forbidden
        When ``actor`` may not revoke it.
    """
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(_("accounts.token_not_found", token=token_id))
    if actor is not None and actor.id != token.user_id and not can(actor, "users.manage"):
        raise Forbidden(_("accounts.forbidden", permission="users.manage"))
    if token.revoked_at is not None:
        return token
    token.revoked_at = utcnow()
    owner = session.get(User, token.user_id)
    audit.record(
        session,
        actor=actor,
        action="token.revoke",
        object_type="api_token",
        object_id=token.id,
        before={"revoked_at": None},
        after={**_token_values(token, owner), "revoked_at": token.revoked_at},
    )
    session.flush()
    return token


def list_api_tokens(session: Session, user: User) -> list[ApiToken]:
    """``user``'s tokens, revoked ones included, newest first."""
    query = select(ApiToken).where(ApiToken.user_id == user.id)
    return list(session.scalars(query.order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def _token_values(token: ApiToken, user: User | None) -> dict[str, object]:
    return {
        "user_id": token.user_id,
        "username": user.username if user is not None else None,
        "name": token.name,
        "prefix": token.prefix,
    }
