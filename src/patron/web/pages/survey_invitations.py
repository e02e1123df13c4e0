"""Survey invitations: the links staff make, and NPS and CSAT by grade, stage and month.

The links are shown once, on the answer to the invite form: the server keeps only their
hash. (The page a customer answers on is :mod:`.survey`.) Analysts see invitations and
answers with names and any phone number or email in a comment masked. Inviting needs
``touchpoints.write`` (staff and up).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response

from patron.crm.services import feedback
from patron.crm.services.errors import Invalid, NotFound, ServiceError
from patron.crm.tables import SURVEY_KINDS
from patron.i18n import _
from patron.web.api.feedback import READ, WRITE
from patron.web.api.surveys import new_links
from patron.web.deps import SessionDep, client_ip, csrf_protect
from patron.web.pages.feedback import PAGE_SIZE, labeller, row_labels
from patron.web.pages.params import one_of, page_number, whole_id
from patron.web.pages.render import Viewer, render
from patron.web.pages.routing import PageRoute, viewer

__all__ = ["router"]

router = APIRouter(route_class=PageRoute)

STATUSES = ("pending", "answered", "expired")


def _surveys_page(
    request: Request,
    session: SessionDep,
    v: Viewer,
    filters: dict[str, str],
    *,
    page: int = 1,
    form: dict[str, str] | None = None,
    error: ServiceError | None = None,
    links: list[dict[str, Any]] | None = None,
    skipped: int = 0,
    status_code: int = 200,
) -> Response:
    from patron.value.config import GRADE_CODES
    from patron.value.lifecycle import STAGES

    filters = {"kind": "", "status": "", "customer": "", **filters}
    items, total = feedback.list_invitations(
        session,
        kind=filters.get("kind") or None,
        status=filters.get("status") or None,
        customer_id=whole_id(filters.get("customer")),
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    metrics = feedback.survey_metrics(session, timezone=v.me.timezone)
    grades = [row["label"] for row in metrics["by_grade"] if row["label"] is not None]
    return render(
        request,
        "feedback/surveys.html.j2",
        v,
        status_code=status_code,
        invitations=[_masked_invitation(i, v.masked) for i in items],
        total=total,
        page=page,
        pages=max(math.ceil(total / PAGE_SIZE), 1),
        filters=filters,
        kinds=SURVEY_KINDS,
        statuses=STATUSES,
        grades=grades or list(GRADE_CODES),
        stages=STAGES,
        metrics=metrics,
        row_label=row_labels(v.lang),
        fl=labeller(v.lang),
        form=form
        or {
            "kind": "nps",
            "customer_id": filters.get("customer", ""),
            "grade": "",
            "stage": "",
            "days": "30",
        },
        error=getattr(error, "message", None),
        error_field=getattr(error, "field", None),
        links=links,
        skipped=skipped,
    )


def _masked_invitation(item: dict[str, Any], mask: bool) -> dict[str, Any]:
    out = feedback.record_view(item, mask=mask)
    if mask and out.get("response"):
        out["response"] = feedback.record_view(out["response"], mask=True)
    return out


@router.get("/surveys", name="surveys")
def surveys(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer(READ))],
    kind: str = "",
    status: str = "",
    customer: str = "",
    page: str = "1",
) -> Response:
    """NPS and CSAT (overall, per grade, stage and month), invitations and the invite form."""
    filters = {
        "kind": one_of(kind, SURVEY_KINDS),
        "status": one_of(status, STATUSES),
        "customer": str(whole_id(customer) or ""),
    }
    return _surveys_page(request, session, v, filters, page=page_number(page))


@router.post("/surveys", name="invite", dependencies=[Depends(csrf_protect)])
def invite(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer(WRITE))],
    kind: str = Form("nps"),
    customer_id: str = Form(""),
    grade: str = Form(""),
    stage: str = Form(""),
    days: str = Form("30"),
) -> Response:
    """Make survey links; they are shown on this answer only (the server keeps no copy)."""
    form = {"kind": kind, "customer_id": customer_id, "grade": grade, "stage": stage}
    form["days"] = days
    try:
        with session.begin_nested():
            if customer_id.strip() and whole_id(customer_id) is None:
                raise Invalid(
                    _("pages.feedback.bad_customer", lang=v.lang, value=customer_id),
                    field="customer_id",
                )
            batch = feedback.create_invitations(
                session,
                kind=kind,
                customer_id=whole_id(customer_id),
                grade=grade.strip() or None,
                stage=stage.strip() or None,
                expires_in_days=whole_id(days) or 0,
                actor=v.user,
                ip=client_ip(request),
            )
    except (Invalid, NotFound) as refusal:
        return _surveys_page(
            request,
            session,
            v,
            {},
            form=form,
            error=refusal,
            status_code=422 if isinstance(refusal, Invalid) else 404,
        )
    links = new_links(request, batch.created)
    return _surveys_page(
        request, session, v, {}, links=links, skipped=batch.skipped, status_code=201
    )
