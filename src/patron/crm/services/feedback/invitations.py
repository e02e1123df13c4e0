"""Survey invitations: a signed, single-use link per customer, for one customer or a segment.

The link is handed back once, when it is made, to be sent by whatever channel reaches the
customer; only its digest is kept (:mod:`patron.crm.services.feedback.signing`). A
segment is the customers of a grade and/or lifecycle stage in the latest finished scoring
run; customers who still hold an unanswered, unexpired link of the same survey are
skipped, so re-inviting a segment does not pester anyone twice.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select

from patron.crm.services import audit
from patron.crm.services.customers import get_customer
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.feedback import signing
from patron.crm.tables import (
    SURVEY_KINDS,
    Customer,
    ScoreSnapshot,
    SurveyInvitation,
    SurveyResponse,
    User,
)
from patron.crm.tables.base import utcnow
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "MAX_BATCH",
    "STATUSES",
    "NewInvitation",
    "InvitationBatch",
    "latest_run_id",
    "create_invitations",
    "list_invitations",
    "get_invitation",
    "invitation_status",
]

DEFAULT_DAYS = 30
MAX_DAYS = 365
#: Links handed back by one request; a larger segment is split by grade or stage.
MAX_BATCH = 5000
STATUSES = ("pending", "answered", "expired")


@dataclass(frozen=True)
class NewInvitation:
    """An invitation just made and its token (the only time the token is known)."""

    invitation: SurveyInvitation
    token: str


@dataclass(frozen=True)
class InvitationBatch:
    """The invitations made, and how many customers were skipped as already invited."""

    created: list[NewInvitation]
    skipped: int


def latest_run_id(session: Session) -> int | None:
    """The newest finished scoring run: the one whose grades and stages count now."""
    from patron.crm.tables import ScoringRun

    return session.scalar(select(func.max(ScoringRun.id)).where(ScoringRun.status == "done"))


def create_invitations(
    session: Session,
    *,
    kind: str,
    customer_id: int | None = None,
    grade: str | None = None,
    stage: str | None = None,
    expires_in_days: int = DEFAULT_DAYS,
    actor: User | None,
    ip: str | None = None,
) -> InvitationBatch:
    """Make survey links for one customer or for a segment; each audited ``survey.invite``.

    Parameters
    ----------
    kind
        ``nps`` or ``csat``.
    customer_id
        One customer (a merged id invites its survivor); always invited.
    grade, stage
        Or a segment of the latest finished scoring run (either or both).
    expires_in_days
        How long each link may be answered (1 to :data:`MAX_DAYS` days).

    Raises
    ------
    Invalid
        An unknown kind, neither or both of customer and segment, a bad expiry, no
        finished scoring run for a segment, an empty segment or one above
        :data:`MAX_BATCH` customers.
    NotFound
        No such customer.
    """
    if kind not in SURVEY_KINDS:
        raise Invalid(
            _("surveys.bad_kind", value=kind, allowed=", ".join(SURVEY_KINDS)), field="kind"
        )
    if (
        isinstance(expires_in_days, bool)
        or not isinstance(expires_in_days, int)
        or not 1 <= expires_in_days <= MAX_DAYS
    ):
        raise Invalid(_("surveys.bad_expiry", max=MAX_DAYS), field="expires_in_days")
    segment = bool(grade or stage)
    if (customer_id is None) == (not segment):
        raise Invalid(_("surveys.customer_or_segment"), field="customer_id")
    now = utcnow().replace(microsecond=0)
    expires_at = now + dt.timedelta(days=expires_in_days)
    skipped = 0
    if customer_id is not None:
        targets = [get_customer(session, customer_id).id]
    else:
        everyone = _segment(session, grade, stage)
        targets = _not_pending(session, everyone, kind, now)
        skipped = len(everyone) - len(targets)
    key = signing.signing_key(session, create=True)
    assert key is not None  # create=True always yields a key
    invitations = [
        SurveyInvitation(
            customer_id=target,
            kind=kind,
            # A placeholder until the id (which the token carries) is known.
            token_hash=secrets.token_hex(32),
            expires_at=expires_at,
            created_by_id=actor.id if actor is not None else None,
            created_at=now,
        )
        for target in targets
    ]
    session.add_all(invitations)
    session.flush()
    created = []
    for invitation in invitations:
        token = signing.make_token(key, invitation.id, expires_at)
        invitation.token_hash = signing.token_digest(token)
        created.append(NewInvitation(invitation, token))
        audit.record(
            session,
            actor=actor,
            action="survey.invite",
            object_type="survey_invitation",
            object_id=invitation.id,
            after={
                "customer_id": invitation.customer_id,
                "kind": kind,
                "expires_at": expires_at,
                "segment": {"grade": grade, "stage": stage} if segment else None,
            },
            ip=ip,
        )
    session.flush()
    return InvitationBatch(created, skipped)


def _segment(session: Session, grade: str | None, stage: str | None) -> list[int]:
    run_id = latest_run_id(session)
    if run_id is None:
        raise Invalid(_("surveys.no_run"), field="grade")
    where = [ScoreSnapshot.run_id == run_id, Customer.merged_into_id.is_(None)]
    if grade:
        where.append(ScoreSnapshot.grade == grade)
    if stage:
        where.append(ScoreSnapshot.lifecycle_stage == stage)
    query = (
        select(ScoreSnapshot.customer_id)
        .join(Customer, Customer.id == ScoreSnapshot.customer_id)
        .where(*where)
        .order_by(ScoreSnapshot.customer_id)
        .limit(MAX_BATCH + 1)
    )
    ids = list(session.scalars(query))
    if not ids:
        raise Invalid(_("surveys.empty_segment"), field="grade")
    if len(ids) > MAX_BATCH:
        raise Invalid(_("surveys.segment_too_large", max=MAX_BATCH), field="grade")
    return ids


def _not_pending(session: Session, ids: list[int], kind: str, now: dt.datetime) -> list[int]:
    pending: set[int] = set()
    for start in range(0, len(ids), 900):  # SQLite allows 999 bound parameters at most
        chunk = ids[start : start + 900]
        pending.update(
            session.scalars(
                select(SurveyInvitation.customer_id).where(
                    SurveyInvitation.customer_id.in_(chunk),
                    SurveyInvitation.kind == kind,
                    SurveyInvitation.answered_at.is_(None),
                    SurveyInvitation.expires_at > now,
                )
            )
        )
    return [i for i in ids if i not in pending]


def invitation_status(invitation: SurveyInvitation, now: dt.datetime | None = None) -> str:
    """``answered``, ``expired`` (not answered in time) or ``pending``."""
    if invitation.answered_at is not None:
        return "answered"
    return "expired" if invitation.expires_at <= (now or utcnow()) else "pending"


def list_invitations(
    session: Session,
    *,
    customer_id: int | None = None,
    kind: str | None = None,
    status: str | None = None,
    invitation_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Invitations, newest first, and how many match; each with its answer if there is one.

    Each item: ``id, customer_id, customer_name, kind, status, created_at, expires_at,
    answered_at, created_by_id, created_by, response`` (``None`` or the answer's
    ``id, score, comment, language, sentiment, sentiment_score, topics, answered_at``).
    Tokens are never listed: they are not stored.

    Raises
    ------
    Invalid
        An unknown kind or status.
    """
    now = utcnow()
    where = []
    if customer_id is not None:
        from patron.crm.services.feedback.records import customer_ids

        where.append(SurveyInvitation.customer_id.in_(customer_ids(session, customer_id)))
    if kind:
        if kind not in SURVEY_KINDS:
            raise Invalid(
                _("surveys.bad_kind", value=kind, allowed=", ".join(SURVEY_KINDS)), field="kind"
            )
        where.append(SurveyInvitation.kind == kind)
    if status:
        if status not in STATUSES:
            raise Invalid(
                _("surveys.bad_status", value=status, allowed=", ".join(STATUSES)), field="status"
            )
        where.append(
            {
                "answered": SurveyInvitation.answered_at.is_not(None),
                "pending": and_(
                    SurveyInvitation.answered_at.is_(None), SurveyInvitation.expires_at > now
                ),
                "expired": and_(
                    SurveyInvitation.answered_at.is_(None), SurveyInvitation.expires_at <= now
                ),
            }[status]
        )
    if invitation_id is not None:
        where.append(SurveyInvitation.id == invitation_id)
    total = session.scalar(select(func.count()).select_from(SurveyInvitation).where(*where))
    query = (
        select(SurveyInvitation, Customer.name, User.display_name, User.username, SurveyResponse)
        .join(Customer, Customer.id == SurveyInvitation.customer_id)
        .outerjoin(User, User.id == SurveyInvitation.created_by_id)
        .outerjoin(SurveyResponse, SurveyResponse.invitation_id == SurveyInvitation.id)
        .where(*where)
        .order_by(SurveyInvitation.created_at.desc(), SurveyInvitation.id.desc())
        .limit(max(limit, 0))
        .offset(max(offset, 0))
    )
    items = []
    for invitation, name, display, username, response in session.execute(query).all():
        items.append(
            {
                "id": invitation.id,
                "customer_id": invitation.customer_id,
                "customer_name": name or "",
                "kind": invitation.kind,
                "status": invitation_status(invitation, now),
                "created_at": invitation.created_at,
                "expires_at": invitation.expires_at,
                "answered_at": invitation.answered_at,
                "created_by_id": invitation.created_by_id,
                "created_by": display or username,
                "response": response_dict(response) if response is not None else None,
            }
        )
    return items, int(total or 0)


def get_invitation(session: Session, invitation_id: int) -> dict[str, Any]:
    """One invitation as :func:`list_invitations` gives it; :class:`NotFound` otherwise."""
    items, _total = list_invitations(session, invitation_id=invitation_id, limit=1)
    if not items:
        raise NotFound(_("surveys.not_found", id=invitation_id), field="invitation_id")
    return items[0]


def response_dict(response: SurveyResponse) -> dict[str, Any]:
    """What is shown of an answer."""
    return {
        "id": response.id,
        "invitation_id": response.invitation_id,
        "customer_id": response.customer_id,
        "kind": response.kind,
        "score": response.score,
        "comment": response.comment,
        "language": response.language,
        "sentiment": response.sentiment,
        "sentiment_score": response.sentiment_score,
        "topics": list(response.topics or ()),
        "answered_at": response.answered_at,
    }
