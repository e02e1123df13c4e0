"""Feedback records: list with filters, record one, import a CSV export.

Staff (and managers, admins) record and import; analysts read, with the customer's name
and any phone number or email in the text masked. The permissions are those of contacts:
feedback is what a customer said in a contact (``touchpoints.write`` to record,
``customers.read`` to read).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from patron.crm.services import feedback, permissions
from patron.crm.tables import User
from patron.web.deps import SessionDep, client_ip, require
from patron.web.schemas import MAX_ID, IsoTime, Page, Text

__all__ = [
    "router",
    "READ",
    "WRITE",
    "FeedbackCreate",
    "FeedbackOut",
    "FeedbackImportOut",
    "ListFilters",
    "as_utc",
    "upload_name",
]

router = APIRouter(tags=["feedback"])

#: The permissions that read and write feedback (see the module's docstring).
READ, WRITE = "customers.read", "touchpoints.write"
Reader = Annotated[User, Depends(require(READ))]
Writer = Annotated[User, Depends(require(WRITE))]

FeedbackChannel = Literal["phone", "wechat", "email", "store", "web"]
FeedbackType = Literal["complaint", "suggestion", "praise", "question"]
Sentiment = Literal["positive", "neutral", "negative"]
Id = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]
#: The largest CSV accepted (a year of a call centre's log fits in a few megabytes).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class FeedbackCreate(BaseModel):
    """A piece of feedback; ``occurred_at`` defaults to now, ``language`` is detected."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: Id
    channel: FeedbackChannel
    type: FeedbackType
    text: Text(4000, min_length=1)
    occurred_at: IsoTime | None = None
    language: Literal["en", "zh-CN"] | None = None


class FeedbackOut(BaseModel):
    """A feedback record with its analysis (times in UTC); ``task_id``: the task it opened."""

    model_config = ConfigDict(extra="allow")

    id: int
    customer_id: int
    customer_name: str = ""
    channel: FeedbackChannel
    type: FeedbackType
    text: str
    language: str
    sentiment: Sentiment
    sentiment_score: float
    topics: list[str] = []
    occurred_at: dt.datetime
    source: Literal["staff", "import"]
    staff_id: int | None = None
    staff_name: str | None = None
    created_at: dt.datetime
    task_id: int | None = None


class RejectedRow(BaseModel):
    """A CSV row that was not imported, and why."""

    line: int
    column: str | None = None
    reason: str
    value: str | None = None


class FeedbackImportOut(BaseModel):
    """What an import did; rejected rows are listed, never dropped silently."""

    filename: str
    rows: int
    imported: int
    duplicates: int
    rejected: list[RejectedRow]


def list_filters(
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    channel: FeedbackChannel | None = None,
    type: FeedbackType | None = None,  # noqa: A002 (the API's name for it)
    sentiment: Sentiment | None = None,
    topic: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z][a-z0-9_]*$")] = None,
    since: Annotated[dt.datetime | None, Query(description="occurred at or after")] = None,
    until: Annotated[dt.datetime | None, Query(description="occurred before")] = None,
) -> dict[str, Any]:
    """The list's filters, named as :func:`feedback.list_feedback` takes them."""
    return {
        "customer_id": customer_id,
        "channel": channel,
        "kind": type,
        "sentiment": sentiment,
        "topic": topic,
        "since": as_utc(since),
        "until": as_utc(until),
    }


def upload_name(filename: str | None) -> str:
    """The upload's own file name without folders or control characters (for messages)."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    return name.strip()[:100] or "feedback.csv"


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A query's time as an aware one: a bare date or naive time is read as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


ListFilters = Annotated[dict[str, Any], Depends(list_filters)]


@router.get("/feedback", response_model=Page[FeedbackOut])
def list_feedback(
    session: SessionDep,
    user: Reader,
    filters: ListFilters,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Feedback, newest first, filtered by customer, channel, type, sentiment, topic, time."""
    items, total = feedback.list_feedback(session, **filters, limit=limit, offset=offset)
    mask = permissions.masks_personal_data(user)
    return {"items": [feedback.record_view(i, mask=mask) for i in items], "total": total}


@router.post("/feedback", response_model=FeedbackOut, status_code=201)
def create_feedback(
    request: Request, session: SessionDep, user: Writer, body: FeedbackCreate
) -> dict[str, Any]:
    """Record feedback; it is analysed on save, and a negative complaint opens a task."""
    record = feedback.record_feedback(
        session,
        body.customer_id,
        channel=body.channel,
        kind=body.type,
        text=body.text,
        occurred_at=body.occurred_at,
        language=body.language,
        actor=user,
        ip=client_ip(request),
    )
    return feedback.get_feedback(session, record.id)


@router.post("/feedback/import", response_model=FeedbackImportOut)
def import_feedback(
    session: SessionDep,
    user: Writer,
    file: Annotated[UploadFile, File(description="CSV: customer, channel, type, text[, time]")],
) -> dict[str, Any]:
    """Import a feedback CSV (UTF-8 or GB18030, English or Chinese headers and values).

    Usable rows land in one transaction with the request; the others are listed with line,
    column and reason. Rows imported before are counted as duplicates and skipped.
    """
    from patron.crm.services.errors import Invalid
    from patron.i18n import _

    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise Invalid(
            _("feedback_records.import_too_large", max=MAX_UPLOAD_BYTES // 2**20), field="file"
        )
    result = feedback.import_feedback(
        session, data, filename=upload_name(file.filename), actor=user
    )
    mask = permissions.masks_personal_data(user)
    rejected = result.rejected
    if mask:  # a rejected value may be a phone or an email
        rejected = [{**r, "value": None} for r in rejected]
    return {
        "filename": result.filename,
        "rows": result.rows,
        "imported": result.imported,
        "duplicates": result.duplicates,
        "rejected": rejected,
    }


@router.get("/feedback/{feedback_id}", response_model=FeedbackOut)
def get_feedback(
    session: SessionDep, user: Reader, feedback_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> dict[str, Any]:
    """One feedback record."""
    item = feedback.get_feedback(session, feedback_id)
    return feedback.record_view(item, mask=permissions.masks_personal_data(user))
