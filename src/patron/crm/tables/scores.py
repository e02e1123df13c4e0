"""Scoring runs and their snapshots: one row per customer per run, every analyze column.

History is kept, so grade and stage migration between two runs is a join of two snapshots.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.crm.tables.base import Base, Id, created_column, id_column

__all__ = ["SNAPSHOT_COLUMNS", "ScoringRun", "ScoreSnapshot"]

#: Every score column of a snapshot, in the names of ``patron analyze``'s customer table
#: (its ``CUSTOMER_COLUMNS`` after the id, and the grade's reason); ``T`` is stored as ``t``.
SNAPSHOT_COLUMNS = (
    "orders",
    "total_spend",
    "first_purchase",
    "last_purchase",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_segment",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "predicted_clv",
    "clv_low",
    "clv_high",
    "grade",
    "grade_reason",
    "lifecycle_stage",
    "churn_risk",
    "next_best_action",
)


class ScoringRun(Base):
    __tablename__ = "scoring_runs"

    id: Mapped[int] = id_column()
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|done|failed
    as_of: Mapped[dt.date | None]
    model: Mapped[str | None] = mapped_column(String(16))
    customers: Mapped[int] = mapped_column(default=0)
    kpis: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    backtest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message: Mapped[str] = mapped_column(Text, default="")
    actor_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime] = created_column()
    finished_at: Mapped[dt.datetime | None]


class ScoreSnapshot(Base):
    __tablename__ = "score_snapshots"
    __table_args__ = (
        # On PostgreSQL the key carries the two scores search sorts by and the three
        # labels it filters by, so ranking a name's 1,600 matches and counting "all gold
        # customers" read the index alone (migrations 0008 and 0010 say why).
        PrimaryKeyConstraint(
            "run_id",
            "customer_id",
            name="pk_score_snapshots",
            postgresql_include=[
                "predicted_clv",
                "last_purchase",
                "grade",
                "lifecycle_stage",
                "churn_risk",
            ],
        ),
        Index("ix_score_snapshots_customer_id_run_id", "customer_id", "run_id"),
        # The scores in sort order, with whose they are: search sifts a run's scores for
        # a page of a name's matches from the index alone (migration 0009).
        Index(
            "ix_score_snapshots_run_id_predicted_clv",
            "run_id",
            "predicted_clv",
            postgresql_include=["customer_id"],
        ),
        Index(
            "ix_score_snapshots_run_id_last_purchase",
            "run_id",
            "last_purchase",
            postgresql_include=["customer_id"],
        ),
    )

    run_id: Mapped[int] = mapped_column(
        Id, ForeignKey("scoring_runs.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        Id, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    orders: Mapped[int]
    total_spend: Mapped[Decimal]
    first_purchase: Mapped[dt.date | None]
    last_purchase: Mapped[dt.date | None]
    frequency: Mapped[float] = mapped_column(Float)
    recency: Mapped[float] = mapped_column(Float)
    T: Mapped[float] = mapped_column("t", Float)
    monetary_value: Mapped[float] = mapped_column(Float)
    rfm_r: Mapped[int]
    rfm_f: Mapped[int]
    rfm_m: Mapped[int]
    rfm_segment: Mapped[str] = mapped_column(String(32))
    p_alive: Mapped[float | None] = mapped_column(Float)
    expected_purchases: Mapped[float | None] = mapped_column(Float)
    expected_spend: Mapped[float | None] = mapped_column(Float)
    predicted_clv: Mapped[float | None] = mapped_column(Float)
    clv_low: Mapped[float | None] = mapped_column(Float)
    clv_high: Mapped[float | None] = mapped_column(Float)
    grade: Mapped[str] = mapped_column(String(16))
    grade_reason: Mapped[str] = mapped_column(Text, default="")
    lifecycle_stage: Mapped[str] = mapped_column(String(16))
    churn_risk: Mapped[str] = mapped_column(String(8))
    next_best_action: Mapped[str] = mapped_column(String(32))
