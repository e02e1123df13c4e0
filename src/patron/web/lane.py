"""The busiest API requests, answered in front of FastAPI's routing and dependencies.

A points write, a search or a 360 spends about half a millisecond of a worker's CPU in
the framework around its endpoint (routing through some hundred routes, the middleware,
the dependency graph, the handler's wrapping): on a 360 as much as the endpoint's own
work, in a worker that two cores share with PostgreSQL and the clients. The lane does for
those requests what FastAPI would do before calling the endpoint -- who asks, what they
may do, the query or the body as the endpoint's own types validate it, the requester's
language -- and then calls the endpoint function itself; its refusals go to the app's own
exception handlers. It does so only when it understands the request whole:

- a bearer token verified in the last seconds (as :func:`patron.web.deps.require_sessionless`
  answers from :mod:`~patron.crm.services.token_cache`) whose user holds the permission;
- input the endpoint's types accept, each parameter once, a JSON body of known length.

Anything else goes on to FastAPI as it came (a body the lane read is handed on): a cookie,
a token to verify, input to refuse (FastAPI words the 422), a missing permission (403). So
the endpoints stay the one definition of what is answered; tests hold the lane and FastAPI
to the same answers.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, get_type_hints
from urllib.parse import parse_qsl

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from patron.crm.services import idempotency, permissions
from patron.crm.services.errors import ServiceError
from patron.crm.tables import User
from patron.i18n import use_language
from patron.web import deps
from patron.web.api import customers, points
from patron.web.schemas import MAX_ID

__all__ = ["FastLane"]

#: At most this much body is read for a points write (its JSON is some dozens of bytes);
#: a longer one goes to FastAPI unread.
_MAX_BODY = 4096
_ID = r"([1-9][0-9]{0,18})"

Handler = Callable[..., Awaitable[Response | None]]


class FastLane:
    """ASGI middleware: the lane in front of the app (see the module's docstring).

    ``app.state.fast_lane`` (default on) switches it; ``app.state.lane_answers`` counts
    the requests it answered.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer the request in the lane, or hand it on to the app."""
        if scope["type"] == "http":
            state = scope["app"].state
            if getattr(state, "fast_lane", True):
                for method, pattern, handler in _ROUTES:
                    if scope["method"] != method:
                        continue
                    match = pattern.fullmatch(scope["path"])
                    if match is None:
                        continue
                    if match.lastindex and int(match[1]) > MAX_ID:
                        break
                    request = Request(scope, receive)
                    response = await _answer(request, handler, match.groups())
                    if response is not None:
                        state.lane_answers = getattr(state, "lane_answers", 0) + 1
                        await response(scope, receive, send)
                        return
                    body = getattr(request, "_body", None)
                    if body is not None:
                        receive = _replay(body)
                    break
        await self.app(scope, receive, send)


async def _answer(request: Request, handler: Handler, groups: tuple[str, ...]) -> Response | None:
    user = deps._remembered_bearer(request)
    if user is None:
        return None
    with use_language(deps.request_language(request)):
        try:
            return await handler(request, user, *groups)
        except Exception as exc:
            return await _handled(request, exc)


async def _handled(request: Request, exc: Exception) -> Response:
    """The app's answer to an exception the endpoint raised, as FastAPI would give it."""
    handlers = request.app.exception_handlers
    for kind in type(exc).__mro__:
        handler = handlers.get(kind)
        if handler is not None:
            response = handler(request, exc)
            return await response if inspect.isawaitable(response) else response
    raise exc


async def _call(request: Request, endpoint: Callable[..., Awaitable[Response]], *args: Any) -> Any:
    """``endpoint(request, *args)``, the request marked as its route's, as the router marks it.

    (:func:`patron.web.deps.get_session` reads a GET endpoint's ``autocommit_reads``.)
    """
    request.scope["route"] = SimpleNamespace(endpoint=endpoint)
    return await endpoint(request, *args)


def _replay(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A ``receive`` that hands on the body the lane read, then what the client sends."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


# --- points -------------------------------------------------------------------------------


async def _points_write(request: Request, user: User, customer_id: str, kind: str) -> Any:
    if not permissions.can(user, "points.write"):
        return None
    header = request.headers.get("idempotency-key")
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    length = request.headers.get("content-length", "")
    if header is None or media_type != "application/json" or not length.isdigit():
        return None
    if int(length) > _MAX_BODY:
        return None
    try:
        key = idempotency.parse_key(header)
    except ServiceError:
        return None
    model: type[BaseModel] = points.PointsIn if kind == "earn" else points.RedeemIn
    try:
        # As FastAPI reads a JSON body: parsed, then validated as Python objects.
        body = model.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError):
        return None
    endpoint = points.earn if kind == "earn" else points.redeem
    return await _call(request, endpoint, user, int(customer_id), body, key)


# --- search and the 360 -------------------------------------------------------------------


def _query_parameters(*functions: Callable[..., Any]) -> dict[str, tuple[TypeAdapter, Any]]:
    """Each query parameter of ``functions``: a validator of its declared type, its default.

    Read from the signatures of the endpoint and its dependencies, so the lane and FastAPI
    validate a query alike. The query's parameters are those with a default (the request,
    the user and the dependencies' results have none).
    """
    found = {}
    for function in functions:
        hints = get_type_hints(function, include_extras=True)
        for name, parameter in inspect.signature(function).parameters.items():
            if parameter.default is not inspect.Parameter.empty:
                found[name] = (TypeAdapter(hints[name]), parameter.default)
    return found


#: The search's filters (:func:`~patron.web.api.customers.search_filters`), then its page.
_SEARCH = _query_parameters(customers.search_filters, customers.search)
_FILTERS = tuple(inspect.signature(customers.search_filters).parameters)


async def _search(request: Request, user: User) -> Response | None:
    if not permissions.can(user, "customers.read"):
        return None
    given: dict[str, str] = {}
    query = request.scope["query_string"].decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in _SEARCH:
            if name in given:
                return None  # a repeated parameter: FastAPI's rules decide
            given[name] = value
    values: dict[str, Any] = {}
    try:
        for name, (adapter, default) in _SEARCH.items():
            values[name] = adapter.validate_python(given[name]) if name in given else default
    except ValidationError:
        return None
    filters = await customers.search_filters(**{name: values[name] for name in _FILTERS})
    return await _call(request, customers.search, user, filters, values["limit"], values["offset"])


async def _customer_360(request: Request, user: User, customer_id: str) -> Response | None:
    if not permissions.can(user, "customers.read"):
        return None
    return await _call(request, customers.customer_360, user, int(customer_id))


_ROUTES: tuple[tuple[str, re.Pattern[str], Handler], ...] = (
    ("POST", re.compile(rf"/api/v1/customers/{_ID}/points/(earn|redeem)"), _points_write),
    ("GET", re.compile(r"/api/v1/customers"), _search),
    ("GET", re.compile(rf"/api/v1/customers/{_ID}"), _customer_360),
)
