"""The server-rendered pages: one router, one module per group of pages.

``patron.web.app.create_app`` includes :data:`router` and draws refusals on pages with
:func:`render_error`. Pages use the same services as the JSON API, in the reader's
language (``lang`` cookie, else the browser's) and time zone.
"""

from fastapi import APIRouter

from patron.web.pages import (
    admin,
    auth,
    customers,
    dashboard,
    feedback,
    imports,
    loyalty,
    scoring,
    survey,
    survey_invitations,
    tasks,
)
from patron.web.pages.routing import render_error

__all__ = ["router", "render_error"]

router = APIRouter(include_in_schema=False)
for _module in (
    auth,
    dashboard,
    customers,
    imports,
    scoring,
    admin,
    tasks,
    feedback,
    survey_invitations,
    survey,
    loyalty,
):
    router.include_router(_module.router)
