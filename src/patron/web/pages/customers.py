"""Customers: the searchable list, the 360 page, and the form that records a contact.

Analysts read the same pages with names, phones and emails masked
(:func:`patron.crm.services.views.customer_view`), applied here to every customer dict
before it reaches a template, so no template can forget it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response

from patron.crm.services import customers, tasks, touchpoints, users, views
from patron.crm.services.errors import Invalid
from patron.crm.tables import TOUCHPOINT_CHANNELS, TOUCHPOINT_KINDS
from patron.i18n import _
from patron.value.config import GRADE_CODES
from patron.value.lifecycle import STAGES
from patron.web.deps import SessionDep, csrf_protect
from patron.web.pages.charts import score_history_chart
from patron.web.pages.dashboard import finished_runs
from patron.web.pages.feedback import customer_panel
from patron.web.pages.loyalty import points_panel
from patron.web.pages.params import page_number
from patron.web.pages.render import Viewer, render
from patron.web.pages.routing import PageRoute, redirect, viewer

__all__ = ["router", "PAGE_SIZE", "SORTS", "page_number"]

router = APIRouter(route_class=PageRoute)

PAGE_SIZE = 25
SORTS = (
    "-predicted_clv",
    "predicted_clv",
    "-last_purchase",
    "last_purchase",
    "name",
    "-created_at",
)
RISKS = ("high", "medium", "low")


def _grades(session) -> list[str]:
    """The grades of the latest run, in their configured order (gold, silver, regular)."""
    runs = finished_runs(session, 1)
    configured = (runs[0].params or {}).get("grades") if runs else None
    return list(configured or GRADE_CODES)


def _user_id(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@router.get("/customers", name="customers")
def customer_list(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("customers.read"))],
    q: str = "",
    grade: str = "",
    stage: str = "",
    risk: str = "",
    tag: str = "",
    owner: str = "",
    sort: str = "-predicted_clv",
    page: str = "1",
) -> Response:
    """Search by name, phone, email or id; filter by grade, stage, risk, tag and owner."""
    number = page_number(page)
    sort = sort if sort in SORTS else SORTS[0]
    rows, total = customers.search_customers(
        session,
        q=q.strip() or None,
        grade=grade or None,
        stage=stage or None,
        risk=risk or None,
        tag=tag.strip() or None,
        owner_id=_user_id(owner),
        sort=sort,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    filters = {
        "q": q,
        "grade": grade,
        "stage": stage,
        "risk": risk,
        "tag": tag,
        "owner": owner,
        "sort": sort,
    }
    return render(
        request,
        "customers/list.html.j2",
        v,
        rows=[views.customer_view(row, mask=v.masked) for row in rows],
        total=total,
        page=number,
        pages=max(math.ceil(total / PAGE_SIZE), 1),
        filters=filters,
        owners=users.list_users(session),
        grades=_grades(session),
        stages=STAGES,
        risks=RISKS,
        sorts=SORTS,
    )


def _customer_page(
    request: Request,
    session: SessionDep,
    v: Viewer,
    customer_id: int,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    error_field: str | None = None,
    saved: str = "",
    status_code: int = 200,
) -> Response:
    data = customers.customer_360(session, customer_id)
    if data["customer"]["id"] != customer_id and form is None:
        # A merged customer's old id (from a bookmark, the audit log) shows the survivor.
        return redirect(f"/customers/{data['customer']['id']}")
    data = views.customer_view(data, mask=v.masked)
    staff = {u.id: u for u in users.list_users(session)}
    return render(
        request,
        "customers/detail.html.j2",
        v,
        status_code=status_code,
        c=data,
        customer=data["customer"],
        score=data.get("score"),
        history=data.get("score_history") or [],
        history_chart=score_history_chart(data.get("score_history") or [], v.formats),
        timeline=data.get("timeline") or [],
        staff=staff,
        channels=TOUCHPOINT_CHANNELS,
        kinds=TOUCHPOINT_KINDS,
        form=form or {"channel": "phone", "kind": "call", "note": "", "occurred_at": ""},
        error=error,
        error_field=error_field,
        saved=saved,
        tasks_panel=tasks.customer_panel(session, data["customer"]["id"], mask=v.masked),
        feedback=customer_panel(session, v, data["customer"]["id"]),
        points=points_panel(session, v, data["customer"]["id"]),
    )


@router.get("/customers/{customer_id}", name="customer")
def customer_page(
    request: Request,
    customer_id: int,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("customers.read"))],
    saved: str = "",
) -> Response:
    """The customer 360: profile, value card, timeline, score history, a contact form."""
    return _customer_page(request, session, v, customer_id, saved=saved)


def _local_time(value: str, v: Viewer) -> dt.datetime | None:
    """A ``datetime-local`` field, read in the reader's time zone; empty means now."""
    value = value.strip()
    if not value:
        return None
    for pattern in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            local = dt.datetime.strptime(value, pattern)
        except ValueError:
            continue
        return local.replace(tzinfo=v.formats.zone).astimezone(dt.UTC)
    raise Invalid(
        _("pages.customer.bad_time", lang=v.lang, value=value), field="occurred_at", code="invalid"
    )


@router.post(
    "/customers/{customer_id}/touchpoints",
    name="record_touchpoint",
    dependencies=[Depends(csrf_protect)],
)
def record_touchpoint(
    request: Request,
    customer_id: int,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("touchpoints.write"))],
    channel: str = Form(""),
    kind: str = Form(""),
    note: str = Form(""),
    occurred_at: str = Form(""),
) -> Response:
    """Record a call, a message or a visit; it shows at the top of the timeline."""
    form = {"channel": channel, "kind": kind, "note": note, "occurred_at": occurred_at}
    try:
        with session.begin_nested():
            touchpoints.record_touchpoint(
                session,
                customer_id,
                channel=channel,
                kind=kind,
                note=note.strip(),
                occurred_at=_local_time(occurred_at, v),
                actor=v.user,
            )
    except Invalid as refusal:
        return _customer_page(
            request,
            session,
            v,
            customer_id,
            form=form,
            error=refusal.message,
            error_field=refusal.field,
            status_code=422,
        )
    return redirect(f"/customers/{customer_id}?saved=touchpoint#timeline")
