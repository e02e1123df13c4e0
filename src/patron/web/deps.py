"""Named dependencies of the API and the pages: the session, who is asking, what they may do.

The request owns the transaction: :func:`get_session` commits when the endpoint returns and
rolls back when it raises, before the response is sent, so a client never sees a success
that was not stored. Services only flush; an error whose ``keeps_changes`` is true (a failed
login, which the rate limit must count) is committed before it is answered.

Who is asking comes from ``Authorization: Bearer pat_...`` (API clients) or from the
``patron_session`` cookie (the pages and their scripts). A cookie is sent by the browser
on its own, so every unsafe request authenticated by it must also carry the session's CSRF
token (:func:`csrf_protect`); a bearer token is never sent implicitly and needs none.

FastAPI runs a plain ``def`` dependency in a worker thread: a hop from the event loop and
back, and under load a wait for the GIL among the other request threads. So the
dependencies that only compute (who the user is once known, what they may do) are
``async def`` and run in the event loop, and the session and the bearer check go to a
thread only when they talk to the database. The busiest endpoints go further
(:func:`require_sessionless`): a bearer token verified in the last seconds needs no
session at all, and they open one (:data:`request_session`) only on a path that needs it.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyCookie, HTTPBearer
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from patron.crm.services import auth, permissions, token_cache
from patron.crm.services.errors import Forbidden
from patron.crm.tables import User, WebSession
from patron.i18n import _, get_language
from patron.web.errors import NotAuthenticated

__all__ = [
    "SESSION_COOKIE",
    "LANG_COOKIE",
    "Auth",
    "SessionDep",
    "CurrentUser",
    "OptionalUser",
    "get_session",
    "get_auth",
    "current_user",
    "optional_user",
    "require",
    "require_sessionless",
    "request_session",
    "csrf_protect",
    "writes",
    "autocommit_reads",
    "set_session_cookie",
    "clear_session_cookie",
    "request_language",
    "client_ip",
]

SESSION_COOKIE = "patron_session"
LANG_COOKIE = "lang"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

F = TypeVar("F", bound=Callable[..., Any])


def writes(endpoint: F) -> F:
    """Mark a GET endpoint that writes (an audited export), so it begins as a writer."""
    endpoint._patron_writes = True  # type: ignore[attr-defined]
    return endpoint


def autocommit_reads(endpoint: F) -> F:
    """Mark a GET endpoint whose reads need no transaction around them.

    On PostgreSQL its session then runs in autocommit: each statement reads its own
    snapshot, and the request saves the ``BEGIN`` and ``COMMIT`` round trips. For
    endpoints that only read, in one statement or in statements that need not agree to
    the row (a search's count and its page); the bearer check's bookkeeping (a token's
    last use, once a minute) is then stored at once.
    """
    endpoint._patron_autocommit = True  # type: ignore[attr-defined]
    return endpoint


def _endpoint(request: Request) -> Any:
    return getattr(request.scope.get("route"), "endpoint", None)


def _reads_only(request: Request) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    return not getattr(_endpoint(request), "_patron_writes", False)


def _autocommit_engine(request: Request) -> Engine:
    state = request.app.state
    engine = getattr(state, "autocommit_engine", None)
    if engine is None:  # shares the engine's pool; made once per app
        engine = state.autocommit_engine = state.engine.execution_options(
            isolation_level="AUTOCOMMIT"
        )
    return engine


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session and one transaction for the request.

    On SQLite a read-only GET begins with a deferred ``BEGIN`` so that reading does not
    take the database's single write lock; everything else begins as the writer
    (``BEGIN IMMEDIATE``, see :mod:`patron.crm.db`) so it waits for its turn instead of
    failing half-way. On PostgreSQL an endpoint marked :func:`autocommit_reads` reads
    without a transaction.

    Making a session costs no I/O, so it is made in the event loop; the commit or rollback
    at the end goes to a worker thread.
    """
    state = request.app.state
    dialect = state.engine.dialect.name
    if dialect == "postgresql" and request.method in ("GET", "HEAD"):
        if getattr(_endpoint(request), "_patron_autocommit", False):
            session = state.sessionmaker(bind=_autocommit_engine(request))
        else:
            session = state.sessionmaker()
    else:
        session = state.sessionmaker()
    try:
        if dialect == "sqlite" and _reads_only(request):
            await run_in_threadpool(
                session.connection, execution_options={"sqlite_begin": "DEFERRED"}
            )
        try:
            yield session
        except BaseException as exc:
            # A refusal that must be remembered (a failed login counts toward the rate
            # limit) says so with ``keeps_changes``; anything else leaves no trace.
            end = session.commit if getattr(exc, "keeps_changes", False) else session.rollback
            if not _nothing_to_end(session):
                await run_in_threadpool(_end, session, end)
            raise
        if _nothing_to_end(session):
            session.close()  # no I/O: no trip to a worker thread
        else:
            await run_in_threadpool(_end, session, session.commit)
    finally:
        session.close()  # nothing left to do unless the request was cancelled half-way


_CONNECTED = "patron_connected"


@event.listens_for(Session, "after_begin")
def _connected(session: Session, _transaction: Any, _connection: Any) -> None:
    session.info[_CONNECTED] = True


def _nothing_to_end(session: Session) -> bool:
    """Whether ending ``session`` needs no I/O, so no trip to a worker thread.

    So when it holds nothing to write and either never began a transaction on the
    database (the endpoint answered from a pool of its own, the user came from
    :mod:`~patron.crm.services.token_cache`) or read in autocommit (each statement was
    its own transaction): ending it returns a connection to the pool at most.
    """
    if session.new or session.dirty or session.deleted:
        return False
    if not session.info.get(_CONNECTED):
        return True
    bind = session.get_bind()
    return bind.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def _end(session: Session, end: Callable[[], None]) -> None:
    try:
        end()
    finally:
        session.close()


#: The request's session; ends (commit or rollback) before the response is sent.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

# Declared for OpenAPI (the "Authorize" schemes); the header is parsed below so that a
# malformed one is refused instead of silently ignored.
_bearer_scheme = HTTPBearer(auto_error=False, scheme_name="bearer")
_cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session")


@dataclass(frozen=True)
class Auth:
    """How the request proved who it is."""

    user: User
    via: str  # "bearer" | "cookie"
    web_session: WebSession | None = None


async def get_auth(
    request: Request,
    session: SessionDep,
    _bearer: Annotated[Any, Depends(_bearer_scheme)] = None,
    _cookie: Annotated[Any, Depends(_cookie_scheme)] = None,
) -> Auth | None:
    """The bearer token's user, else the session cookie's, else None.

    A request that sends an ``Authorization`` header is judged by it alone: a wrong token
    is a 401, not a silent fall back to the cookie. A token verified in the last seconds
    (:mod:`patron.crm.services.token_cache`) is answered here without I/O; anything that
    needs the database goes to a worker thread.
    """
    lang = request_language(request)
    header = request.headers.get("authorization")
    if header is not None:
        secret = _bearer_secret(header)
        if secret is None:
            raise NotAuthenticated(_("api.bad_authorization", lang=lang), code="bad_authorization")
        user = None
        if secret.startswith(auth.TOKEN_PREFIX):
            user = token_cache.lookup(session, auth.digest(secret))
        if user is None:
            user = await run_in_threadpool(auth.token_user, session, secret)
        if user is None:
            raise NotAuthenticated(_("api.bad_token", lang=lang), code="bad_token")
        request.state.user = user
        return Auth(user, "bearer")
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        found = await run_in_threadpool(auth.session_user, session, secret)
        if found is not None:
            request.state.user = found[0]
            return Auth(found[0], "cookie", found[1])
    return None


def _bearer_secret(header: str) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header; ``None`` for any other."""
    scheme, _sep, secret = header.strip().partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


AuthDep = Annotated[Auth | None, Depends(get_auth)]


async def optional_user(auth_: AuthDep) -> User | None:
    """The signed-in user, or None (pages redirect to the login page)."""
    return auth_.user if auth_ else None


async def current_user(request: Request, auth_: AuthDep) -> User:
    """The signed-in user; 401 (with ``WWW-Authenticate: Bearer``) without one."""
    if auth_ is None:
        raise NotAuthenticated(_("api.not_authenticated", lang=request_language(request)))
    return auth_.user


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]


async def csrf_protect(request: Request, auth_: AuthDep) -> None:
    """Refuse (403) a cookie-authenticated unsafe request without the session's CSRF token.

    The token comes in the ``X-CSRF-Token`` header (scripts) or the ``csrf_token`` form
    field (forms). Bearer-token and anonymous requests pass: a browser never attaches
    either on its own.
    """
    await _check_csrf(request, auth_)


async def _check_csrf(request: Request, auth_: Auth | None) -> None:
    if request.method not in UNSAFE_METHODS or auth_ is None or auth_.via != "cookie":
        return
    token = request.headers.get("x-csrf-token")
    content_type = request.headers.get("content-type", "")
    if token is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        token = (await request.form()).get("csrf_token")
    expected = auth_.web_session.csrf_token if auth_.web_session else ""
    if not isinstance(token, str) or not expected or not hmac.compare_digest(token, expected):
        raise Forbidden(_("api.csrf_failed", lang=request_language(request)), code="csrf_failed")


def require(permission: str) -> Callable[..., User]:
    """A dependency: the current user, who must hold ``permission`` (403 otherwise).

    Unsafe requests are CSRF-checked on the way (see :func:`csrf_protect`). One
    dependency rather than a chain of :func:`current_user` and :func:`csrf_protect`:
    FastAPI's bookkeeping per dependency costs more than what each of them does.
    """

    async def dependency(request: Request, auth_: AuthDep) -> User:
        return await _authorise(request, auth_, permission)

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency


#: :func:`get_session` as an ``async with`` block, for an endpoint that needs the
#: request's session only on some of its paths (the same transaction rules).
request_session = asynccontextmanager(get_session)


def require_sessionless(permission: str) -> Callable[..., User]:
    """Like :func:`require`, for endpoints that mostly answer without the request's session.

    A bearer token verified in the last seconds (:mod:`~patron.crm.services.token_cache`)
    is answered with no session at all: FastAPI's session dependency, the token check
    and the permission cost 0.8 ms of a search's 2.1 ms of server CPU, more than the
    search's own work in the server. Anything else (a cookie, a token to verify) opens
    the request's session for the check alone (and the CSRF check of an unsafe request
    made with a cookie). The user belongs to no session: read it, and hand
    ``session.merge(user, load=False)`` to a service that writes with it.
    """

    async def dependency(request: Request) -> User:
        user = _remembered_bearer(request)
        if user is None:
            async with request_session(request) as session:
                return await _authorise(request, await get_auth(request, session), permission)
        _check_permission(request, user, permission)
        return user

    dependency.__name__ = f"require_sessionless_{permission.replace('.', '_')}"
    return dependency


def _remembered_bearer(request: Request) -> User | None:
    header = request.headers.get("authorization")
    secret = _bearer_secret(header) if header is not None else None
    if secret is None or not secret.startswith(auth.TOKEN_PREFIX):
        return None
    user = token_cache.lookup_detached(auth.digest(secret))
    if user is not None:
        request.state.user = user
    return user


async def _authorise(request: Request, auth_: Auth | None, permission: str) -> User:
    """The signed-in user (401 without one), CSRF-checked, holding ``permission`` (403)."""
    user = await current_user(request, auth_)
    await _check_csrf(request, auth_)
    _check_permission(request, user, permission)
    return user


def _check_permission(request: Request, user: User, permission: str) -> None:
    try:
        permissions.require(user, permission)
    except Forbidden as exc:
        lang = request_language(request)
        message = _("api.forbidden", lang=lang, role=user.role, permission=permission)
        raise Forbidden(message, field=exc.field, code=exc.code) from exc


def set_session_cookie(
    response: Response, secret: str, request: Request, *, max_age: int | None = None
) -> None:
    """Give the browser its session id: HttpOnly, SameSite=Lax, Secure over HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response) -> None:
    """Make the browser forget its session id (the server ends the session itself)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def request_language(request: Request) -> str:
    """``"zh-CN"`` or ``"en"``: the ``lang`` cookie, else Accept-Language, else the server's."""
    cached = getattr(request.state, "language", None)
    if cached:
        return cached
    lang = _language_of(request.cookies.get(LANG_COOKIE, "")) or _accept_language(
        request.headers.get("accept-language", "")
    )
    lang = lang or get_language()
    request.state.language = lang
    return lang


def _language_of(tag: str) -> str | None:
    tag = tag.strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return None


def _accept_language(header: str) -> str | None:
    """The most preferred language we have, by the header's q-values (RFC 9110).

    >>> _accept_language("en-US;q=0.5, zh-CN"), _accept_language("fr, en;q=0.1, zh;q=0")
    ('zh-CN', 'en')
    >>> _accept_language("fr") is None
    True
    """
    choices: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _sep, params = item.partition(";")
        lang = _language_of(tag)
        if lang is None:
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if q > 0:
            choices.append((-q, position, lang))
    return min(choices)[2] if choices else None


def client_ip(request: Request) -> str:
    """The client's address as the server sees it.

    Behind a reverse proxy, run uvicorn with ``--proxy-headers --forwarded-allow-ips`` so
    this is the real client; trusting ``X-Forwarded-For`` here would let anyone dodge the
    login rate limit.
    """
    return request.client.host if request.client else ""
