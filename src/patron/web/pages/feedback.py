"""Feedback pages: the feedback list, and the feedback panels of the 360 and the dashboard.

The feedback list carries the record and import forms; survey invitations and the NPS and
CSAT tables are :mod:`.survey_invitations`.

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
from patron.web.deps import SessionDep, client_ip, csrf_protect
from patron.web.pages.params import one_of, page_number, whole_id
from patron.web.pages.render import Viewer, render
from patron.web.pages.routing import PageRoute, redirect, viewer

__all__ = ["router", "labeller", "row_labels", "customer_panel", "dashboard_panel", "PAGE_SIZE"]

router = APIRouter(route_class=PageRoute)

PAGE_SIZE = 25
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
        customer_id=whole_id(filters.get("customer")),
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
    from patron.crm.services.feedback.text import analyser

    known = getattr(analyser(), "topics", None)
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
        "customer": str(whole_id(customer) or ""),
        "channel": one_of(channel, FEEDBACK_CHANNELS),
        "type": one_of(type, FEEDBACK_KINDS),
        "sentiment": one_of(sentiment, SENTIMENTS),
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
            target = whole_id(customer_id)
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
            {"customer": str(whole_id(customer_id) or "")},
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
