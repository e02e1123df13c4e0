"""Staff accounts: creating them, changing their role or password, checking a password.

Passwords are hashed with argon2id (argon2-cffi's :class:`~argon2.PasswordHasher` and its
RFC 9106 defaults); a hash made with older parameters is replaced at the next successful
login (:func:`rehash_if_needed`). Usernames are compared in lower case, so ``Alice`` and
``alice`` are one login and one rate-limit counter. Every change is audited, without the
hash.
"""

from __future__ import annotations

import re
import secrets
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from patron.crm.services import audit
from patron.crm.services.errors import Conflict, Invalid, NotFound
from patron.crm.tables import ROLES, User, WebSession
from patron.crm.tables.base import utcnow
from patron.i18n import LANGUAGES, _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "create_user",
    "get_user",
    "get_user_by_name",
    "list_users",
    "update_user",
    "set_password",
    "verify_password",
    "hash_password",
    "rehash_if_needed",
    "spend_password_check",
    "generate_password",
    "normalise_username",
    "user_values",
]

MIN_PASSWORD_LENGTH = 8
#: Long enough for any passphrase, short enough that hashing it is not a denial of service.
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
_USERNAME = re.compile(r"^[\w.@+-]{1,64}$")  # \w is Unicode: 张伟 is a username


def normalise_username(username: str) -> str:
    """The form a username is stored and compared in: trimmed, lower case."""
    return (username or "").strip().lower()


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (after checking its length)."""
    _check_password(password)
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    """Whether ``password`` is ``user``'s; a malformed stored hash is simply no match."""
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def spend_password_check(password: str) -> bool:
    """Verify ``password`` against a random hash and return ``False``.

    For a login with an unknown username: it takes as long as checking a real user's
    password, so the response time does not tell which usernames exist.
    """
    try:
        _hasher.verify(_dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        pass
    return False


def rehash_if_needed(user: User, password: str) -> bool:
    """Re-hash ``user``'s password if its hash was made with other argon2 parameters.

    Call only after :func:`verify_password` accepted ``password``. Returns whether the
    hash changed (the new hash is saved with the caller's transaction).
    """
    try:
        stale = _hasher.check_needs_rehash(user.password_hash)
    except InvalidHashError:
        stale = True
    if stale:
        user.password_hash = _hasher.hash(password)
    return stale


def generate_password() -> str:
    """A random password of 16 URL-safe characters (96 bits), to be shown once."""
    return secrets.token_urlsafe(12)


def user_values(user: User) -> dict[str, Any]:
    """What the audit trail and lists show of a user: everything but the password hash."""
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "active": user.active,
        "language": user.language,
        "timezone": user.timezone,
    }


def create_user(
    session: Session,
    *,
    username: str,
    role: str,
    password: str | None = None,
    display_name: str = "",
    language: str | None = None,
    timezone: str | None = None,
    actor: User | None = None,
) -> tuple[User, str | None]:
    """Create a login for a member of staff; audited as ``user.create``.

    Parameters
    ----------
    username
        Letters (any script), digits and ``. @ + - _``, at most 64; stored in lower case.
    role
        One of :data:`~patron.crm.tables.ROLES`.
    password
        At least 8 characters; ``None`` generates one.
    language, timezone
        The user's display language (``en`` or ``zh-CN``; ``None`` follows the browser)
        and IANA time zone (default ``Asia/Shanghai``).

    Returns
    -------
    tuple
        The new user, and the generated password (``None`` when ``password`` was given):
        it is stored only as a hash, so this is the one chance to show it.

    Raises
    ------
    Invalid
        For a bad username, role, password, language or time zone (``field`` names it).
    Conflict
        When the username is taken.
    """
    name = normalise_username(username)
    if not _USERNAME.match(name):
        raise Invalid(_("accounts.bad_username", username=username), field="username")
    _check_role(role)
    if password is not None:
        _check_password(password)
    values = {
        "display_name": _check_display_name(display_name),
        "language": _check_language(language),
    }
    if timezone is not None:
        values["timezone"] = _check_timezone(timezone)
    if get_user_by_name(session, name) is not None:
        raise Conflict(_("accounts.username_taken", username=name), field="username")
    generated = generate_password() if password is None else None
    user = User(
        username=name,
        role=role,
        active=True,
        password_hash=hash_password(generated or password),
        **values,
    )
    try:
        with session.begin_nested():  # two admins creating the same name at once
            session.add(user)
    except IntegrityError:
        raise Conflict(_("accounts.username_taken", username=name), field="username") from None
    audit.record(
        session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after=user_values(user),
    )
    return user, generated


def get_user(session: Session, user_id: int) -> User:
    """The user with ``user_id``; raises :class:`NotFound` when there is none."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(_("accounts.user_not_found", user=user_id))
    return user


def get_user_by_name(session: Session, username: str) -> User | None:
    """The user called ``username`` (in any case), or ``None``."""
    name = normalise_username(username)
    return session.scalars(select(User).where(User.username == name)).one_or_none()


def list_users(session: Session) -> list[User]:
    """Every user, by username."""
    return list(session.scalars(select(User).order_by(User.username)))


def update_user(
    session: Session,
    user: User,
    *,
    actor: User | None,
    role: str | None = None,
    active: bool | None = None,
    display_name: str | None = None,
    language: str | None = None,
    timezone: str | None = None,
) -> User:
    """Change the fields given (``None`` leaves one as it is); audited as ``user.update``.

    The audit event holds only the fields that changed; nothing changed, nothing recorded.
    Disabling a user ends their web sessions at once (their API tokens stop working while
    they are disabled and work again if they are enabled). ``language=""`` clears the
    language, so the browser's is used.

    Raises
    ------
    Invalid
        For an unknown role, language or time zone.
    Conflict
        When the change would leave no active admin: nobody could manage users any more.
    """
    wanted: dict[str, Any] = {}
    if role is not None:
        wanted["role"] = _check_role(role)
    if active is not None:
        wanted["active"] = bool(active)
    if display_name is not None:
        wanted["display_name"] = _check_display_name(display_name)
    if language is not None:
        wanted["language"] = _check_language(language or None)
    if timezone is not None:
        wanted["timezone"] = _check_timezone(timezone)
    changes = {k: v for k, v in wanted.items() if getattr(user, k) != v}
    if not changes:
        return user
    loses_admin = changes.get("role", "admin") != "admin" or changes.get("active") is False
    if user.role == "admin" and user.active and loses_admin and _other_admins(session, user) == 0:
        raise Conflict(_("accounts.last_admin", username=user.username), field="role")
    before = {k: getattr(user, k) for k in changes}
    for key, value in changes.items():
        setattr(user, key, value)
    after = dict(changes)
    if changes.get("active") is False:
        after["sessions_ended"] = _end_web_sessions(session, user)
    audit.record(
        session,
        actor=actor,
        action="user.update",
        object_type="user",
        object_id=user.id,
        before=before,
        after=after,
    )
    session.flush()
    return user


def set_password(session: Session, user: User, password: str, *, actor: User | None) -> None:
    """Give ``user`` a new password and end all their web sessions.

    Audited as ``user.password`` (with the time and the number of sessions ended, never
    the hash). A copied session cookie stops working with the old password. API tokens are kept:
    they are revoked one by one (:func:`patron.crm.services.auth.revoke_api_token`).

    Raises
    ------
    Invalid
        When the password is shorter than 8 characters (``field="password"``).
    """
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    ended = _end_web_sessions(session, user)
    audit.record(
        session,
        actor=actor,
        action="user.password",
        object_type="user",
        object_id=user.id,
        after={"password_changed_at": user.password_changed_at, "sessions_ended": ended},
    )
    session.flush()


def _end_web_sessions(session: Session, user: User) -> int:
    result = session.execute(
        delete(WebSession).where(WebSession.user_id == user.id),
        execution_options={"synchronize_session": "fetch"},
    )
    return result.rowcount or 0


def _other_admins(session: Session, user: User) -> int:
    query = select(func.count()).where(
        User.role == "admin", User.active.is_(True), User.id != user.id
    )
    return int(session.scalar(query) or 0)


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            _("accounts.password_too_short", min=MIN_PASSWORD_LENGTH),
            field="password",
            code="password_too_short",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(
            _("accounts.password_too_long", max=MAX_PASSWORD_LENGTH),
            field="password",
            code="password_too_long",
        )


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(_("accounts.bad_role", role=role, roles=", ".join(ROLES)), field="role")
    return role


def _check_display_name(display_name: str) -> str:
    display_name = (display_name or "").strip()
    if len(display_name) > 128:
        raise Invalid(_("accounts.display_name_too_long", max=128), field="display_name")
    return display_name


def _check_language(language: str | None) -> str | None:
    if language is None:
        return None
    if language not in LANGUAGES:
        raise Invalid(
            _("accounts.bad_language", language=language, languages=", ".join(LANGUAGES)),
            field="language",
        )
    return language


def _check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(_("accounts.bad_timezone", timezone=timezone), field="timezone") from None
    return timezone
