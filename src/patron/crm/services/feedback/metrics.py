"""NPS and CSAT: overall, per grade and lifecycle stage, and per month.

- **NPS** (Reichheld 2003): answers 9-10 are promoters, 0-6 detractors, 7-8 passives;
  NPS = % promoters - % detractors, from -100 to 100.
- **CSAT**: the share of answers of 4 or 5 on the 1-5 scale (in percent), with the mean
  score beside it.

Every answer counts (a customer who answered twice counts twice, as in any survey
tally). Grades and stages are those of the latest finished scoring run, joined through
merges (an answer given by a customer later merged counts for the survivor); customers
the run did not score are grouped under ``None``. Months are calendar months in the
shop's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select

from patron.crm.services.feedback.invitations import latest_run_id
from patron.crm.tables import Customer, ScoreSnapshot, ScoringRun, SurveyResponse

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "PROMOTER_MIN",
    "PASSIVE_MIN",
    "SATISFIED_MIN",
    "nps_summary",
    "csat_summary",
    "survey_metrics",
]

PROMOTER_MIN = 9
PASSIVE_MIN = 7  # 0-6 detractors
SATISFIED_MIN = 4
DEFAULT_TIMEZONE = "Asia/Shanghai"


def nps_summary(counts: Mapping[int, int]) -> dict[str, Any]:
    """NPS from the number of answers per score 0-10.

    Returns ``responses, promoters, passives, detractors`` (counts) and
    ``promoters_pct, detractors_pct, nps`` (percent; ``None`` without answers).

    >>> nps_summary({10: 3, 9: 2, 8: 2, 5: 2, 0: 1})["nps"]
    20.0
    """
    n = sum(counts.values())
    promoters = sum(c for score, c in counts.items() if score >= PROMOTER_MIN)
    detractors = sum(c for score, c in counts.items() if score < PASSIVE_MIN)
    return {
        "responses": n,
        "promoters": promoters,
        "passives": n - promoters - detractors,
        "detractors": detractors,
        "promoters_pct": 100.0 * promoters / n if n else None,
        "detractors_pct": 100.0 * detractors / n if n else None,
        "nps": 100.0 * (promoters - detractors) / n if n else None,
    }


def csat_summary(counts: Mapping[int, int]) -> dict[str, Any]:
    """CSAT from the number of answers per score 1-5.

    Returns ``responses``, ``satisfied`` (answers of 4-5), ``csat`` (their share in
    percent) and ``mean`` (the mean score); ``None`` without answers.

    >>> csat_summary({5: 1, 4: 2, 2: 1})
    {'responses': 4, 'satisfied': 3, 'csat': 75.0, 'mean': 3.75}
    """
    n = sum(counts.values())
    satisfied = sum(c for score, c in counts.items() if score >= SATISFIED_MIN)
    return {
        "responses": n,
        "satisfied": satisfied,
        "csat": 100.0 * satisfied / n if n else None,
        "mean": sum(score * c for score, c in counts.items()) / n if n else None,
    }


_Counts = dict[str, dict[int, int]]  # kind -> score -> answers


def _summaries(counts: _Counts) -> dict[str, Any]:
    return {"nps": nps_summary(counts.get("nps", {})), "csat": csat_summary(counts.get("csat", {}))}


def survey_metrics(
    session: Session,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> dict[str, Any]:
    """NPS and CSAT of the answers given in ``[since, until)`` (all of them by default).

    Returns
    -------
    dict
        ``overall`` (``{"nps": ..., "csat": ...}`` as :func:`nps_summary` and
        :func:`csat_summary` give them), ``by_grade`` and ``by_stage`` (lists of
        ``{"label", "nps", "csat"}`` in the grades' configured order and the lifecycle's
        order, ``None`` last for customers the run did not score), ``by_month`` (``{"month":
        "YYYY-MM", "nps", "csat"}`` from the first month with answers to the last, empty
        months included) and ``run_id`` (the scoring run the grades come from, or None).
    """
    run_id = latest_run_id(session)
    window = []
    if since is not None:
        window.append(SurveyResponse.answered_at >= since)
    if until is not None:
        window.append(SurveyResponse.answered_at < until)
    owner = func.coalesce(Customer.merged_into_id, Customer.id)
    cells = session.execute(
        select(
            SurveyResponse.kind,
            SurveyResponse.score,
            ScoreSnapshot.grade,
            ScoreSnapshot.lifecycle_stage,
            func.count(),
        )
        .join(Customer, Customer.id == SurveyResponse.customer_id)
        .outerjoin(
            ScoreSnapshot,
            and_(ScoreSnapshot.run_id == run_id, ScoreSnapshot.customer_id == owner),
        )
        .where(*window)
        .group_by(
            SurveyResponse.kind,
            SurveyResponse.score,
            ScoreSnapshot.grade,
            ScoreSnapshot.lifecycle_stage,
        )
    ).all()
    overall: _Counts = defaultdict(lambda: defaultdict(int))
    grades: dict[Any, _Counts] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    stages: dict[Any, _Counts] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for kind, score, grade, stage, n in cells:
        overall[kind][score] += n
        grades[grade][kind][score] += n
        stages[stage][kind][score] += n
    return {
        "run_id": run_id,
        "overall": _summaries(overall),
        "by_grade": [
            {"label": label, **_summaries(grades[label])}
            for label in _order(_grade_labels(session, run_id), grades)
        ],
        "by_stage": [
            {"label": label, **_summaries(stages[label])}
            for label in _order(_stage_labels(), stages)
        ],
        "by_month": _by_month(session, window, ZoneInfo(timezone)),
    }


def _by_month(session: Session, window: list, zone: ZoneInfo) -> list[dict[str, Any]]:
    rows = session.execute(
        select(SurveyResponse.kind, SurveyResponse.score, SurveyResponse.answered_at).where(*window)
    )
    months: dict[str, _Counts] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for kind, score, answered_at in rows:
        months[answered_at.astimezone(zone).strftime("%Y-%m")][kind][score] += 1
    if not months:
        return []
    first, last = min(months), max(months)
    out = []
    year, month = int(first[:4]), int(first[5:])
    while (label := f"{year:04d}-{month:02d}") <= last:
        out.append({"month": label, **_summaries(months.get(label, {}))})
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _grade_labels(session: Session, run_id: int | None) -> list[str]:
    from patron.value.config import GRADE_CODES

    if run_id is None:
        return list(GRADE_CODES)
    params = session.scalar(select(ScoringRun.params).where(ScoringRun.id == run_id)) or {}
    return list(params.get("grades") or GRADE_CODES)


def _stage_labels() -> list[str]:
    from patron.value.lifecycle import STAGES

    return list(STAGES)


def _order(known: list[str], seen: Mapping[Any, Any]) -> list[Any]:
    """Known labels in order, then other labels seen (sorted), then ``None`` if seen."""
    extra = sorted(label for label in seen if label is not None and label not in known)
    return [*known, *extra, *([None] if None in seen else [])]
