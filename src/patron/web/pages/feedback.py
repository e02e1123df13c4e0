"""Feedback pages: feedback, surveys, and the panels of the 360 and the dashboard.

The feedback list carries the record and import forms; the survey page the invitations,
their links (shown once), and NPS and CSAT by grade, stage and month.

Analysts read everything with names and any phone number or email in the texts masked
(:func:`patron.crm.services.feedback.record_view`), applied here before a template sees
a record. Recording, importing and inviting need ``touchpoints.write`` (staff and up).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile

from patron.crm.services import feedback
from patron.crm.services.errors import Invalid, NotFound, ServiceError
from patron.crm.tables import FEEDBACK_CHANNELS, FEEDBACK_KINDS, SURVEY_KINDS
from patron.crm.tables.feedback import SENTIMENTS
from patron.errors import InputError
from patron.i18n import _, catalogue
from patron.web.api.feedback import READ, WRITE, upload_name
from patron.web.api.surveys import survey_url
from patron.web.deps import SessionDep, client_ip, csrf_protect
from patron.web.pages.render import Viewer, render
from patron.web.pages.routing import PageRoute, redirect, viewer

__all__ = ["router", "labeller", "row_labels", "customer_panel", "dashboard_panel", "PAGE_SIZE"]

router = APIRouter(route_class=PageRoute)

PAGE_SIZE = 25
STATUSES = ("pending", "answered", "expired")
_MAX_UPLOAD = 20 * 1024 * 1024


def labeller(lang: str) -> Callable[[str, str | None], str]:
    """``label(kind, code)`` for feedback codes, in ``lang``.

    Kinds: ``type``, ``survey``, ``status`` (this part's catalogue), ``sentiment`` and
    ``topic`` (the text analyser's, :mod:`patron.feedback`); a code without a name (a
    topic from a business's own dictionary) is shown as written.
    """
    texts, fallback = catalogue(lang), catalogue("en")
    sections = {"sentiment": "feedback.sentiment", "topic": "feedback.topic"}

    def label(kind: str, code: str | None) -> str:
        if code is None or code == "":
            return "—"
        key = f"{sections.get(kind, 'pages.feedback.' + kind)}.{code}"
        return texts.get(key) or fallback.get(key) or str(code)

    return label


def page_number(value: str | None) -> int:
    """The page asked for; anything that is not a positive whole number is page 1."""
    try:
        return max(int(value or 1), 1)
    except ValueError:
        return 1


def row_labels(lang: str) -> dict[str, Callable[[dict[str, Any]], str]]:
    """How a metrics row is named: its grade, stage (``None``: not scored) or month."""
    from patron.web.pages.render import label

    def named(kind: str) -> Callable[[dict[str, Any]], str]:
        def name(row: dict[str, Any]) -> str:
            if row["label"] is None:
                return _("pages.surveys.unscored", lang=lang)
            return label(kind, row["label"], lang)

        return name

    return {"grade": named("grade"), "stage": named("stage"), "month": lambda row: row["month"]}


def _int(value: str | None) -> int | None:
    try:
        number = int(str(value or "").strip())
    except ValueError:
        return None
    return number if 1 <= number <= 2**63 - 1 else None


def _choice(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else ""


# -- feedback list, record form, CSV import --------------------------------------------------


def _feedback_page(
    request: Request,
    session: SessionDep,
    v: Viewer,
    filters: dict[str, str],
    *,
    page: int = 1,
    form: dict[str, str] | None = None,
    error: ServiceError | None = None,
    imported: feedback.ImportResult | None = None,
    import_error: str | None = None,
    saved: str = "",
    status_code: int = 200,
) -> Response:
    filters = {"customer": "", "channel": "", "type": "", "sentiment": "", "topic": "", **filters}
    rows, total = feedback.list_feedback(
        session,
        customer_id=_int(filters.get("customer")),
        channel=filters.get("channel") or None,
        kind=filters.get("type") or None,
        sentiment=filters.get("sentiment") or None,
        topic=filters.get("topic") or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    return render(
        request,
        "feedback/list.html.j2",
        v,
        status_code=status_code,
        rows=[feedback.record_view(r, mask=v.masked) for r in rows],
        total=total,
        page=page,
        pages=max(math.ceil(total / PAGE_SIZE), 1),
        filters=filters,
        channels=FEEDBACK_CHANNELS,
        types=FEEDBACK_KINDS,
        sentiments=SENTIMENTS,
        topics=_topics(),
        fl=labeller(v.lang),
        form=form
        or {
            "customer_id": filters.get("customer", ""),
            "channel": "phone",
            "type": "complaint",
            "text": "",
            "occurred_at": "",
        },
        error=error.message if error else None,
        error_field=error.field if error else None,
        imported=imported,
        import_error=import_error,
        rejected=[
            {**r, "value": None} if v.masked else r for r in (imported.rejected if imported else [])
        ],
        saved=saved,
    )


def _topics() -> list[str]:
    """The topics the analyser in use knows, else those the catalogue names."""
    from patron.feedback.text import get_analyser

    known = getattr(get_analyser(), "topics", None)
    if known:
        return list(known)
    prefix = "feedback.topic."
    return [key[len(prefix) :] for key in catalogue("en") if key.startswith(prefix)]


@router.get("/feedback", name="feedback")
def feedback_list(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer(READ))],
    customer: str = "",
    channel: str = "",
    type: str = "",  # noqa: A002 (the field's name in forms and the API)
    sentiment: str = "",
    topic: str = "",
    page: str = "1",
    saved: str = "",
) -> Response:
    """Feedback, newest first, filtered by customer, channel, type, sentiment and topic."""
    filters = {
        "customer": str(_int(customer) or ""),
        "channel": _choice(channel, FEEDBACK_CHANNELS),
        "type": _choice(type, FEEDBACK_KINDS),
        "sentiment": _choice(sentiment, SENTIMENTS),
        "topic": topic if topic in _topics() else "",
    }
    return _feedback_page(request, session, v, filters, page=page_number(page), saved=saved)


@router.post("/feedback", name="record_feedback", dependencies=[Depends(csrf_protect)])
def feedback_record(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer(WRITE))],
    customer_id: str = Form(""),
    channel: str = Form(""),
    type: str = Form(""),  # noqa: A002
    text: str = Form(""),
    occurred_at: str = Form(""),
) -> Response:
    """Record feedback typed by staff; back to the list (or to the 360 it came from)."""
    form = {
        "customer_id": customer_id,
        "channel": channel,
        "type": type,
        "text": text,
        "occurred_at": occurred_at,
    }
    try:
        with session.begin_nested():
            target = _int(customer_id)
            if target is None:
                raise Invalid(
                    _("pages.feedback.bad_customer", lang=v.lang, value=customer_id),
                    field="customer_id",
                )
            record = feedback.record_feedback(
                session,
                target,
                channel=channel,
                kind=type,
                text=text,
                occurred_at=_local_time(occurred_at, v),
                actor=v.user,
                ip=client_ip(request),
            )
    except (Invalid, NotFound) as refusal:
        return _feedback_page(
            request,
            session,
            v,
            {"customer": str(_int(customer_id) or "")},
            form=form,
            error=refusal,
            status_code=422 if isinstance(refusal, Invalid) else 404,
        )
    return redirect(f"/feedback?customer={record.customer_id}&saved={record.id}")


def _local_time(value: str, v: Viewer) -> dt.datetime | None:
    """A ``datetime-local`` field in the reader's time zone; empty means now."""
    value = value.strip()
    if not value:
        return None
    for pattern in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            local = dt.datetime.strptime(value, pattern)
        except ValueError:
            continue
        return local.replace(tzinfo=v.formats.zone).astimezone(dt.UTC)
    raise Invalid(_("feedback_records.bad_time", lang=v.lang, value=value), field="occurred_at")


@router.post("/feedback/import", name="import_feedback", dependencies=[Depends(csrf_protect)])
def feedback_import(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer(WRITE))],
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Import a feedback CSV; the page then lists what landed and every rejected row."""
    try:
        if file is None or not file.filename:
            raise Invalid(_("pages.feedback.no_file", lang=v.lang), field="file")
        data = file.file.read(_MAX_UPLOAD + 1)
        if len(data) > _MAX_UPLOAD:
            raise Invalid(
                _("feedback_records.import_too_large", lang=v.lang, max=_MAX_UPLOAD // 2**20),
                field="file",
            )
        with session.begin_nested():
            result = feedback.import_feedback(
                session, data, filename=upload_name(file.filename), actor=v.user
            )
    except (Invalid, InputError) as refusal:
        return _feedback_page(request, session, v, {}, import_error=str(refusal), status_code=422)
    return _feedback_page(request, session, v, {}, imported=result)


# -- survey invitations and metrics -------------------------------------------------------


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
        customer_id=_int(filters.get("customer")),
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
        "kind": _choice(kind, SURVEY_KINDS),
        "status": _choice(status, STATUSES),
        "customer": str(_int(customer) or ""),
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
            if customer_id.strip() and _int(customer_id) is None:
                raise Invalid(
                    _("pages.feedback.bad_customer", lang=v.lang, value=customer_id),
                    field="customer_id",
                )
            batch = feedback.create_invitations(
                session,
                kind=kind,
                customer_id=_int(customer_id),
                grade=grade.strip() or None,
                stage=stage.strip() or None,
                expires_in_days=_int(days) or 0,
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
    links = [
        {
            "id": new.invitation.id,
            "customer_id": new.invitation.customer_id,
            "kind": new.invitation.kind,
            "expires_at": new.invitation.expires_at,
            "url": survey_url(request, new.token),
        }
        for new in batch.created
    ]
    return _surveys_page(
        request, session, v, {}, links=links, skipped=batch.skipped, status_code=201
    )


# -- panels included in other pages -------------------------------------------------------


def customer_panel(session: SessionDep, v: Viewer, customer_id: int) -> dict[str, Any]:
    """What ``customers/_feedback.html.j2`` shows on the 360 (masked for analysts)."""
    data = feedback.customer_feedback(session, customer_id)
    data["records"] = [feedback.record_view(r, mask=v.masked) for r in data["records"]]
    data["responses"] = [feedback.record_view(r, mask=v.masked) for r in data["responses"]]
    data["label"] = labeller(v.lang)
    data["kinds"] = SURVEY_KINDS
    return data


def dashboard_panel(session: SessionDep, v: Viewer, months: int = 6) -> dict[str, Any]:
    """What ``dashboard/_nps.html.j2`` shows: NPS and CSAT overall and in recent months."""
    metrics = feedback.survey_metrics(session, timezone=v.me.timezone)
    metrics["recent"] = metrics["by_month"][-months:]
    metrics["row_label"] = row_labels(v.lang)
    return metrics
