"""An API earn or redemption in one round trip, on PostgreSQL, for the common case.

Through the ORM a write is eleven round trips (:mod:`.points` with
:func:`patron.web.idempotency.run_once`); under load each is a wait for the database and
for the worker, and a busy API spends more time waiting than working. The function
``patron_points_write`` (migration 0007) does the same write in one call and one
transaction: it claims the idempotency key (replays the first answer, 422 for another
request, 409 while the key's request runs), locks the account, writes the entry, the lot
or the allocations and the balance, and remembers the answer -- row for row what
:func:`.points.earn` and :func:`.points.redeem` write, and the same answer.

It covers only the common case: a customer who was not merged away, an account that
exists and owes no refund debt, a programme whose tiers go by spend (an earn may then not
upgrade anyone), no lot already past its expiry, no reward. Anything else, and any input
the Python checks refuse, is answered ``None``: nothing was written, and the caller takes
the Python path, which stays the one definition of the rules. It runs in autocommit: the
function's statement is its own transaction, so no ``BEGIN`` or ``COMMIT`` travels.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patron.crm.services import idempotency
from patron.crm.services.errors import ServiceError
from patron.crm.services.loyalty.points import check_points, check_reason
from patron.i18n import _

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from sqlalchemy import Connection

__all__ = ["FUNCTION", "PointsWrite", "Answer", "write", "write_async", "INSTALLED"]

#: The function of migration 0007, with its argument types.
FUNCTION = (
    "patron_points_write(text, bigint, text, text, text, integer, integer, bigint, bigint,"
    " text, timestamptz, text, text)"
)

_CALL = (
    "SELECT status, body, replayed FROM patron_points_write("
    "%(kind)s::text, %(user_id)s::bigint, %(actor)s::text, %(key)s::text,"
    " %(fingerprint)s::text, %(lock_class)s::integer, %(lock_id)s::integer,"
    " %(customer_id)s::bigint, %(points)s::bigint, %(reason)s::text, %(now)s::timestamptz,"
    " %(created_at)s::text, %(refusal)s::text)"
)
_KINDS = ("earn", "redeem")
#: Whether the database has the function (a database not yet migrated to 0007 has not).
INSTALLED = f"SELECT to_regprocedure('{FUNCTION}') IS NOT NULL"


@dataclass(frozen=True)
class PointsWrite:
    """One API write: what, by whom, under which key, and when.

    ``created_at`` is ``now`` as the API's answer writes it (the answer is built and
    remembered in the database).
    """

    kind: str  # "earn" or "redeem"
    user_id: int
    actor_name: str
    key: str
    fingerprint: str
    customer_id: int
    points: Any
    reason: Any
    now: dt.datetime
    created_at: str


@dataclass(frozen=True)
class Answer:
    """The write's answer (status and JSON body), and whether it repeats the first one."""

    status_code: int
    body: dict[str, Any]
    replayed: bool


def _params(request: PointsWrite) -> dict[str, Any] | None:
    """The function's arguments; None when the Python checks refuse the input."""
    if request.kind not in _KINDS:
        raise ValueError(f"unknown kind {request.kind!r}")
    try:
        points = check_points(request.points)
        reason = check_reason(request.reason, required=request.kind == "earn")
    except ServiceError:
        return None  # the Python path refuses it, and remembers the refusal
    refusal = None
    if request.kind == "redeem":
        refusal = _("loyalty.insufficient", points=f"{points:,}", balance="{balance}")
    return {
        "kind": request.kind,
        "user_id": request.user_id,
        "actor": request.actor_name,
        "key": request.key,
        "fingerprint": request.fingerprint,
        "lock_class": idempotency.LOCK_CLASS,
        "lock_id": idempotency.lock_id(request.user_id, request.key),
        "customer_id": request.customer_id,
        "points": points,
        "reason": reason,
        "now": request.now,
        "created_at": request.created_at,
        "refusal": refusal,
    }


def _decode(row: Any) -> Answer | None:
    status, body, replayed = row
    if status is None:
        return None
    if body is None:  # the key: not answered, as idempotency.claim does not answer it
        if status == 409:
            raise idempotency.KeyInUse(_("idempotency.in_progress"), field="Idempotency-Key")
        raise idempotency.KeyReused(_("idempotency.mismatch"), field="Idempotency-Key")
    return Answer(status, body, bool(replayed))


def write(connection: Connection, request: PointsWrite) -> Answer | None:
    """The write on a connection in autocommit; None when the Python path must do it.

    Raises
    ------
    KeyInUse, KeyReused
        As :func:`patron.crm.services.idempotency.claim`.
    """
    params = _params(request)
    if params is None:
        return None
    return _decode(connection.exec_driver_sql(_CALL, params).one())


async def write_async(connection: AsyncConnection, request: PointsWrite) -> Answer | None:
    """:func:`write` on a psycopg connection in autocommit, for ``async`` endpoints."""
    params = _params(request)
    if params is None:
        return None
    cursor = await connection.execute(_CALL, params)
    return _decode(await cursor.fetchone())
