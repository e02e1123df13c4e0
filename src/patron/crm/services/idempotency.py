"""Idempotent writes: a client's key makes a retried request return the first answer.

As in the IETF ``Idempotency-Key`` HTTP header draft and Stripe's API:

- a write without a key is refused (400): without one, a retry after a lost answer
  would apply the write twice;
- a repeat of the request with the same key returns the first answer, and does nothing;
- the same key with a different request (method, path or body) is refused (422);
- the same key while the first request is still running is refused (409), to be retried.

Keys are scoped to the user who sent them and kept for :data:`KEEP` (the daily job
purges older ones). The remembered answer is written in the same transaction as the write
it answers, so a crash can never leave one without the other.

While a request runs, its key is held by a transaction-scoped advisory lock on
PostgreSQL: a second request with the key fails to take it and gets 409 at once instead of
queueing behind the first. SQLite runs one write transaction at a time (``BEGIN
IMMEDIATE``), so a second request there waits for the first to commit and then gets its
answer -- "still running" cannot be observed on SQLite.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Integer, String, column, delete, select, text

from patron.crm.services.errors import Conflict, Invalid, ServiceError
from patron.crm.tables import IdempotencyKey
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "KEEP",
    "MissingKey",
    "KeyInUse",
    "KeyReused",
    "Stored",
    "parse_key",
    "fingerprint",
    "LOCK_CLASS",
    "lock_id",
    "claim",
    "remember",
    "purge",
]

#: How long a key is remembered (Stripe keeps keys for 24 hours).
KEEP = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255
#: The first half of the advisory lock's two-part key: "idempotency" in patron's locks.
LOCK_CLASS = 0x1DE0


class MissingKey(ServiceError):
    """No usable ``Idempotency-Key`` header on a write (HTTP 400)."""

    code, status = "idempotency_key_missing", 400


class KeyInUse(Conflict):
    """A request with the same key is still running (HTTP 409)."""

    code = "idempotency_key_in_use"


class KeyReused(Invalid):
    """The key was used before for a different request (HTTP 422)."""

    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Stored:
    """The first answer to a request: its status code and JSON body."""

    status_code: int
    response: dict[str, Any]


def parse_key(header: str | None) -> str:
    """The key of an ``Idempotency-Key`` header.

    The draft sends it as a structured-field string (``"8e03978e-..."``, quoted); Stripe's
    clients send it bare. Both are accepted.

    >>> parse_key('"8e03978e-40d5"'), parse_key("abc")
    ('8e03978e-40d5', 'abc')
    """
    if header is None or not header.strip():
        raise MissingKey(_("idempotency.missing"), field="Idempotency-Key")
    key = header.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise MissingKey(
            _("idempotency.bad_key"), field="Idempotency-Key", code="idempotency_key_invalid"
        )
    return key


def fingerprint(method: str, path: str, body: Any) -> str:
    """SHA-256 of the request: method, path and the body as canonical JSON.

    Key order and spacing of the body do not matter; any other difference does.

    >>> fingerprint("POST", "/p", {"a": 1, "b": 2}) == fingerprint("post", "/p", {"b": 2, "a": 1})
    True
    """
    canonical = json.dumps(
        [method.upper(), path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def lock_id(user_id: int, key: str) -> int:
    """The second half of the advisory lock that holds ``key`` of ``user_id`` while it runs."""
    digest = hashlib.sha256(f"{user_id}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


_CLAIM = text(
    "SELECT pg_try_advisory_xact_lock(:class, :lock), k.fingerprint, k.status_code, k.response"
    " FROM (SELECT 1) AS one LEFT JOIN idempotency_keys AS k"
    " ON k.user_id = :user AND k.key = :key"
).columns(
    column("taken", Boolean),
    column("fingerprint", String),
    column("status_code", Integer),
    column("response", JSON),
)


def claim(session: Session, *, user_id: int, key: str, fingerprint: str) -> Stored | None:
    """Take the key for this transaction; the first answer if the request was made before.

    On PostgreSQL the lock and the answer come in one round trip. Should the key's holder
    commit between that statement's snapshot and its taking the lock, the answer is not
    seen and the request runs; the unique key then refuses the second answer (409, and a
    rollback), so nothing is ever done twice.

    Raises
    ------
    KeyInUse
        (409, PostgreSQL) When another transaction holds the key: its request is running.
    KeyReused
        (422) When the key answered a different request.
    """
    if session.get_bind().dialect.name == "postgresql":
        params = {"class": LOCK_CLASS, "lock": lock_id(user_id, key), "user": user_id, "key": key}
        taken, *found = session.execute(_CLAIM, params).one()
        if not taken:
            raise KeyInUse(_("idempotency.in_progress"), field="Idempotency-Key")
        row = None if found[0] is None else tuple(found)
    else:
        row = session.execute(
            select(
                IdempotencyKey.fingerprint, IdempotencyKey.status_code, IdempotencyKey.response
            ).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        ).one_or_none()
    if row is None:
        return None
    stored_print, status_code, response = row
    if stored_print != fingerprint:
        raise KeyReused(_("idempotency.mismatch"), field="Idempotency-Key")
    return Stored(status_code, response)


def remember(
    session: Session,
    *,
    user_id: int,
    key: str,
    fingerprint: str,
    status_code: int,
    response: dict[str, Any],
    now: dt.datetime | None = None,
) -> None:
    """Keep the answer to the request of ``key`` (in the caller's transaction)."""
    values = {
        "user_id": user_id,
        "key": key,
        "fingerprint": fingerprint,
        "status_code": status_code,
        "response": response,
    }
    if now is not None:
        values["created_at"] = now
    session.add(IdempotencyKey(**values))
    session.flush()


def purge(session: Session, *, now: dt.datetime, keep: dt.timedelta = KEEP) -> int:
    """Forget the keys older than ``keep``; how many."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - keep))
    return int(result.rowcount or 0)
