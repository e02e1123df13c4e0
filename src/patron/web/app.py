"""The FastAPI application: the JSON API, the pages, static files and the health check.

:func:`create_app` refuses an un-migrated database at once, with the command that fixes it,
rather than starting and failing on the first request.
"""

from __future__ import annotations

import gc
import json
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

import patron
from patron.crm.db import make_engine, session_factory
from patron.crm.migrate import check_schema as check_database_schema
from patron.i18n import _
from patron.web.errors import install_error_handlers

__all__ = ["create_app", "PatronJSONResponse", "DEFAULT_THREADS"]

#: Worker threads per process for the endpoints that talk to the database (FastAPI runs a
#: plain ``def`` endpoint in a thread). AnyIO's default, 40, lets forty requests take turns
#: holding the GIL, and each turn ends in a wait for it: with 32 clients on two cores the
#: 360's p95 was 153 ms at 620 requests/s. With 8 the others queue in the event loop, in
#: order, and the same load ran at 1,010 requests/s with p95 68 ms (4: 1,150/s, 52 ms; 8
#: leaves room for a slow export or a scoring run started from a page).
#: ``PATRON_THREADS`` or ``patron serve --threads`` sets it.
DEFAULT_THREADS = 8


class PatronJSONResponse(JSONResponse):
    """JSON as UTF-8 text (Chinese stays readable); a NaN or infinity becomes null.

    JSON has no NaN; a score that could not be computed is "no value", not a 500.
    """

    def render(self, content: Any) -> bytes:
        """The body; only a body with NaN or infinity pays for a second pass."""
        try:
            return _dumps(content)
        except ValueError:
            return _dumps(_finite(content))


def _dumps(content: Any) -> bytes:
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
        "utf-8"
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class RequestLanguage:
    """Every message made while answering a request is in the requester's language.

    Services translate with :func:`patron.i18n._` and know nothing of requests; this sets
    the language of the request's context (cookie ``lang``, else Accept-Language), which
    the endpoint's thread inherits.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request

        from patron.i18n import use_language
        from patron.web.deps import request_language

        with use_language(request_language(Request(scope))):
            await self.app(scope, receive, send)


def create_app(
    database_url: str | None = None,
    *,
    check_schema: bool = True,
    engine: Engine | None = None,
    threads: int | None = None,
) -> FastAPI:
    """The patron web application on ``database_url`` (see :func:`patron.crm.db.database_url`).

    Parameters
    ----------
    database_url
        The operational database; ``PATRON_DATABASE_URL`` or ``./patron.db`` by default.
    check_schema
        Raise :class:`patron.crm.migrate.SchemaError` (whose message says to run
        ``patron db upgrade``) unless the database is at the code's schema revision.
    engine
        An engine to use instead of making one from ``database_url`` (the caller keeps
        ownership: it is not disposed when the app shuts down).
    threads
        Threads for the database work (:data:`DEFAULT_THREADS`); ``PATRON_THREADS`` by
        default.
    """
    threads = threads or int(os.environ.get("PATRON_THREADS") or DEFAULT_THREADS)
    owned = engine is None
    engine = engine if engine is not None else make_engine(database_url)
    if check_schema:
        try:
            check_database_schema(engine)
        except BaseException:
            if owned:
                engine.dispose()
            raise

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from anyio.to_thread import current_default_thread_limiter

        current_default_thread_limiter().total_tokens = threads
        # ~180,000 objects live from start-up to shutdown (modules, the ORM's mappers,
        # the routes); each full collection walked them all, 0.2 s in which the worker
        # answered no one. Frozen, they are never looked at again.
        gc.collect()
        gc.freeze()
        yield
        if owned:
            engine.dispose()

    app = FastAPI(
        title=_("api.title"),
        description=_("api.description"),
        version=patron.__version__,
        openapi_url="/openapi.json",
        # Swagger UI and ReDoc load their scripts from a CDN; patron serves no CDN assets.
        docs_url=None,
        redoc_url=None,
        default_response_class=PatronJSONResponse,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.sessionmaker = session_factory(engine)
    install_error_handlers(app)
    app.add_middleware(RequestLanguage)
    # Outermost of ours: the busiest API requests, answered before routing.
    from patron.web.lane import FastLane

    app.add_middleware(FastLane)

    @app.get("/healthz", tags=["health"])
    def healthz() -> JSONResponse:
        """``{"status": "ok", "database": "ok"}`` once the database answers a query."""
        try:
            with engine.connect() as connection:
                # A deferred BEGIN on SQLite: a health check must not queue for the writer.
                connection.execution_options(sqlite_begin="DEFERRED")
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return PatronJSONResponse(
                {"status": "error", "database": _("api.database_unavailable")}, status_code=503
            )
        return PatronJSONResponse({"status": "ok", "database": "ok"})

    # After the health check: a route is found by trying each in turn, and the pages'
    # routers hold dozens (a health check behind them took 0.2 ms to route).
    from patron.web import pages
    from patron.web.api import router as api_router

    app.state.page_error_renderer = getattr(pages, "render_error", None)
    app.include_router(api_router)
    app.include_router(pages.router)
    static = resources.files("patron.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    return app
