"""Logging in and out, and choosing the language of the pages.

The login form is posted before any session exists, so it cannot carry a session's CSRF
token; it uses a double-submit cookie instead: the form page sets a random
``patron_login_csrf`` cookie and puts the same value in the form, and the post is refused
unless both agree.  A page on another site can make a browser post the form, but it can
neither read nor set that cookie, so it cannot log a victim into the attacker's account.

A failed login is answered with the form again, not with an exception: the attempt
(recorded by :func:`patron.crm.services.auth.authenticate` for rate limiting and the
audit trail) must be committed, which only happens when the request ends normally.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Depends, Form, Request, Response

from patron.crm.services import auth
from patron.i18n import LANGUAGES, _
from patron.web.deps import (
    LANG_COOKIE,
    SESSION_COOKIE,
    OptionalUser,
    SessionDep,
    clear_session_cookie,
    client_ip,
    csrf_protect,
    request_language,
    set_session_cookie,
)
from patron.web.pages.render import render
from patron.web.pages.routing import PageRoute, redirect, safe_next

__all__ = ["router", "LOGIN_CSRF_COOKIE"]

router = APIRouter(route_class=PageRoute)

LOGIN_CSRF_COOKIE = "patron_login_csrf"
_ONE_YEAR = 365 * 24 * 3600


def _login_form(
    request: Request,
    lang: str,
    *,
    next_url: str,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The login form with a fresh double-submit token in the form and in a cookie."""
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html.j2",
        None,
        lang=lang,
        status_code=status_code,
        headers=headers,
        csrf_token=token,
        next_url=next_url,
        username=username,
        error=error,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login", name="login_page")
def login_page(
    request: Request,
    user: OptionalUser,
    next: str | None = None,  # noqa: A002 - the query parameter's name
) -> Response:
    """The login form; a reader who is already logged in goes straight on."""
    lang = request_language(request)
    target = safe_next(next)
    if user is not None:
        return redirect(target)
    return _login_form(request, lang, next_url=target)


@router.post("/login", name="login")
def login(
    request: Request,
    session: SessionDep,
    username: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form("/"),  # noqa: A002 - the form field's name
) -> Response:
    """Check the password, start a server-side session and go where the reader was going."""
    lang = request_language(request)
    target = safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        error = _("pages.login.expired", lang=lang)
        return _login_form(
            request, lang, next_url=target, username=username, error=error, status_code=403
        )
    try:
        user = auth.authenticate(session, username.strip(), password, ip=client_ip(request))
    except auth.LoginRateLimited as refusal:
        return _login_form(
            request,
            lang,
            next_url=target,
            username=username,
            error=refusal.message,
            status_code=429,
            headers={"Retry-After": str(int(refusal.retry_after))},
        )
    except auth.LoginFailed as refusal:
        return _login_form(
            request,
            lang,
            next_url=target,
            username=username,
            error=refusal.message,
            status_code=401,
        )
    secret, _web_session = auth.start_session(
        session, user, ip=client_ip(request), user_agent=request.headers.get("user-agent")
    )
    response = redirect(target)
    set_session_cookie(response, secret, request)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    if user.language and LANG_COOKIE not in request.cookies:
        _set_lang_cookie(response, request, user.language)
    return response


@router.post("/logout", name="logout", dependencies=[Depends(csrf_protect)])
def logout(request: Request, session: SessionDep) -> Response:
    """End the server-side session: the cookie, even if copied, no longer logs anyone in."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        auth.end_session(session, secret)
    response = redirect("/login")
    clear_session_cookie(response)
    return response


@router.get("/language/{lang}", name="language")
def choose_language(request: Request, lang: str, next: str | None = None) -> Response:  # noqa: A002
    """Remember the reader's language in a cookie and show the same page again.

    A plain link rather than a form: it only changes how this browser's pages are
    written, so another site making a browser follow it gains nothing.
    """
    response = redirect(safe_next(next))
    if lang in LANGUAGES:
        _set_lang_cookie(response, request, lang)
    return response


def _set_lang_cookie(response: Response, request: Request, lang: str) -> None:
    response.set_cookie(
        LANG_COOKIE,
        "zh-CN" if lang.lower().startswith("zh") else "en",
        max_age=_ONE_YEAR,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
