"""Answering a survey link: who may (the holder of a valid link, once) and what it does.

The link is checked in a fixed order, and each failure has its own refusal, so the public
page can say what happened: not a link we made (:class:`LinkInvalid`), already used
(:class:`AlreadyAnswered`), or too late (:class:`LinkExpired`).

Single use holds under concurrency: the answer claims the invitation with one conditional
``UPDATE ... SET answered_at = now WHERE answered_at IS NULL``. On PostgreSQL a second
request's update waits on the row lock and then matches nothing; on SQLite write
transactions begin as the writer (``BEGIN IMMEDIATE``) and run one at a time. The unique
``invitation_id`` of responses refuses a second answer even if both were bypassed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from patron.crm.services import audit
from patron.crm.services.customers import get_customer
from patron.crm.services.errors import Invalid, ServiceError
from patron.crm.services.feedback import followup, signing
from patron.crm.services.feedback.text import analyse
from patron.crm.tables import Customer, SurveyInvitation, SurveyResponse
from patron.crm.tables.base import utcnow
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "COMMENT_LENGTH",
    "SCORES",
    "SurveyLinkError",
    "LinkInvalid",
    "LinkExpired",
    "AlreadyAnswered",
    "open_survey",
    "customer_language",
    "answer_survey",
]

COMMENT_LENGTH = 2000
#: The scores each survey offers.
SCORES = {"nps": range(0, 11), "csat": range(1, 6)}


class SurveyLinkError(ServiceError):
    """A survey link that cannot be answered."""


class LinkInvalid(SurveyLinkError):
    """Not a link this server made: malformed, altered, or for no invitation (HTTP 404)."""

    code, status = "survey_link_invalid", 404


class LinkExpired(SurveyLinkError):
    """A genuine link past its expiry (HTTP 410)."""

    code, status = "survey_link_expired", 410


class AlreadyAnswered(SurveyLinkError):
    """A genuine link that has been answered (HTTP 409)."""

    code, status = "survey_already_answered", 409


def open_survey(session: Session, token: str) -> SurveyInvitation:
    """The invitation a link opens, if it may still be answered; never writes.

    Raises
    ------
    LinkInvalid, AlreadyAnswered, LinkExpired
        In that order of checking: an answered link says so even after it expired.
    """
    key = signing.signing_key(session, create=False)
    try:
        claim = signing.read_token(key, token)
    except signing.BadToken:
        raise LinkInvalid(_("surveys.link_invalid")) from None
    invitation = session.get(SurveyInvitation, claim.invitation_id)
    if invitation is None or not _same_digest(invitation.token_hash, token):
        raise LinkInvalid(_("surveys.link_invalid"))
    if invitation.answered_at is not None:
        raise AlreadyAnswered(_("surveys.already_answered"))
    if min(claim.expires_at, invitation.expires_at) <= utcnow():
        raise LinkExpired(_("surveys.link_expired"))
    return invitation


def _same_digest(stored: str, token: str) -> bool:
    import hmac

    return hmac.compare_digest(stored, signing.token_digest(token))


def customer_language(session: Session, invitation: SurveyInvitation) -> str | None:
    """The language the customer chose (``zh-CN``/``en``), or ``None`` to ask the browser."""
    return session.scalar(select(Customer.language).where(Customer.id == invitation.customer_id))


def answer_survey(
    session: Session,
    token: str,
    *,
    score: int,
    comment: str = "",
    language: str = "en",
    ip: str | None = None,
) -> SurveyResponse:
    """Record the answer to a survey link; audited ``survey.answer`` (no actor: the customer).

    A detractor's answer opens a follow-up task (:mod:`.followup`) in the same transaction.

    Parameters
    ----------
    score
        0-10 for NPS, 1-5 for CSAT.
    comment
        Free text, at most :data:`COMMENT_LENGTH` characters; analysed when given.
    language
        The language the page was shown in.

    Raises
    ------
    LinkInvalid, LinkExpired, AlreadyAnswered
        As :func:`open_survey`; ``AlreadyAnswered`` also for the loser of two answers at
        the same moment.
    Invalid
        A score outside the survey's scale, or a comment too long.
    """
    invitation = open_survey(session, token)
    scale = SCORES[invitation.kind]
    if isinstance(score, bool) or not isinstance(score, int) or score not in scale:
        raise Invalid(_("surveys.bad_score", low=scale.start, high=scale.stop - 1), field="score")
    comment = (comment or "").strip()
    if len(comment) > COMMENT_LENGTH:
        raise Invalid(_("surveys.comment_too_long", max=COMMENT_LENGTH), field="comment")
    now = utcnow()
    claimed = session.execute(
        update(SurveyInvitation)
        .where(SurveyInvitation.id == invitation.id, SurveyInvitation.answered_at.is_(None))
        .values(answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise AlreadyAnswered(_("surveys.already_answered"))
    session.refresh(invitation)
    customer = get_customer(session, invitation.customer_id)
    facts = analyse(comment) if comment else None
    response = SurveyResponse(
        invitation_id=invitation.id,
        customer_id=customer.id,
        kind=invitation.kind,
        score=score,
        comment=comment,
        language=language,
        sentiment=facts.sentiment if facts else None,
        sentiment_score=facts.score if facts else None,
        topics=facts.topics if facts else [],
        answered_at=now,
    )
    try:
        with session.begin_nested():
            session.add(response)
    except IntegrityError:
        raise AlreadyAnswered(_("surveys.already_answered")) from None
    audit.record(
        session,
        actor=None,
        action="survey.answer",
        object_type="survey_invitation",
        object_id=invitation.id,
        after={
            "customer_id": customer.id,
            "kind": invitation.kind,
            "score": score,
            "comment": comment,
            "sentiment": response.sentiment,
        },
        ip=ip,
    )
    followup.open_for_response(session, response)
    return response
