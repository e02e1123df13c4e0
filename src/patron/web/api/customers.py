"""Customers: search, the 360, create, change, and record a contact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from pydantic import TypeAdapter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from patron.crm.services import customers, permissions, touchpoints, views
from patron.crm.services.customer_search_sql import PLAN_SETTINGS, AsyncSearch
from patron.crm.tables import User
from patron.web.deps import (
    SessionDep,
    autocommit_reads,
    request_session,
    require,
    require_sessionless,
)
from patron.web.pg_pools import open_pool
from patron.web.schemas import (
    MAX_ID,
    Customer360,
    CustomerCreate,
    CustomerListItem,
    CustomerOut,
    CustomerPatch,
    NoNul,
    Page,
    SortKey,
    TouchpointCreate,
    TouchpointOut,
)

__all__ = ["router", "SearchFilters", "search_filters"]

#: Connections (fewest, most) of a worker's pool for searches and the 360: each holds
#: its connection for one statement. Two let a worker's Python overlap the database's
#: work, and keep a slow statement from holding up the rest; more only take turns on the
#: cores, stretching every statement: the search mix under 32 clients on two workers,
#: p95 58-66 ms with four a worker, 36-44 with two, at the same 1,200-1,350 searches/s.
READ_POOL_SIZE = (2, 2)


@asynccontextmanager
async def _read_pool(app: FastAPI) -> AsyncIterator[None]:
    """On PostgreSQL, the pool the search and the 360 await their one statement on.

    Its connections read in autocommit with raw cursors and plan the search as
    :class:`~patron.crm.services.customer_search_sql.AsyncSearch` needs; elsewhere
    ``None``, and both endpoints take the session path in a worker thread.
    """
    from psycopg import AsyncRawCursor

    engine = app.state.engine
    pool = await open_pool(
        engine, READ_POOL_SIZE, settings=PLAN_SETTINGS, cursor_factory=AsyncRawCursor
    )
    app.state.read_pool = pool
    app.state.search = (
        AsyncSearch(pool, engine.url.render_as_string(hide_password=True)) if pool else None
    )
    try:
        yield
    finally:
        app.state.read_pool = app.state.search = None
        if pool is not None:
            await pool.close()


router = APIRouter(tags=["customers"], lifespan=_read_pool)

#: For the reads that answer without the request's session (see :func:`require_sessionless`).
SessionlessReader = Annotated[User, Depends(require_sessionless("customers.read"))]
Writer = Annotated[User, Depends(require("customers.write"))]
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _label(max_length: int = 32) -> Any:
    return Annotated[str | None, Query(max_length=max_length), NoNul]


async def search_filters(
    q: Annotated[
        str | None,
        Query(max_length=128, description="name, phone, email, customer id or external id"),
        NoNul,
    ] = None,
    grade: _label() = None,
    stage: _label() = None,
    risk: _label(8) = None,
    tag: _label(64) = None,
    owner: Annotated[int | None, Query(ge=1, le=MAX_ID, description="owner user id")] = None,
    sort: SortKey = "-predicted_clv",
) -> dict[str, Any]:
    """The search filters, named as :func:`customers.search_customers` takes them.

    ``async``: it only computes, so it runs in the event loop, not in a worker thread.
    """
    return {
        "q": q,
        "grade": grade,
        "stage": stage,
        "risk": risk,
        "tag": tag,
        "owner_id": owner,
        "sort": sort,
    }


SearchFilters = Annotated[dict[str, Any], Depends(search_filters)]

_PAGE = TypeAdapter(Page[CustomerListItem])
_360 = TypeAdapter(Customer360)


def _answer(adapter: TypeAdapter, content: dict[str, Any]) -> Response:
    """``content`` checked against the endpoint's response model and rendered, here.

    What FastAPI would do with the returned dict (validate it, dump it as JSON, render it
    with :class:`~patron.web.app.PatronJSONResponse`), done here: FastAPI validates the
    answer of a plain ``def`` endpoint in a second trip to the thread pool, which under
    load costs more than the validation. pydantic writes the
    JSON itself, NaN as null and Chinese as UTF-8 as
    :class:`~patron.web.app.PatronJSONResponse` does, in a sixth of the time of Python
    objects first and ``json.dumps`` after (0.03 ms against 0.2 for a 360).
    """
    value = adapter.validate_python(content, from_attributes=True)
    return Response(adapter.dump_json(value, by_alias=True), media_type="application/json")


@router.get("/customers", response_model=Page[CustomerListItem])
@autocommit_reads
async def search(
    request: Request,
    user: SessionlessReader,
    filters: SearchFilters,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Response:
    """Customers matching the search and filters, highest predicted CLV first by default."""
    found = None
    search_async = getattr(request.app.state, "search", None)
    if search_async is not None:
        found = await search_async(**filters, limit=limit, offset=offset)
    if found is None:
        async with request_session(request) as session:
            found = await run_in_threadpool(
                customers.search_customers, session, **filters, limit=limit, offset=offset
            )
    rows, total = found
    mask = permissions.masks_personal_data(user)
    items = [views.customer_view(row, mask=mask) for row in rows]
    return _answer(_PAGE, {"items": items, "total": total})


@router.get("/customers/{customer_id}", response_model=Customer360)
@autocommit_reads
async def customer_360(
    request: Request, user: SessionlessReader, customer_id: CustomerId
) -> Response:
    """The customer 360: profile, orders, touchpoints, latest scores and their history.

    A merged customer's id answers with the surviving record.
    """
    pool = getattr(request.app.state, "read_pool", None)
    if pool is not None:
        async with pool.connection() as connection:
            record = await customers.customer_360_async(connection, customer_id)
    else:
        async with request_session(request) as session:
            record = await run_in_threadpool(customers.customer_360, session, customer_id)
    return _answer(_360, views.customer_view(record, mask=permissions.masks_personal_data(user)))


def _profile(session: Session, customer_id: int, user: User) -> dict[str, Any]:
    record = customers.customer_360(session, customer_id, orders_limit=0, touchpoints_limit=0)
    profile = {
        **record["customer"],
        "tags": record.get("tags", []),
        "consents": record.get("consents", {}),
        "external_ids": record.get("external_ids", []),
    }
    return views.customer_view(profile, mask=permissions.masks_personal_data(user))


@router.post("/customers", response_model=CustomerOut, status_code=201)
def create(session: SessionDep, user: Writer, body: CustomerCreate) -> dict[str, Any]:
    """A new customer (409 with the existing id when the phone or email is taken)."""
    values = body.model_dump()
    values["tags"] = tuple(values["tags"])
    customer = customers.create_customer(session, actor=user, **values)
    return _profile(session, customer.id, user)


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update(
    session: SessionDep, user: Writer, customer_id: CustomerId, body: CustomerPatch
) -> dict[str, Any]:
    """Change the fields sent; the change is audited with the values before and after."""
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        changes["name"] = ""
    if "tags" in changes and changes["tags"] is None:
        changes["tags"] = []
    if changes.get("consents", {}) is None:
        del changes["consents"]
    customer = customers.update_customer(session, customer_id, changes, actor=user)
    return _profile(session, customer.id, user)


@router.post("/customers/{customer_id}/touchpoints", response_model=TouchpointOut, status_code=201)
def record_touchpoint(
    session: SessionDep,
    user: Annotated[User, Depends(require("touchpoints.write"))],
    customer_id: CustomerId,
    body: TouchpointCreate,
) -> TouchpointOut:
    """Record a contact (a call, a WeChat message, a visit...) on the customer's timeline."""
    touchpoint = touchpoints.record_touchpoint(
        session,
        customer_id,
        channel=body.channel,
        kind=body.kind,
        note=body.note,
        occurred_at=body.occurred_at,
        actor=user,
    )
    return TouchpointOut.model_validate(touchpoint)
