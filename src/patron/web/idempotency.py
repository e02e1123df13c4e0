"""Running a write once per ``Idempotency-Key``, for the API and the pages' forms.

:func:`run_once` takes the key (:func:`patron.crm.services.idempotency.claim`), returns
the first answer if there was one, and otherwise runs the write in a savepoint and keeps
its answer in the request's transaction. A refusal of the service (a redemption beyond
the balance, a customer that does not exist) is an answer too, as in Stripe's API: the
transaction is rolled back, the key taken again in a new one, and the refusal remembered
there. A bug (any other exception) remembers nothing, so a retry runs again.

The write runs without a savepoint (two round trips fewer for every write that
succeeds); a refusal pays for a second transaction instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Header, Request

from patron.crm.services import idempotency
from patron.crm.services.errors import ServiceError
from patron.web.errors import error_body

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import User

__all__ = ["IdempotencyKeyDep", "Outcome", "idempotency_key", "run_once", "REPLAYED_HEADER"]

#: Set (``true``) on an answer that repeats the first one, as Stripe does.
REPLAYED_HEADER = "Idempotent-Replayed"


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="A unique value of the client's own (a UUID) for each distinct write; "
            "a retry with the same key returns the first answer.",
        ),
    ] = None,
) -> str:
    """The request's ``Idempotency-Key``; 400 without one.

    ``async`` only so that FastAPI runs it in the event loop: it does no I/O, and a plain
    ``def`` would cost every write a hop to a worker thread and back.
    """
    return idempotency.parse_key(key)


IdempotencyKeyDep = Annotated[str, Depends(idempotency_key)]


@dataclass(frozen=True)
class Outcome:
    """The answer: status, JSON body, and whether it repeats the first one."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False

    @property
    def headers(self) -> dict[str, str]:
        """The replay header, on a repeated answer."""
        return {REPLAYED_HEADER: "true"} if self.replayed else {}


def run_once(
    request: Request,
    session: Session,
    user: User,
    key: str,
    payload: Any,
    write: Callable[[], tuple[int, dict[str, Any]]],
) -> Outcome:
    """Run ``write`` (returning its status and JSON-ready body) once for ``key``.

    ``payload`` is the request's body as JSON values; with the method and the path it is
    the request's fingerprint. After a refusal the session's objects are expired by the
    rollback (``user`` included).
    """
    user_id = user.id
    print_ = idempotency.fingerprint(request.method, request.url.path, payload)
    stored = idempotency.claim(session, user_id=user_id, key=key, fingerprint=print_)
    if stored is not None:
        return Outcome(stored.status_code, stored.response, replayed=True)
    try:
        status_code, body = write()
    except ServiceError as refusal:
        status_code, body = refusal.status, error_body(refusal.code, refusal.message, refusal.field)
        session.rollback()
        stored = idempotency.claim(session, user_id=user_id, key=key, fingerprint=print_)
        if stored is not None:  # another request with the key answered in between
            return Outcome(stored.status_code, stored.response, replayed=True)
    idempotency.remember(
        session,
        user_id=user_id,
        key=key,
        fingerprint=print_,
        status_code=status_code,
        response=body,
    )
    return Outcome(status_code, body)
