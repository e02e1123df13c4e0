"""Loyalty points of a customer: the balance with lots and history; earn, redeem, adjust.

Every write takes an ``Idempotency-Key`` header (:mod:`patron.web.idempotency`): without
one it is refused with 400, a retry with the same key gets the first answer again (marked
``Idempotent-Replayed: true``), the same key on a different request is 422, and while the
first request runs 409. A redemption beyond the balance is 409 ``insufficient_points``.

On PostgreSQL an earn or a redemption is first offered to the one-round-trip path
(:mod:`patron.crm.services.loyalty.fast_path`), awaited on a small pool of its own in the
event loop; the cases it leaves, and SQLite, take the Python path in a worker thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from patron.crm.services import idempotency, loyalty
from patron.crm.services.loyalty import fast_path
from patron.crm.services.loyalty.program import MAX_POINTS
from patron.crm.tables import User
from patron.crm.tables.base import utcnow
from patron.web.app import PatronJSONResponse
from patron.web.deps import SessionDep, request_session, require, require_sessionless
from patron.web.idempotency import REPLAYED_HEADER, IdempotencyKeyDep, run_once
from patron.web.pg_pools import open_pool
from patron.web.schemas import MAX_ID, ErrorOut, Text

__all__ = ["router", "PointsIn", "RedeemIn", "AdjustIn", "PointsOut", "PostingOut"]

#: Connections (fewest, most) of a worker's pool for the one-round-trip writes. Few: a
#: write holds its connection for one call, and on bench/loyalty.py's two cores 4 per
#: worker beat 8 and 16 (more backends only take turns on the same CPUs). Not fewer, as
#: the search's pool has: a write also holds its connection while its commit reaches the
#: disk, and two a worker measured 1,031-1,061 writes/s against 1,187-1,444 with four,
#: run after run.
FAST_POOL_SIZE = (2, 4)


@asynccontextmanager
async def _fast_pool(app: FastAPI) -> AsyncIterator[None]:
    """On PostgreSQL, a pool of connections in autocommit for :func:`_fast_write`.

    The writes then wait for the database in the event loop, without a worker thread and
    without a transaction's ``BEGIN`` and ``COMMIT``. None when the database is another
    or lacks the function (migration 0007): every write takes the Python path.
    """
    pool = await open_pool(app.state.engine, FAST_POOL_SIZE, ready=fast_path.INSTALLED)
    app.state.points_pool = pool
    try:
        yield
    finally:
        app.state.points_pool = None
        if pool is not None:
            await pool.close()


router = APIRouter(tags=["points"], lifespan=_fast_pool)

Reader = Annotated[User, Depends(require("customers.read"))]
#: Earns and redemptions: on the one-round-trip path they need no session at all.
SessionlessWriter = Annotated[User, Depends(require_sessionless("points.write"))]
Adjuster = Annotated[User, Depends(require("points.adjust"))]
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]
Positive = Annotated[StrictInt, Field(ge=1, le=MAX_POINTS)]

WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "No Idempotency-Key header"},
    409: {"model": ErrorOut, "description": "Beyond the balance, or the same key still running"},
    422: {"model": ErrorOut, "description": "Invalid input, or the key used for another request"},
}


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PointsIn(_Input):
    """Points to earn: a whole number, and why."""

    points: Positive
    reason: Text(500, min_length=1)


class RedeemIn(_Input):
    """Points to redeem, or a reward (whose price is then the points)."""

    points: Positive | None = None
    reason: Text(500) = ""
    reward_id: Annotated[StrictInt, Field(ge=1, le=MAX_ID)] | None = None


class AdjustIn(_Input):
    """A correction: positive adds points, negative takes them away down to zero."""

    points: Annotated[StrictInt, Field(ge=-MAX_POINTS, le=MAX_POINTS)]
    reason: Text(500, min_length=1)


class EntryOut(BaseModel):
    id: int
    kind: str
    points: int
    balance_after: int
    shortfall: int
    reason: str
    source_type: str
    source_id: str | None
    order_id: int | None
    reward_id: int | None
    actor: str | None
    created_at: dt.datetime


class LotOut(BaseModel):
    id: int
    entry_id: int
    points: int
    remaining: int
    earned_at: dt.datetime
    expires_at: dt.datetime | None


class TierOut(BaseModel):
    code: str
    name: str
    rank: int
    threshold: Decimal
    multiplier: Decimal
    benefits: list[str]


class PointsOut(BaseModel):
    """The balance, the lots with points left (first to expire first), the history."""

    customer_id: int
    balance: int
    debt: int
    tier: TierOut | None
    lots: list[LotOut]
    history: list[EntryOut]
    history_total: int


class PostingOut(BaseModel):
    """The entry a write made, and the balance after it."""

    balance: int
    entry: EntryOut


def _posting(entry: Any, status_code: int = 201) -> tuple[int, dict[str, Any]]:
    body = PostingOut(balance=entry.balance_after, entry=EntryOut(**loyalty.entry_dict(entry)))
    return status_code, body.model_dump(mode="json")


def _answer(outcome: Any) -> PatronJSONResponse:
    return PatronJSONResponse(
        outcome.body, status_code=outcome.status_code, headers=outcome.headers
    )


_TIME = TypeAdapter(dt.datetime)


async def _fast_write(
    request: Request, user: User, key: str, kind: str, customer_id: int, body: BaseModel
) -> PatronJSONResponse | None:
    """The write in one round trip (:mod:`patron.crm.services.loyalty.fast_path`), or None.

    None (nothing written) when there is no pool or the case is not the common one: the
    endpoint then takes the Python path.
    """
    pool = getattr(request.app.state, "points_pool", None)
    if pool is None:
        return None
    payload = body.model_dump()
    now = utcnow()
    write = fast_path.PointsWrite(
        kind=kind,
        user_id=user.id,
        actor_name=user.username,
        key=key,
        fingerprint=idempotency.fingerprint(request.method, request.url.path, payload),
        customer_id=customer_id,
        points=payload["points"],
        reason=payload["reason"],
        now=now,
        created_at=_TIME.dump_python(now, mode="json"),
    )
    async with pool.connection() as connection:
        answer = await fast_path.write_async(connection, write)
    if answer is None:
        return None
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else None
    return PatronJSONResponse(answer.body, status_code=answer.status_code, headers=headers)


async def _python_path(
    request: Request,
    user: User,
    key: str,
    body: BaseModel,
    write: Callable[[Session, User], Any],
) -> PatronJSONResponse:
    """An earn or redemption through the Python ledger, once per idempotency key.

    In the request's session, opened here (the one-round-trip path needs none), with
    ``user`` merged into it; ``write`` makes the entry.
    """
    async with request_session(request) as session:
        actor = session.merge(user, load=False)
        done = await run_in_threadpool(
            run_once,
            request,
            session,
            actor,
            key,
            body.model_dump(),
            lambda: _posting(write(session, actor)),
        )
    return _answer(done)


@router.get("/customers/{customer_id}/points", response_model=PointsOut)
def points(
    session: SessionDep,
    _user: Reader,
    customer_id: CustomerId,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """``{"balance", "lots", "history"}``: history newest first, ``limit`` entries."""
    return loyalty.points_view(session, customer_id, history_limit=limit, history_offset=offset)


@router.post(
    "/customers/{customer_id}/points/earn",
    status_code=201,
    response_model=PostingOut,
    responses=WRITE_ERRORS,
)
async def earn(
    request: Request,
    user: SessionlessWriter,
    customer_id: CustomerId,
    body: PointsIn,
    key: IdempotencyKeyDep,
) -> PatronJSONResponse:
    """Give points (they form a lot that expires as the programme says)."""
    fast = await _fast_write(request, user, key, "earn", customer_id, body)
    if fast is not None:
        return fast

    def write(session: Session, actor: User) -> Any:
        return loyalty.earn(
            session, customer_id, body.points, reason=body.reason, actor=actor, source="api"
        )

    return await _python_path(request, user, key, body, write)


@router.post(
    "/customers/{customer_id}/points/redeem",
    status_code=201,
    response_model=PostingOut,
    responses=WRITE_ERRORS,
)
async def redeem(
    request: Request,
    user: SessionlessWriter,
    customer_id: CustomerId,
    body: RedeemIn,
    key: IdempotencyKeyDep,
) -> PatronJSONResponse:
    """Spend points, first-to-expire first; 409 beyond the balance."""
    if body.reward_id is None and body.points is not None:
        fast = await _fast_write(request, user, key, "redeem", customer_id, body)
        if fast is not None:
            return fast

    def write(session: Session, actor: User) -> Any:
        return loyalty.redeem(
            session,
            customer_id,
            body.points,
            reason=body.reason,
            reward_id=body.reward_id,
            actor=actor,
            source="api",
        )

    return await _python_path(request, user, key, body, write)


@router.post(
    "/customers/{customer_id}/points/adjust",
    status_code=201,
    response_model=PostingOut,
    responses=WRITE_ERRORS,
)
def adjust(
    request: Request,
    session: SessionDep,
    user: Adjuster,
    customer_id: CustomerId,
    body: AdjustIn,
    key: IdempotencyKeyDep,
) -> PatronJSONResponse:
    """A manager's correction (audited); negative down to a balance of zero, 409 below."""

    def write() -> tuple[int, dict[str, Any]]:
        entry = loyalty.adjust(
            session, customer_id, body.points, reason=body.reason, actor=user, source="api"
        )
        return _posting(entry)

    return _answer(run_once(request, session, user, key, body.model_dump(), write))
