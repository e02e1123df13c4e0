"""Loyalty points of a customer: the balance with lots and history; earn, redeem, adjust.

Every write takes an ``Idempotency-Key`` header (:mod:`patron.web.idempotency`): without
one it is refused with 400, a retry with the same key gets the first answer again (marked
``Idempotent-Replayed: true``), the same key on a different request is 422, and while the
first request runs 409. A redemption beyond the balance is 409 ``insufficient_points``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from patron.crm.services import loyalty
from patron.crm.services.loyalty.program import MAX_POINTS
from patron.crm.tables import User
from patron.web.app import PatronJSONResponse
from patron.web.deps import SessionDep, require
from patron.web.idempotency import IdempotencyKeyDep, run_once
from patron.web.schemas import MAX_ID, ErrorOut, Text

__all__ = ["router", "PointsIn", "RedeemIn", "AdjustIn", "PointsOut", "PostingOut"]

router = APIRouter(tags=["points"])

Reader = Annotated[User, Depends(require("customers.read"))]
Writer = Annotated[User, Depends(require("points.write"))]
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
def earn(
    request: Request,
    session: SessionDep,
    user: Writer,
    customer_id: CustomerId,
    body: PointsIn,
    key: IdempotencyKeyDep,
) -> PatronJSONResponse:
    """Give points (they form a lot that expires as the programme says)."""

    def write() -> tuple[int, dict[str, Any]]:
        entry = loyalty.earn(
            session, customer_id, body.points, reason=body.reason, actor=user, source="api"
        )
        return _posting(entry)

    return _answer(run_once(request, session, user, key, body.model_dump(), write))


@router.post(
    "/customers/{customer_id}/points/redeem",
    status_code=201,
    response_model=PostingOut,
    responses=WRITE_ERRORS,
)
def redeem(
    request: Request,
    session: SessionDep,
    user: Writer,
    customer_id: CustomerId,
    body: RedeemIn,
    key: IdempotencyKeyDep,
) -> PatronJSONResponse:
    """Spend points, first-to-expire first; 409 beyond the balance."""

    def write() -> tuple[int, dict[str, Any]]:
        entry = loyalty.redeem(
            session,
            customer_id,
            body.points,
            reason=body.reason,
            reward_id=body.reward_id,
            actor=user,
            source="api",
        )
        return _posting(entry)

    return _answer(run_once(request, session, user, key, body.model_dump(), write))


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
