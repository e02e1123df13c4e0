"""What makes a route a page: who may see it, and how its refusals look in a browser.

The JSON API answers a missing login with 401 and a refusal with ``{code, message}``;
a person in a browser needs the login form instead (and to come back where they were
going afterwards), and a refusal as a page with the header still there.

- Every page route uses :class:`PageRoute`, which sends a reader without a login to the
  login form.
- Every page asks for its reader through :func:`viewer`, naming the permission it needs
  (checked in one place, :mod:`patron.crm.services.permissions`).
- Refusals (403, 404, 409, 422) propagate as exceptions, so the request's transaction is
  rolled back, and reach the app's error handlers, which draw them with
  :func:`render_error` for every path outside ``/api/``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from patron.i18n import _
from patron.web.deps import Auth, get_auth, request_language
from patron.web.pages.render import Viewer, render

__all__ = [
    "PageRoute",
    "LoginRequired",
    "viewer",
    "safe_next",
    "redirect",
    "login_redirect",
    "render_error",
]


class LoginRequired(Exception):
    """The page needs a logged-in reader; :class:`PageRoute` sends them to the login form."""


class PageRoute(APIRoute):
    """A route that sends a reader without a login to the login form, and back afterwards."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, with :class:`LoginRequired` answered by the login form."""
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return login_redirect(request)

        return page_handler


def login_redirect(request: Request) -> Response:
    """To the login form, which comes back here (a form post comes back to its page)."""
    if request.method in ("GET", "HEAD"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        here = safe_next(request.headers.get("referer"))
    return redirect("/login?next=" + quote(here, safe="/"))


_TITLES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "bad_request",
    409: "conflict",
    413: "too_large",
    422: "bad_request",
    429: "too_many",
}


def render_error(request: Request, status: int, body: dict[str, Any]) -> Response | None:
    """A refusal as a page in the reader's language (the app's ``page_error_renderer``).

    A page without a login (a session that expired while a form was open) goes to the
    login form rather than showing "not authenticated".
    """
    if status == 401:
        return login_redirect(request)
    v: Viewer | None = getattr(request.state, "viewer", None)
    lang = v.lang if v is not None else request_language(request)
    key = _TITLES.get(status, "server" if status >= 500 else "bad_request")
    return render(
        request,
        "error.html.j2",
        v,
        lang=lang,
        status_code=status,
        status=status,
        title=_(f"pages.error.{key}_title", lang=lang),
        message=body.get("message") or _(f"pages.error.{key}", lang=lang),
    )


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirect).

    A referer is a full URL: only its path and query are kept.

    >>> safe_next("/customers?q=li"), safe_next("//evil.example/"), safe_next("https://x/y?z=1")
    ('/customers?q=li', '/', '/y?z=1')
    >>> safe_next("javascript:alert(1)"), safe_next(None, "/login")
    ('/', '/login')
    """
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme and parts.scheme not in ("http", "https"):
        return default
    path = parts.path
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path + (f"?{parts.query}" if parts.query else "")


def redirect(target: str) -> RedirectResponse:
    """See other: after a form post, or to the login form."""
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


def viewer(permission: str | None = None) -> Callable[..., Viewer]:
    """A dependency giving the page's :class:`Viewer`, who must hold ``permission``.

    Without a login the reader is sent to the login form (:class:`LoginRequired`); with
    one but without the permission they get the refusal page (403).
    """

    def dependency(request: Request, auth: Annotated[Auth | None, Depends(get_auth)]) -> Viewer:
        if auth is None:
            raise LoginRequired
        token = auth.web_session.csrf_token if auth.web_session is not None else ""
        v = Viewer(auth.user, request_language(request), token)
        request.state.viewer = v
        if permission is not None:
            from patron.crm.services import permissions

            permissions.require(v.user, permission)
        return v

    dependency.__name__ = f"page_viewer_{(permission or 'any').replace('.', '_')}"
    return dependency
