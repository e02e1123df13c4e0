"""How satisfied each customer is, as one number: for the grades and for the 360.

A customer's satisfaction is the weighted mean, over the last year, of

- every survey answer, on a 0-1 scale (NPS score / 10; CSAT (score - 1) / 4), weight 1;
- every feedback record's sentiment score, mapped from [-1, 1] to [0, 1], weight 1/2 (what
  staff wrote down is second-hand and its sentiment an estimate).

Grades rank customers by it, so only the order matters; customers without any answer or
feedback are left out and count as middling (:func:`patron.value.grades.assign_grades`).
Feedback given under an id later merged away counts for the survivor.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, case, cast, func, select

from patron.crm.services.feedback.invitations import list_invitations, response_dict
from patron.crm.services.feedback.records import customer_ids, list_feedback
from patron.crm.tables import Customer, FeedbackRecord, SurveyResponse
from patron.crm.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "WINDOW_DAYS",
    "RECORD_WEIGHT",
    "satisfaction_by_customer",
    "customer_feedback",
]

WINDOW_DAYS = 365
RECORD_WEIGHT = 0.5


def _answer_value():
    score = cast(SurveyResponse.score, Float)
    return case(
        (SurveyResponse.kind == "nps", score / 10.0),
        else_=(score - 1.0) / 4.0,
    )


def _record_value():
    return (cast(FeedbackRecord.sentiment_score, Float) + 1.0) / 2.0


def satisfaction_by_customer(
    session: Session, *, now: dt.datetime | None = None, window_days: int = WINDOW_DAYS
) -> dict[str, float]:
    """Satisfaction 0-1 per customer id (as text, the id analyze knows them by).

    This is the ``satisfaction=`` argument of :func:`patron.analyze` in a scoring run.
    """
    since = (now or utcnow()) - dt.timedelta(days=window_days)
    owner = func.coalesce(Customer.merged_into_id, Customer.id)
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for table, value, weight, at in (
        (SurveyResponse, _answer_value(), 1.0, SurveyResponse.answered_at),
        (FeedbackRecord, _record_value(), RECORD_WEIGHT, FeedbackRecord.occurred_at),
    ):
        rows = session.execute(
            select(owner, func.sum(value), func.count())
            .select_from(table)
            .join(Customer, Customer.id == table.customer_id)
            .where(at >= since)
            .group_by(owner)
        )
        for customer_id, total, n in rows:
            sums[int(customer_id)][0] += weight * float(total)
            sums[int(customer_id)][1] += weight * n
    return {str(k): total / weight for k, (total, weight) in sums.items() if weight > 0}


def customer_satisfaction(
    session: Session, ids: list[int], *, now: dt.datetime | None = None
) -> float | None:
    """The satisfaction of one customer whose records are under ``ids`` (None: no data)."""
    since = (now or utcnow()) - dt.timedelta(days=WINDOW_DAYS)
    total = weight = 0.0
    for table, value, w, at in (
        (SurveyResponse, _answer_value(), 1.0, SurveyResponse.answered_at),
        (FeedbackRecord, _record_value(), RECORD_WEIGHT, FeedbackRecord.occurred_at),
    ):
        found_sum, n = session.execute(
            select(func.sum(value), func.count())
            .select_from(table)
            .where(table.customer_id.in_(ids), at >= since)
        ).one()
        if n:
            total += w * float(found_sum)
            weight += w * n
    return total / weight if weight else None


def customer_feedback(session: Session, customer_id: int, *, limit: int = 5) -> dict[str, Any]:
    """What the 360 shows of a customer's feedback.

    Returns
    -------
    dict
        ``satisfaction`` (0-1 or None), ``nps`` and ``csat`` (the latest answer's
        ``{"score", "answered_at"}`` or None), ``responses`` (the latest ``limit`` answers,
        newest first) and ``responses_total``, ``records`` (the latest ``limit`` feedback
        records, as :func:`~.records.list_feedback`) and ``records_total``, and
        ``pending_invitations`` (links sent and not yet answered nor expired).

    Raises
    ------
    NotFound
        No such customer.
    """
    ids = customer_ids(session, customer_id)
    responses = list(
        session.scalars(
            select(SurveyResponse)
            .where(SurveyResponse.customer_id.in_(ids))
            .order_by(SurveyResponse.answered_at.desc(), SurveyResponse.id.desc())
            .limit(limit)
        )
    )
    responses_total = session.scalar(
        select(func.count()).select_from(SurveyResponse).where(SurveyResponse.customer_id.in_(ids))
    )
    latest = {}
    for kind in ("nps", "csat"):
        found = session.execute(
            select(SurveyResponse.score, SurveyResponse.answered_at)
            .where(SurveyResponse.customer_id.in_(ids), SurveyResponse.kind == kind)
            .order_by(SurveyResponse.answered_at.desc(), SurveyResponse.id.desc())
            .limit(1)
        ).first()
        latest[kind] = {"score": found[0], "answered_at": found[1]} if found else None
    records, records_total = list_feedback(session, customer_id=ids[0], limit=limit)
    pending = list_invitations(session, customer_id=ids[0], status="pending", limit=0)[1]
    return {
        "customer_id": ids[0],
        "satisfaction": customer_satisfaction(session, ids),
        "nps": latest["nps"],
        "csat": latest["csat"],
        "responses": [response_dict(r) for r in responses],
        "responses_total": int(responses_total or 0),
        "records": records,
        "records_total": records_total,
        "pending_invitations": pending,
    }
