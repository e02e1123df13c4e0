"""Surveys: invite a customer or a segment (the links are answered once), list, metrics.

The link of each new invitation is in the answer to the request that made it, and only
there: the server keeps the token's digest, not the token. Staff (and managers, admins)
invite; analysts read invitations, answers and metrics, with names and comments masked.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from patron.crm.services import feedback, permissions
from patron.crm.tables import User
from patron.web.api.feedback import READ, WRITE, as_utc
from patron.web.deps import SessionDep, client_ip, require
from patron.web.schemas import MAX_ID, NoNul, Page

__all__ = [
    "router",
    "PUBLIC_URL_ENV",
    "survey_url",
    "new_links",
    "InvitationCreate",
    "InvitationOut",
    "NewInvitationOut",
    "InvitationBatchOut",
    "ResponseOut",
]

router = APIRouter(tags=["surveys"])

Reader = Annotated[User, Depends(require(READ))]
Writer = Annotated[User, Depends(require(WRITE))]
SurveyKind = Literal["nps", "csat"]
Label = Annotated[str, Field(strict=True, min_length=1, max_length=32), NoNul]

#: The address customers reach the server at, when it differs from the one staff use.
PUBLIC_URL_ENV = "PATRON_PUBLIC_URL"


def survey_url(request: Request, token: str) -> str:
    """The public link of a survey token: ``PATRON_PUBLIC_URL`` or this server, ``/s/<token>``."""
    base = os.environ.get(PUBLIC_URL_ENV, "").strip() or str(request.base_url)
    return f"{base.rstrip('/')}/s/{token}"


def new_links(request: Request, created: list[Any]) -> list[dict[str, Any]]:
    """The invitations just made, each with its link.

    Shown once -- the server keeps no copy of a token -- on the API's answer and on the
    surveys page alike.
    """
    return [
        {
            "id": new.invitation.id,
            "customer_id": new.invitation.customer_id,
            "kind": new.invitation.kind,
            "expires_at": new.invitation.expires_at,
            "url": survey_url(request, new.token),
        }
        for new in created
    ]


class InvitationCreate(BaseModel):
    """Invite one customer (``customer_id``) or a segment (``grade`` and/or ``stage``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: SurveyKind
    customer_id: Annotated[int, Field(strict=True, ge=1, le=MAX_ID)] | None = None
    grade: Label | None = None
    stage: Label | None = None
    expires_in_days: Annotated[int, Field(strict=True, ge=1, le=365)] = 30


class ResponseOut(BaseModel):
    """An answer to a survey (comment masked for analysts)."""

    model_config = ConfigDict(extra="allow")

    id: int
    invitation_id: int
    customer_id: int
    kind: SurveyKind
    score: int
    comment: str = ""
    language: str
    sentiment: str | None = None
    sentiment_score: float | None = None
    topics: list[str] = []
    answered_at: dt.datetime


class InvitationOut(BaseModel):
    """An invitation and, once answered, the answer; its link is never shown again."""

    model_config = ConfigDict(extra="allow")

    id: int
    customer_id: int
    customer_name: str = ""
    kind: SurveyKind
    status: Literal["pending", "answered", "expired"]
    created_at: dt.datetime
    expires_at: dt.datetime
    answered_at: dt.datetime | None = None
    created_by_id: int | None = None
    created_by: str | None = None
    response: ResponseOut | None = None


class NewInvitationOut(BaseModel):
    """A new invitation with its link: send it to the customer; it is not shown again."""

    id: int
    customer_id: int
    kind: SurveyKind
    expires_at: dt.datetime
    url: str


class InvitationBatchOut(BaseModel):
    """The invitations made; ``skipped``: customers who already hold an unanswered link."""

    created: int
    skipped: int
    invitations: list[NewInvitationOut]


@router.post("/surveys", response_model=InvitationBatchOut, status_code=201)
def create_invitations(
    request: Request, session: SessionDep, user: Writer, body: InvitationCreate
) -> dict[str, Any]:
    """Make single-use survey links for a customer or a segment of the latest scoring run."""
    batch = feedback.create_invitations(
        session,
        kind=body.kind,
        customer_id=body.customer_id,
        grade=body.grade,
        stage=body.stage,
        expires_in_days=body.expires_in_days,
        actor=user,
        ip=client_ip(request),
    )
    return {
        "created": len(batch.created),
        "skipped": batch.skipped,
        "invitations": new_links(request, batch.created),
    }


def _view(item: dict[str, Any], mask: bool) -> dict[str, Any]:
    out = feedback.record_view(item, mask=mask)
    if mask and out.get("response"):
        out["response"] = feedback.record_view(out["response"], mask=True)
    return out


@router.get("/surveys", response_model=Page[InvitationOut])
def list_invitations(
    session: SessionDep,
    user: Reader,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    kind: SurveyKind | None = None,
    status: Literal["pending", "answered", "expired"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Invitations, newest first, by customer, survey and status."""
    items, total = feedback.list_invitations(
        session, customer_id=customer_id, kind=kind, status=status, limit=limit, offset=offset
    )
    mask = permissions.masks_personal_data(user)
    return {"items": [_view(i, mask) for i in items], "total": total}


@router.get("/surveys/responses", response_model=Page[ResponseOut])
def list_responses(
    session: SessionDep,
    user: Reader,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    kind: SurveyKind | None = None,
    detractors: bool = False,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Answers, newest first; ``detractors=true`` keeps NPS 0-6 and CSAT 1-2."""
    items, total = feedback.list_responses(
        session,
        customer_id=customer_id,
        kind=kind,
        detractors=detractors,
        since=as_utc(since),
        until=as_utc(until),
        limit=limit,
        offset=offset,
    )
    mask = permissions.masks_personal_data(user)
    return {"items": [feedback.record_view(i, mask=mask) for i in items], "total": total}


@router.get("/surveys/metrics")
def metrics(
    session: SessionDep,
    user: Reader,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    """NPS and CSAT overall, per grade and stage (latest scoring run) and per month."""
    return feedback.survey_metrics(session, since=as_utc(since), until=as_utc(until))


@router.get("/surveys/{invitation_id}", response_model=InvitationOut)
def get_invitation(
    session: SessionDep, user: Reader, invitation_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> dict[str, Any]:
    """One invitation and its answer."""
    item = feedback.get_invitation(session, invitation_id)
    return _view(item, permissions.masks_personal_data(user))
