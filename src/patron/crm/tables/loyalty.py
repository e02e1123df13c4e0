"""Loyalty: the programme and its rules, tiers and rewards; accounts, the ledger and lots.

The vocabulary is Odoo's (program -> earn rules -> rewards -> account -> history); the
storage is a ledger's. Points are integers. Every change of a balance is a new row of
``loyalty_entries`` (append-only: nothing updates or deletes an entry); every credit
(an earn, a positive adjustment) opens a **lot** that remembers how many of its points
are still unspent and when they expire; every debit (a redemption, an expiry, a reversal,
a negative adjustment) records which lots it consumed in ``loyalty_allocations``,
first-to-expire first (Odoo's ``loyalty_point_track``, issuer -> redeemer).

The account row carries the balance, so a redemption locks one row and checks one number.
The balance is derived, never typed in: the services keep it equal to the sum of the
account's entries and to the sum of its lots' remaining points (less a refund debt, see
``debt``), and these CHECK constraints refuse what no code path may write even when a bug
tries:

- a lot never below zero nor above its size (``loyalty_lots.remaining``);
- a debit other than a refund reversal never leaves the balance below zero
  (``loyalty_entries.balance_after``), so nothing redeems beyond the balance;
- a negative balance only as a refund debt, and only once every lot is spent
  (``loyalty_accounts``: ``balance + debt >= 0`` and ``debt = 0 OR balance = -debt``);
- each kind of entry moves points the right way (an earn adds, a redemption takes away).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from patron.crm.tables.base import Base, Id, created_column, id_column, utcnow

__all__ = [
    "ENTRY_KINDS",
    "REFUND_POLICIES",
    "TIER_BASES",
    "REWARD_KINDS",
    "LoyaltyProgram",
    "LoyaltyTier",
    "LoyaltyReward",
    "LoyaltyAccount",
    "LoyaltyEntry",
    "LoyaltyLot",
    "LoyaltyAllocation",
    "LoyaltyJobRun",
]

#: earn and adjust (either sign) credit or debit by hand or by rule; redeem, expire and
#: reverse (a refunded order's points) debit.
ENTRY_KINDS = ("earn", "redeem", "expire", "reverse", "adjust")
#: What a refund does when the order's points were already spent: take back what is left
#: and record the shortfall, or take back everything and leave a negative balance (a debt
#: the next points pay off).
REFUND_POLICIES = ("claw_back", "allow_negative")
#: A tier is qualified for by the last 12 months' spend or by the points earned in them.
TIER_BASES = ("spend", "points")
REWARD_KINDS = ("coupon", "discount", "gift")

#: Points are whole numbers; sums over years of a big account outgrow 32 bits.
Points = BigInteger().with_variant(Integer(), "sqlite")


class LoyaltyProgram(Base):
    """The business's loyalty programme: earn rules, expiry, refunds and tier review."""

    __tablename__ = "loyalty_programs"
    __table_args__ = (
        CheckConstraint("points_per_unit >= 0", "points_per_unit"),
        CheckConstraint("points_per_order >= 0", "points_per_order"),
        CheckConstraint("min_amount >= 0", "min_amount"),
        CheckConstraint("birthday_multiplier >= 1", "birthday_multiplier"),
        CheckConstraint("birthday_bonus >= 0", "birthday_bonus"),
        CheckConstraint(
            "expiry_months IS NULL OR (expiry_months >= 1 AND expiry_months <= 120)",
            "expiry_months",
        ),
        CheckConstraint("point_value >= 0", "point_value"),
        CheckConstraint("refund_policy IN ('claw_back','allow_negative')", "refund_policy"),
        CheckConstraint("tier_basis IN ('spend','points')", "tier_basis"),
        CheckConstraint("tier_grace_days >= 0", "tier_grace_days"),
        CheckConstraint("review_months IN (1, 3, 6, 12)", "review_months"),
    )

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(String(128), default="")
    active: Mapped[bool] = mapped_column(default=True)
    #: Points per currency unit (yuan) of an order's amount, before multipliers.
    points_per_unit: Mapped[Decimal] = mapped_column(Numeric(10, 4), default=Decimal(1))
    #: Points for every order that earns at all, whatever its amount.
    points_per_order: Mapped[int] = mapped_column(Points, default=0)
    #: Orders below this amount earn nothing.
    min_amount: Mapped[Decimal] = mapped_column(default=Decimal(0))
    #: ``{"category": {name: factor}, "sku": {sku: factor}}``, applied through order lines.
    multipliers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    birthday_multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal(2))
    #: Points given once a year in the birthday month by the daily job (0: none).
    birthday_bonus: Mapped[int] = mapped_column(Points, default=0)
    #: Points expire this many calendar months after they were earned (NULL: never).
    expiry_months: Mapped[int | None] = mapped_column(Integer, default=12)
    #: What one point is worth in yuan (for the liability on the dashboard).
    point_value: Mapped[Decimal] = mapped_column(Numeric(10, 4), default=Decimal("0.01"))
    earn_on_import: Mapped[bool] = mapped_column(default=False)
    #: Orders placed before this day earn nothing (an import of old history).
    started_on: Mapped[dt.date | None] = mapped_column(Date)
    refund_policy: Mapped[str] = mapped_column(String(16), default="claw_back")
    tier_basis: Mapped[str] = mapped_column(String(8), default="spend")
    tier_grace_days: Mapped[int] = mapped_column(Integer, default=30)
    review_months: Mapped[int] = mapped_column(Integer, default=1)
    #: The zone in which "the birthday month" and review periods are counted.
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    updated_by_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = created_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LoyaltyTier(Base):
    """A membership tier (普通/白银/黄金/钻石): who qualifies, what it multiplies and gives."""

    __tablename__ = "loyalty_tiers"
    __table_args__ = (
        UniqueConstraint("program_id", "rank"),
        UniqueConstraint("program_id", "code"),
        CheckConstraint("rank >= 0", "rank"),
        CheckConstraint("threshold >= 0", "threshold"),
        CheckConstraint("multiplier >= 1", "multiplier"),
    )

    id: Mapped[int] = id_column()
    program_id: Mapped[int] = mapped_column(
        Id, ForeignKey("loyalty_programs.id", ondelete="CASCADE")
    )
    code: Mapped[str] = mapped_column(String(32))
    #: The business's own name for it; empty shows the code's translation.
    name: Mapped[str] = mapped_column(String(64), default="")
    rank: Mapped[int] = mapped_column(Integer)
    #: Rolling 12-month spend (yuan) or points needed to hold the tier.
    threshold: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal(1))
    #: One benefit per line, listed on the customer 360.
    benefits: Mapped[str] = mapped_column(Text, default="")


class LoyaltyReward(Base):
    """What points buy: a coupon, a discount or a gift, at a price in points."""

    __tablename__ = "loyalty_rewards"
    __table_args__ = (
        CheckConstraint("kind IN ('coupon','discount','gift')", "kind"),
        CheckConstraint("points_cost > 0", "points_cost"),
        CheckConstraint("value >= 0", "value"),
    )

    id: Mapped[int] = id_column()
    program_id: Mapped[int] = mapped_column(
        Id, ForeignKey("loyalty_programs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="coupon")
    points_cost: Mapped[int] = mapped_column(Points)
    value: Mapped[Decimal] = mapped_column(default=Decimal(0))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = created_column()


class LoyaltyAccount(Base):
    """A customer's points account (Odoo's loyalty card): the row a redemption locks.

    ``debt`` is what a refund took back beyond the points left, under the
    ``allow_negative`` policy: the balance is then ``-debt`` and the next credits pay it
    off before they can be spent.
    """

    __tablename__ = "loyalty_accounts"
    __table_args__ = (
        CheckConstraint("debt >= 0", "debt"),
        CheckConstraint("balance + debt >= 0", "balance"),
        CheckConstraint("debt = 0 OR balance = -debt", "debt_only_when_empty"),
    )

    id: Mapped[int] = id_column()
    customer_id: Mapped[int] = mapped_column(Id, ForeignKey("customers.id"), unique=True)
    program_id: Mapped[int] = mapped_column(Id, ForeignKey("loyalty_programs.id"))
    balance: Mapped[int] = mapped_column(Points, default=0)
    debt: Mapped[int] = mapped_column(Points, default=0)
    tier_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("loyalty_tiers.id", ondelete="SET NULL")
    )
    tier_since: Mapped[dt.datetime | None]
    #: When a review first found the customer below their tier (the grace period's start).
    below_tier_since: Mapped[dt.datetime | None]
    #: The last review period that looked at this account (a re-run skips it).
    reviewed_period: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = created_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LoyaltyEntry(Base):
    """One line of the ledger (Odoo's loyalty history): append-only, never changed.

    ``dedupe_key`` makes the system's own writes idempotent in the database itself: an
    order earns once (``order:<id>:earn``), is reversed once, a birthday bonus is given
    once a year, whichever process or retry writes it.
    """

    __tablename__ = "loyalty_entries"
    __table_args__ = (
        Index("ix_loyalty_entries_account_id_id", "account_id", "id"),
        Index("ix_loyalty_entries_account_id_kind_created_at", "account_id", "kind", "created_at"),
        CheckConstraint("kind IN ('earn','redeem','expire','reverse','adjust')", "kind"),
        CheckConstraint(
            "(kind = 'earn' AND points > 0) OR (kind IN ('redeem','expire') AND points < 0)"
            " OR (kind = 'reverse' AND points <= 0) OR (kind = 'adjust' AND points <> 0)",
            "points_sign",
        ),
        CheckConstraint("points > 0 OR kind = 'reverse' OR balance_after >= 0", "not_overdrawn"),
        CheckConstraint("shortfall >= 0 AND (shortfall = 0 OR kind = 'reverse')", "shortfall"),
        CheckConstraint(
            "source_type IN ('order','reward','job','manual','api','import')", "source_type"
        ),
    )

    id: Mapped[int] = id_column()
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("loyalty_accounts.id"))
    kind: Mapped[str] = mapped_column(String(8))
    points: Mapped[int] = mapped_column(Points)
    balance_after: Mapped[int] = mapped_column(Points)
    #: Points a claw-back could not take back because they were already spent.
    shortfall: Mapped[int] = mapped_column(Points, default=0)
    reason: Mapped[str] = mapped_column(String(500), default="")
    source_type: Mapped[str] = mapped_column(String(8), default="manual")
    source_id: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(Id, ForeignKey("orders.id"), index=True)
    reward_id: Mapped[int | None] = mapped_column(Id, ForeignKey("loyalty_rewards.id"))
    reverses_id: Mapped[int | None] = mapped_column(Id, ForeignKey("loyalty_entries.id"))
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    actor_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = created_column()


class LoyaltyLot(Base):
    """The points of one credit, with how many are left and when they expire."""

    __tablename__ = "loyalty_lots"
    __table_args__ = (
        # First-to-expire allocation reads an account's open lots in this order.
        Index(
            "ix_loyalty_lots_open",
            "account_id",
            "expires_at",
            "id",
            sqlite_where=text("remaining > 0"),
            postgresql_where=text("remaining > 0"),
        ),
        # The daily expiry finds the lots due.
        Index(
            "ix_loyalty_lots_due",
            "expires_at",
            sqlite_where=text("remaining > 0"),
            postgresql_where=text("remaining > 0"),
        ),
        CheckConstraint("points > 0", "points"),
        CheckConstraint("remaining >= 0 AND remaining <= points", "remaining"),
    )

    id: Mapped[int] = id_column()
    account_id: Mapped[int] = mapped_column(Id, ForeignKey("loyalty_accounts.id"))
    entry_id: Mapped[int] = mapped_column(Id, ForeignKey("loyalty_entries.id"), unique=True)
    points: Mapped[int] = mapped_column(Points)
    remaining: Mapped[int] = mapped_column(Points)
    earned_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    #: For writing a credit in one flush (the entry's id is not known before); never read.
    entry: Mapped[LoyaltyEntry] = relationship(lazy="raise")


class LoyaltyAllocation(Base):
    """``points`` of lot ``lot_id`` consumed by debit ``entry_id``."""

    __tablename__ = "loyalty_allocations"
    __table_args__ = (CheckConstraint("points > 0", "points"),)

    id: Mapped[int] = id_column()
    entry_id: Mapped[int] = mapped_column(Id, ForeignKey("loyalty_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(Id, ForeignKey("loyalty_lots.id"), index=True)
    points: Mapped[int] = mapped_column(Points)
    #: For writing a debit in one flush; never read.
    entry: Mapped[LoyaltyEntry] = relationship(lazy="raise")


class LoyaltyJobRun(Base):
    """One step of ``patron jobs run`` for one period: a second run of the period skips it."""

    __tablename__ = "loyalty_job_runs"
    __table_args__ = (UniqueConstraint("job", "period"),)

    id: Mapped[int] = id_column()
    job: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = created_column()
    finished_at: Mapped[dt.datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
