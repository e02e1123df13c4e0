"""Membership tiers: qualified by the last 12 months, up at once, down only after a grace.

A customer qualifies for the highest tier whose threshold their rolling 12-month spend
(completed orders, returns netted) or points earned (earn entries, by when the points were
earned) reaches. They move **up** as soon as an earn shows they qualify. They move **down**
only at the periodic review (monthly, quarterly...), and only once a grace period has
passed since a review first found them below their tier; qualifying again in between
cancels the grace. So nobody flips between two tiers from one week to the next.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from patron.crm.services.loyalty import events
from patron.crm.services.loyalty.program import program_tiers
from patron.crm.services.loyalty.rules import add_months
from patron.crm.tables import Customer, LoyaltyAccount, LoyaltyEntry, LoyaltyLot, Order

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import LoyaltyProgram, LoyaltyTier, User

__all__ = [
    "qualifications",
    "tier_for",
    "upgrade_if_qualified",
    "review_account",
    "qualified_customers",
]


def _window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return add_months(now, -12), now


def qualifications(
    session: Session, program: LoyaltyProgram, accounts: Sequence[LoyaltyAccount], now: dt.datetime
) -> dict[int, Decimal]:
    """Each account's rolling 12-month spend or earned points at ``now``, by account id."""
    start, end = _window(now)
    if not accounts:
        return {}
    if program.tier_basis == "spend":
        by_customer = {a.customer_id: a.id for a in accounts}
        rows = session.execute(
            select(Order.customer_id, func.sum(Order.amount))
            .where(
                Order.customer_id.in_(list(by_customer)),
                Order.status == "completed",
                Order.ordered_at > start,
                Order.ordered_at <= end,
            )
            .group_by(Order.customer_id)
        ).all()
        values = {by_customer[customer]: Decimal(total or 0) for customer, total in rows}
    else:
        rows = session.execute(
            select(LoyaltyLot.account_id, func.sum(LoyaltyLot.points))
            .join(LoyaltyEntry, LoyaltyEntry.id == LoyaltyLot.entry_id)
            .where(
                LoyaltyLot.account_id.in_([a.id for a in accounts]),
                LoyaltyEntry.kind == "earn",
                LoyaltyLot.earned_at > start,
                LoyaltyLot.earned_at <= end,
            )
            .group_by(LoyaltyLot.account_id)
        ).all()
        values = {account: Decimal(total or 0) for account, total in rows}
    return {a.id: values.get(a.id, Decimal(0)) for a in accounts}


def tier_for(tiers: Sequence[LoyaltyTier], value: Decimal) -> LoyaltyTier | None:
    """The highest of ``tiers`` (lowest first) whose threshold ``value`` reaches."""
    found = tiers[0] if tiers else None
    for tier in tiers:
        if value >= tier.threshold:
            found = tier
    return found


def _current(tiers: Sequence[LoyaltyTier], account: LoyaltyAccount) -> LoyaltyTier | None:
    return next((t for t in tiers if t.id == account.tier_id), None)


def _move(
    session: Session,
    account: LoyaltyAccount,
    old: LoyaltyTier | None,
    new: LoyaltyTier,
    *,
    why: str,
    value: Decimal,
    now: dt.datetime,
    actor: User | None,
) -> None:
    account.tier_id = new.id
    account.tier_since = now
    account.below_tier_since = None
    events.tier_changed(
        session, account, old=old, new=new, why=why, qualification=value, actor=actor
    )


def upgrade_if_qualified(
    session: Session,
    account: LoyaltyAccount,
    program: LoyaltyProgram,
    *,
    now: dt.datetime,
    actor: User | None = None,
    tiers: Sequence[LoyaltyTier] | None = None,
) -> LoyaltyTier | None:
    """Move the (locked) account up at once if it qualifies higher; the new tier, or None.

    Qualifying for the current tier again ends a grace period that a review started.
    """
    tiers = tiers if tiers is not None else program_tiers(session, program)
    value = qualifications(session, program, [account], now)[account.id]
    target, current = tier_for(tiers, value), _current(tiers, account)
    if target is None:
        return None
    if current is None or target.rank > current.rank:
        _move(session, account, current, target, why="upgrade", value=value, now=now, actor=actor)
        session.flush()
        return target
    if target.rank == current.rank and account.below_tier_since is not None:
        account.below_tier_since = None
        session.flush()
    return None


def review_account(
    session: Session,
    account: LoyaltyAccount,
    program: LoyaltyProgram,
    tiers: Sequence[LoyaltyTier],
    value: Decimal,
    *,
    now: dt.datetime,
    period: str,
    actor: User | None = None,
) -> str:
    """The periodic review of one (locked) account: ``"up"``, ``"down"``, ``"grace"`` or ``""``.

    Below its tier, the account starts (or continues) its grace period, and goes down to
    the tier it qualifies for at the first review ``tier_grace_days`` or more after the
    grace began.
    """
    outcome = ""
    target, current = tier_for(tiers, value), _current(tiers, account)
    if target is not None and (current is None or target.rank > current.rank):
        _move(session, account, current, target, why="upgrade", value=value, now=now, actor=actor)
        outcome = "up"
    elif target is not None and current is not None and target.rank < current.rank:
        if account.below_tier_since is None:
            account.below_tier_since = now
        if now - account.below_tier_since >= dt.timedelta(days=program.tier_grace_days):
            _move(
                session, account, current, target, why="review", value=value, now=now, actor=actor
            )
            outcome = "down"
        else:
            outcome = "grace"
    else:
        account.below_tier_since = None
    account.reviewed_period = period
    return outcome


def qualified_customers(
    session: Session, program: LoyaltyProgram, tiers: Sequence[LoyaltyTier], now: dt.datetime
) -> Iterable[int]:
    """Customers without an account whose 12-month spend reaches a tier above the lowest.

    They become members at the review: a tier by spend must not wait for a first point.
    """
    if program.tier_basis != "spend" or len(tiers) < 2:
        return []
    start, end = _window(now)
    spend = func.sum(Order.amount)
    query = (
        select(Order.customer_id)
        .join(Customer, Customer.id == Order.customer_id)
        .where(
            Order.status == "completed",
            Order.ordered_at > start,
            Order.ordered_at <= end,
            Customer.merged_into_id.is_(None),
            ~select(LoyaltyAccount.id)
            .where(LoyaltyAccount.customer_id == Order.customer_id)
            .exists(),
        )
        .group_by(Order.customer_id)
        .having(spend >= tiers[1].threshold)
    )
    return list(session.scalars(query))
