"""The staff inbox of follow-up tasks, and the forms that close, reassign and open them.

The inbox shows mine, overdue, unassigned or all, by kind; a task is closed with a note,
reassigned by managers, opened by hand from the customer 360.

Forms post here and come back to the page they were sent from (``next``, checked by
:func:`~patron.web.pages.routing.safe_next`), with a message saying what happened. A refused
close (no note) draws the inbox again with the note field marked, and the text kept.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response

from patron.crm.services import tasks, users
from patron.crm.services.errors import Invalid
from patron.crm.tables import TASK_KINDS
from patron.i18n import _
from patron.web.deps import SessionDep, csrf_protect
from patron.web.pages.customers import page_number
from patron.web.pages.params import whole_id
from patron.web.pages.render import Viewer, render
from patron.web.pages.routing import PageRoute, redirect, safe_next, viewer

__all__ = ["router", "VIEWS", "PAGE_SIZE"]

router = APIRouter(route_class=PageRoute)

PAGE_SIZE = 25
#: The inbox's tabs: whose tasks, or which.
VIEWS = ("mine", "overdue", "unassigned", "all")
STATUSES = ("open", "closed")


def _filters(v: Viewer, view: str, kind: str, status: str, owner: str, customer: str) -> dict:
    default = "mine" if v.can("tasks.write") else "all"
    return {
        "view": view if view in VIEWS else default,
        "kind": kind if kind in TASK_KINDS else "",
        "status": status if status in STATUSES else "open",
        "owner": str(whole_id(owner) or ""),
        "customer": str(whole_id(customer) or ""),
    }


def _inbox(
    request: Request,
    session: SessionDep,
    v: Viewer,
    filters: dict[str, str],
    number: int,
    *,
    saved: str = "",
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    view = filters["view"]
    query: dict[str, Any] = {
        "kind": filters["kind"] or None,
        "status": filters["status"],
        "customer_id": whole_id(filters["customer"]),
        "owner_id": whole_id(filters["owner"]),
    }
    if view == "mine":
        query["owner_id"] = v.user.id
    elif view == "overdue":
        query["overdue"] = True
        query["owner_id"] = query["owner_id"] or (None if v.can("tasks.assign") else v.user.id)
    elif view == "unassigned":
        query["unassigned"], query["owner_id"] = True, None
    rows, total = tasks.list_tasks(
        session, **query, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    counts = {
        "mine": tasks.list_tasks(session, owner_id=v.user.id, limit=0)[1],
        "overdue": tasks.list_tasks(
            session,
            overdue=True,
            owner_id=None if v.can("tasks.assign") else v.user.id,
            limit=0,
        )[1],
        "unassigned": tasks.list_tasks(session, unassigned=True, limit=0)[1],
    }
    staff = [u for u in users.list_users(session) if u.active and u.role != "analyst"]
    return render(
        request,
        "tasks/inbox.html.j2",
        v,
        status_code=status_code,
        rows=[tasks.task_view(row, mask=v.masked) for row in rows],
        total=total,
        page=number,
        pages=max(math.ceil(total / PAGE_SIZE), 1),
        filters=filters,
        views=VIEWS,
        kinds=TASK_KINDS,
        statuses=STATUSES,
        counts=counts,
        staff=staff,
        saved=saved,
        error=error,
        here="/tasks" + _query_string({**filters, "page": number if number > 1 else ""}),
    )


@router.get("/tasks", name="tasks")
def inbox(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("tasks.read"))],
    view: str = "",
    kind: str = "",
    status: str = "open",
    owner: str = "",
    customer: str = "",
    page: str = "1",
    saved: str = "",
) -> Response:
    """The inbox: open tasks soonest due first, overdue ones flagged."""
    filters = _filters(v, view, kind, status, owner, customer)
    return _inbox(request, session, v, filters, page_number(page), saved=saved)


def _query_string(params: dict[str, Any]) -> str:
    kept = [(k, value) for k, value in params.items() if value not in (None, "")]
    return "?" + urlencode(kept) if kept else ""


def _back(next_url: str, saved: str, anchor: str = "") -> Response:
    """See the page the form came from again, saying what was ``saved``.

    >>> _back("/tasks?view=overdue&saved=closed", "reassigned").headers["location"]
    '/tasks?view=overdue&saved=reassigned'
    """
    parts = urlsplit(safe_next(next_url, "/tasks"))
    params = [(k, val) for k, val in parse_qsl(parts.query) if k != "saved"]
    query = urlencode([*params, ("saved", saved)])
    return redirect(f"{parts.path}?{query}{anchor}")


def _reshow(v: Viewer, next_url: str) -> tuple[dict[str, str], int]:
    """The inbox's filters and page from the URL the form was sent from."""
    params = dict(parse_qsl(urlsplit(next_url).query))
    filters = _filters(
        v,
        params.get("view", ""),
        params.get("kind", ""),
        params.get("status", "open"),
        params.get("owner", ""),
        params.get("customer", ""),
    )
    return filters, page_number(params.get("page"))


@router.post("/tasks/{task_id}/close", name="close_task", dependencies=[Depends(csrf_protect)])
def close_task(
    request: Request,
    task_id: int,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("tasks.write"))],
    resolution: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/tasks",  # noqa: A002
) -> Response:
    """Close a task with what was done; without a note the inbox says so."""
    try:
        with session.begin_nested():
            tasks.close_task(session, task_id, resolution=resolution, actor=v.user)
    except Invalid as refusal:
        if not safe_next(next, "/tasks").startswith("/tasks"):
            raise
        filters, number = _reshow(v, next)
        error = {"task": task_id, "message": refusal.message, "resolution": resolution}
        return _inbox(request, session, v, filters, number, error=error, status_code=422)
    return _back(next, "closed")


@router.post(
    "/tasks/{task_id}/reassign", name="reassign_task", dependencies=[Depends(csrf_protect)]
)
def reassign_task(
    request: Request,
    task_id: int,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("tasks.assign"))],
    owner_id: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/tasks",  # noqa: A002
) -> Response:
    """Give a task to another member of staff."""
    owner = whole_id(owner_id)
    if owner is None:
        raise Invalid(tasks_message(v, "bad_owner", id=owner_id), field="owner_id")
    tasks.reassign_task(session, task_id, owner_id=owner, actor=v.user)
    return _back(next, "reassigned")


@router.post("/tasks", name="open_task", dependencies=[Depends(csrf_protect)])
def open_task(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("tasks.write"))],
    customer_id: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    detail: Annotated[str, Form()] = "",
    due_in_hours: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/tasks",  # noqa: A002
) -> Response:
    """Open a task by hand (the 360's form); it goes to the customer's owner, else to me."""
    customer = whole_id(customer_id)
    if customer is None:
        raise Invalid(tasks_message(v, "bad_customer", value=customer_id), field="customer_id")
    due_at = None
    if due_in_hours.strip():
        hours = whole_id(due_in_hours.strip())
        if hours is None or hours > 24 * 365:
            raise Invalid(tasks_message(v, "bad_hours", value=due_in_hours), field="due_at")
        due_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    tasks.open_task(
        session,
        customer_id=customer,
        kind="manual",
        title=title,
        detail=detail,
        due_at=due_at,
        actor=v.user,
    )
    return _back(next, "task_opened", "#tasks")


def tasks_message(v: Viewer, key: str, **values: Any) -> str:
    """A ``tasks.*`` message in the reader's language."""
    return _(f"tasks.{key}", lang=v.lang, **values)
