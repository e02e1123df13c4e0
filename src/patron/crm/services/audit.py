"""The audit trail: one row per change, with who, when, what object, before and after.

Personal data is handled by people who must be able to answer "who changed this, and
what was it before?", so every service that changes something calls :func:`record` in the
same transaction as the change: the change and its audit row land together or not at all.

The values are stored as JSON, so :func:`jsonable` turns what services naturally hold
(exact decimals, dates, sets) into JSON without losing what a reader needs. Secrets never
enter the trail: :func:`record` refuses keys that name a password hash or a token.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from patron.crm.tables import AuditEvent

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import User

__all__ = ["SECRET_KEYS", "record", "jsonable", "list_events"]

#: Keys that must never reach the audit trail: a leaked trail must not hand out logins.
SECRET_KEYS = frozenset(
    {"password", "password_hash", "token", "token_hash", "secret", "csrf_token", "access_token"}
)


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Add one audit event to ``session`` (flushed with the change it describes).

    Parameters
    ----------
    session
        The transaction of the change; the event is committed or rolled back with it.
    actor
        The user who acted, or ``None`` for a command-line run or a system job. Their name
        is copied, so the trail still reads right after the user is renamed or deleted.
    action
        ``"<object>.<verb>"``, e.g. ``"customer.update"``, ``"user.login_failed"``.
    object_type, object_id
        What was changed; the id is stored as text (``None`` when there is none, e.g. a
        failed login for an unknown username).
    before, after
        The values before and after the change (only the fields that changed, as a rule);
        made JSON-safe by :func:`jsonable`.
    ip
        The client's address, when the change came over the network.

    Raises
    ------
    ValueError
        When ``before`` or ``after`` holds a password, a password hash or a token: that is
        a bug in the caller, never something to store.
    """
    for values in (before, after):
        leaked = SECRET_KEYS & set(values or ())
        if leaked:
            raise ValueError(f"audit values must not contain secrets: {sorted(leaked)}")
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.username if actor is not None else "",
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id)[:64],
        before=None if before is None else jsonable(before),
        after=None if after is None else jsonable(after),
        ip=ip[:64] if ip else None,
    )
    session.add(event)
    return event


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` that JSON can store, nested containers included.

    Decimals become strings (``"1234.50"``: a float would lose the exact amount), dates and
    datetimes ISO 8601 strings, sets sorted lists (so two equal sets read the same), tuples
    lists, enums their value, UUIDs strings. A float that is not finite becomes ``None``:
    JSON has no NaN, and PostgreSQL refuses it.

    Raises
    ------
    TypeError
        For a value of any other type, instead of storing a ``repr`` nobody can read back.

    Examples
    --------
    >>> import datetime as dt
    >>> from decimal import Decimal
    >>> jsonable({"amount": Decimal("1.50"), "day": dt.date(2024, 3, 5), "tags": {"b", "a"}})
    {'amount': '1.50', 'day': '2024-03-05', 'tags': ['a', 'b']}
    """
    return {str(key): _value(value) for key, value in values.items()}


def _value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Enum):
        return _value(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return jsonable(value)
    if isinstance(value, set | frozenset):
        items = [_value(v) for v in value]
        try:
            return sorted(items)
        except TypeError:  # mixed types: keep a stable, if arbitrary, order
            return sorted(items, key=repr)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in the audit trail: {value!r}")


def list_events(
    session: Session,
    *,
    limit: int = 50,
    offset: int = 0,
    action: str | None = None,
    object_type: str | None = None,
    object_id: object = None,
    actor_id: int | None = None,
) -> tuple[list[AuditEvent], int]:
    """The events matching every filter given, newest first, and how many match in all."""
    query = select(AuditEvent)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if object_type is not None:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditEvent.object_id == str(object_id))
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    events = list(session.scalars(page.limit(max(limit, 0)).offset(max(offset, 0))))
    return events, int(total or 0)
