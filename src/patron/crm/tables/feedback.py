"""The feedback loop's tables: survey invitations and answers, and free-text feedback.

An invitation is a link sent to one customer; the link carries a signed token and only
its SHA-256 digest is stored, so a leaked database hands out no answerable links. The key
that signs the links is ``PATRON_SECRET_KEY`` when set, else a random one generated on
first use and kept in :class:`SurveyKey`. An answer is one row per invitation (unique), so
a link answered twice at the same moment still yields one response.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.crm.tables.base import Base, Id, created_column, id_column

__all__ = [
    "SURVEY_KINDS",
    "FEEDBACK_CHANNELS",
    "FEEDBACK_KINDS",
    "SENTIMENTS",
    "SurveyKey",
    "SurveyInvitation",
    "SurveyResponse",
    "FeedbackRecord",
]

#: nps: "how likely are you to recommend us", 0-10; csat: "how satisfied are you", 1-5.
SURVEY_KINDS = ("nps", "csat")
#: Where a piece of feedback reached the business.
FEEDBACK_CHANNELS = ("phone", "wechat", "email", "store", "web")
#: What the customer meant by it.
FEEDBACK_KINDS = ("complaint", "suggestion", "praise", "question")
SENTIMENTS = ("positive", "neutral", "negative")


class SurveyKey(Base):
    """A generated signing key, made once on first use when no ``PATRON_SECRET_KEY`` is set."""

    __tablename__ = "survey_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = created_column()


class SurveyInvitation(Base):
    """One survey link sent to one customer; ``answered_at`` is set once, by the answer."""

    __tablename__ = "survey_invitations"
    __table_args__ = (
        Index("ix_survey_invitations_customer_id_created_at", "customer_id", "created_at"),
        Index("ix_survey_invitations_created_at", "created_at"),
        CheckConstraint("kind IN ('nps','csat')", "kind"),
    )

    id: Mapped[int] = id_column()
    customer_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime]
    created_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = created_column()
    answered_at: Mapped[dt.datetime | None]


class SurveyResponse(Base):
    """A customer's answer: the score, their comment and what the comment is about."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        Index("ix_survey_responses_answered_at", "answered_at"),
        Index("ix_survey_responses_customer_id_answered_at", "customer_id", "answered_at"),
        CheckConstraint(
            "(kind = 'nps' AND score BETWEEN 0 AND 10) OR "
            "(kind = 'csat' AND score BETWEEN 1 AND 5)",
            "score",
        ),
        CheckConstraint(
            "sentiment IS NULL OR sentiment IN ('positive','neutral','negative')", "sentiment"
        ),
    )

    id: Mapped[int] = id_column()
    invitation_id: Mapped[int] = mapped_column(
        Id, ForeignKey("survey_invitations.id", ondelete="CASCADE"), unique=True
    )
    customer_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8))
    sentiment: Mapped[str | None] = mapped_column(String(8))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    topics: Mapped[list[Any]] = mapped_column(default=list)
    answered_at: Mapped[dt.datetime] = created_column()


class FeedbackRecord(Base):
    """Feedback staff wrote down or imported, analysed for sentiment and topics on save.

    ``import_key`` is the digest of an imported row (customer, channel, type, time, text),
    so importing the same export again adds nothing; rows staff type have none.
    """

    __tablename__ = "feedback_records"
    __table_args__ = (
        Index("ix_feedback_records_customer_id_occurred_at", "customer_id", "occurred_at"),
        Index("ix_feedback_records_occurred_at", "occurred_at"),
        CheckConstraint("channel IN ('phone','wechat','email','store','web')", "channel"),
        CheckConstraint("kind IN ('complaint','suggestion','praise','question')", "kind"),
        CheckConstraint("sentiment IN ('positive','neutral','negative')", "sentiment"),
        CheckConstraint("source IN ('staff','import')", "source"),
    )

    id: Mapped[int] = id_column()
    customer_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    sentiment: Mapped[str] = mapped_column(String(8))
    sentiment_score: Mapped[float] = mapped_column(Float)
    topics: Mapped[list[Any]] = mapped_column(default=list)
    occurred_at: Mapped[dt.datetime]
    source: Mapped[str] = mapped_column(String(16), default="staff")
    import_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = created_column()
