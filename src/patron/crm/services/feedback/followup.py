"""Which answers and complaints become follow-up tasks: the closed loop's entry point.

A detractor (NPS 0-6, CSAT 1-2) and a complaint that reads negative each open a task for
the customer's owner through :func:`patron.crm.services.tasks.open_task`, keyed by the
response or record that caused it, so handling the same answer twice opens one task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import FeedbackRecord, SurveyResponse, Task, User

__all__ = ["DETRACTOR_MAX", "is_detractor", "open_for_response", "open_for_record"]

#: The highest score that makes an answer a detractor's, per survey kind.
DETRACTOR_MAX = {"nps": 6, "csat": 2}
_SCALE = {"nps": 10, "csat": 5}


def is_detractor(kind: str, score: int) -> bool:
    """Whether an answer of ``score`` to a ``kind`` survey is a detractor's.

    >>> is_detractor("nps", 6), is_detractor("nps", 7), is_detractor("csat", 2)
    (True, False, True)
    """
    return score <= DETRACTOR_MAX[kind]


def open_for_response(session: Session, response: SurveyResponse) -> Task | None:
    """Open a ``detractor`` task for a detractor's answer; ``None`` for any other answer."""
    if not is_detractor(response.kind, response.score):
        return None
    from patron.crm.services import tasks

    headline = f"{response.kind.upper()} {response.score}/{_SCALE[response.kind]}"
    detail = f"{headline}: {response.comment}" if response.comment else headline
    return tasks.open_task(
        session,
        customer_id=response.customer_id,
        kind="detractor",
        detail=detail[: tasks.TEXT_LENGTH],
        source_type="survey_response",
        source_id=response.id,
        actor=None,
    )


def open_for_record(session: Session, record: FeedbackRecord, actor: User | None) -> Task | None:
    """Open a ``complaint`` task for a complaint that reads negative; else ``None``."""
    if record.kind != "complaint" or record.sentiment != "negative":
        return None
    from patron.crm.services import tasks

    return tasks.open_task(
        session,
        customer_id=record.customer_id,
        kind="complaint",
        detail=record.text[: tasks.TEXT_LENGTH],
        source_type="feedback",
        source_id=record.id,
        actor=actor,
    )
