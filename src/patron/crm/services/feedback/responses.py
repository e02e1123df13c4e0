"""Survey answers, listed and filtered, for the API and the survey page."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from patron.crm.services.errors import Invalid
from patron.crm.services.feedback.followup import DETRACTOR_MAX
from patron.crm.services.feedback.invitations import response_dict
from patron.crm.tables import SURVEY_KINDS, Customer, SurveyResponse
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["list_responses"]


def list_responses(
    session: Session,
    *,
    customer_id: int | None = None,
    kind: str | None = None,
    detractors: bool = False,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Answers, newest first, and how many match in all.

    Each item is the answer (``id, invitation_id, customer_id, kind, score, comment,
    language, sentiment, sentiment_score, topics, answered_at``) with ``customer_name``.
    ``detractors`` keeps only NPS 0-6 and CSAT 1-2.

    Raises
    ------
    Invalid
        An unknown kind.
    """
    where = []
    if customer_id is not None:
        from patron.crm.services.feedback.records import customer_ids

        where.append(SurveyResponse.customer_id.in_(customer_ids(session, customer_id)))
    if kind:
        if kind not in SURVEY_KINDS:
            raise Invalid(
                _("surveys.bad_kind", value=kind, allowed=", ".join(SURVEY_KINDS)), field="kind"
            )
        where.append(SurveyResponse.kind == kind)
    if detractors:
        where.append(
            or_(
                *(
                    and_(SurveyResponse.kind == k, SurveyResponse.score <= top)
                    for k, top in DETRACTOR_MAX.items()
                )
            )
        )
    if since is not None:
        where.append(SurveyResponse.answered_at >= since)
    if until is not None:
        where.append(SurveyResponse.answered_at < until)
    total = session.scalar(select(func.count()).select_from(SurveyResponse).where(*where))
    rows = session.execute(
        select(SurveyResponse, Customer.name)
        .join(Customer, Customer.id == SurveyResponse.customer_id)
        .where(*where)
        .order_by(SurveyResponse.answered_at.desc(), SurveyResponse.id.desc())
        .limit(max(limit, 0))
        .offset(max(offset, 0))
    ).all()
    return [{**response_dict(r), "customer_name": name or ""} for r, name in rows], int(total or 0)
