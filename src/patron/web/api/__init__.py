"""The JSON API under ``/api/v1``: one module per resource, each a thin layer over a service.

A route checks the permission (:func:`patron.web.deps.require`), calls one service with the
request's session, masks personal data for analysts, and shapes the answer with a model from
:mod:`patron.web.schemas`. The transaction is the request's (:func:`patron.web.deps.get_session`).
"""

from __future__ import annotations

from fastapi import APIRouter

from patron.web.api import (
    auth,
    customers,
    exports,
    feedback,
    imports,
    merges,
    points,
    scoring,
    surveys,
    tasks,
)
from patron.web.schemas import ErrorOut

__all__ = ["router"]

#: Error answers every route may give, for the OpenAPI document.
ERRORS = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (401, "Not signed in"),
        (403, "Not allowed for this role"),
        (404, "Not found"),
        (409, "Conflicts with stored data"),
        (422, "Invalid input"),
    )
}

router = APIRouter(prefix="/api/v1", responses=ERRORS)
# The busiest first: FastAPI tries an included router's routes in order, at a few
# microseconds each, and more than once per request when routers nest (points last,
# behind ~60 routes, cost 0.15 ms a request to find).
for _module in (
    customers,
    points,
    auth,
    imports,
    scoring,
    merges,
    exports,
    tasks,
    feedback,
    surveys,
):
    router.include_router(_module.router)
