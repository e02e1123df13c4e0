"""What the 360, the API and the dashboard show of points: read-only, never writing.

A customer without an account reads as a balance of 0 in the lowest tier; the programme
before its first use reads as its defaults (:func:`read_program`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from patron.crm.services import customers
from patron.crm.services.loyalty.accounts import find_account
from patron.crm.services.loyalty.program import program_rewards, read_program
from patron.crm.services.loyalty.tiers import qualifications, tier_for
from patron.crm.tables import LoyaltyAccount, LoyaltyEntry, LoyaltyLot
from patron.crm.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import LoyaltyTier

__all__ = [
    "EXPIRING_DAYS",
    "account_summary",
    "points_view",
    "liability",
    "entry_dict",
    "lot_dict",
    "tier_dict",
]

#: "Expiring soon" means within this many days.
EXPIRING_DAYS = 30


def entry_dict(entry: LoyaltyEntry) -> dict[str, Any]:
    """One ledger entry as the API and pages show it."""
    return {
        "id": entry.id,
        "kind": entry.kind,
        "points": entry.points,
        "balance_after": entry.balance_after,
        "shortfall": entry.shortfall,
        "reason": entry.reason,
        "source_type": entry.source_type,
        "source_id": entry.source_id,
        "order_id": entry.order_id,
        "reward_id": entry.reward_id,
        "actor": entry.actor_name or None,
        "created_at": entry.created_at,
    }


def lot_dict(lot: LoyaltyLot) -> dict[str, Any]:
    """One lot: its size, what is left and when it expires."""
    return {
        "id": lot.id,
        "entry_id": lot.entry_id,
        "points": lot.points,
        "remaining": lot.remaining,
        "earned_at": lot.earned_at,
        "expires_at": lot.expires_at,
    }


def tier_dict(tier: LoyaltyTier | None) -> dict[str, Any] | None:
    """A tier's code, name, rank, threshold, multiplier and benefits (one per line)."""
    if tier is None:
        return None
    return {
        "code": tier.code,
        "name": tier.name,
        "rank": tier.rank,
        "threshold": Decimal(tier.threshold),
        "multiplier": Decimal(tier.multiplier),
        "benefits": [line.strip() for line in (tier.benefits or "").splitlines() if line.strip()],
    }


def _history(session: Session, account_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    query = (
        select(LoyaltyEntry)
        .where(LoyaltyEntry.account_id == account_id)
        .order_by(LoyaltyEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [entry_dict(e) for e in session.scalars(query)]


def _open_lots(session: Session, account_id: int) -> list[dict[str, Any]]:
    query = (
        select(LoyaltyLot)
        .where(LoyaltyLot.account_id == account_id, LoyaltyLot.remaining > 0)
        .order_by(LoyaltyLot.expires_at.is_(None), LoyaltyLot.expires_at, LoyaltyLot.id)
    )
    return [lot_dict(lot) for lot in session.scalars(query)]


def points_view(
    session: Session, customer_id: int, *, history_limit: int = 50, history_offset: int = 0
) -> dict[str, Any]:
    """``{"customer_id", "balance", "debt", "tier", "lots", "history", "history_total"}``.

    ``lots`` are the lots with points left, first to expire first; ``history`` the
    entries, newest first.
    """
    customer = customers.get_customer(session, customer_id)
    program, tiers = read_program(session)
    account = find_account(session, customer.id)
    if account is None:
        return {
            "customer_id": customer.id,
            "balance": 0,
            "debt": 0,
            "tier": tier_dict(tiers[0] if tiers else None),
            "lots": [],
            "history": [],
            "history_total": 0,
        }
    total = session.scalar(
        select(func.count()).select_from(LoyaltyEntry).where(LoyaltyEntry.account_id == account.id)
    )
    return {
        "customer_id": customer.id,
        "balance": account.balance,
        "debt": account.debt,
        "tier": tier_dict(next((t for t in tiers if t.id == account.tier_id), None)),
        "lots": _open_lots(session, account.id),
        "history": _history(session, account.id, history_limit, history_offset),
        "history_total": int(total or 0),
    }


def account_summary(
    session: Session, customer_id: int, *, now: dt.datetime | None = None, history_limit: int = 10
) -> dict[str, Any]:
    """The points panel of the customer 360.

    Returns
    -------
    dict
        ``balance``, ``debt``, ``member`` (whether an account exists), ``tier`` and
        ``tier_benefits`` (the tier's benefits, one per item), ``tier_since``,
        ``qualification`` (12-month spend or points, by the programme's basis), ``basis``,
        ``next_tier`` and ``to_next_tier`` (what is missing to reach it), ``grace_since``
        (when a review found them below their tier), ``lots`` (open, first to expire
        first), ``history`` (newest first), ``history_total``, ``expiring_soon``
        (``{"points", "days", "first"}``), ``value`` (the balance in yuan),
        ``rewards`` (active rewards, cheapest first).
    """
    now = now or utcnow()
    view = points_view(session, customer_id, history_limit=history_limit)
    program, tiers = read_program(session)
    account = find_account(session, view["customer_id"])
    probe = account or LoyaltyAccount(id=0, customer_id=view["customer_id"])
    value = qualifications(session, program, [probe], now)[probe.id] if tiers else Decimal(0)
    current = next((t for t in tiers if account and t.id == account.tier_id), None)
    if current is None and tiers:
        current = tiers[0] if account else tier_for(tiers, value)
    above = [t for t in tiers if current is not None and t.rank > current.rank]
    soon = now + dt.timedelta(days=EXPIRING_DAYS)
    expiring = [lot for lot in view["lots"] if lot["expires_at"] and lot["expires_at"] <= soon]
    tier = tier_dict(current)
    return {
        **view,
        "member": account is not None,
        "tier": tier,
        "tier_benefits": tier["benefits"] if tier else [],
        "tier_since": account.tier_since if account else None,
        "grace_since": account.below_tier_since if account else None,
        "basis": program.tier_basis,
        "qualification": value,
        "next_tier": tier_dict(above[0]) if above else None,
        "to_next_tier": max(Decimal(above[0].threshold) - value, Decimal(0)) if above else None,
        "expiring_soon": {
            "points": sum(lot["remaining"] for lot in expiring),
            "days": EXPIRING_DAYS,
            "first": expiring[0]["expires_at"] if expiring else None,
        },
        "value": _money(Decimal(max(view["balance"], 0)) * Decimal(program.point_value)),
        "point_value": Decimal(program.point_value),
        "rewards": [
            {"id": r.id, "name": r.name, "kind": r.kind, "points_cost": r.points_cost}
            for r in (
                program_rewards(session, program, active_only=True) if _saved(program) else []
            )
        ],
    }


def liability(session: Session, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The points the business owes, and what they are worth.

    Returns ``{"points", "value", "accounts", "members", "expiring_soon", "due", "debt",
    "point_value"}``:
    ``points`` are the unspent points of every lot (those past their expiry included
    until the daily job expires them: they are ``due``), ``value`` their worth in yuan at
    the programme's point value, ``accounts`` how many members hold points, ``debt`` the
    points refunds left owed.
    """
    now = now or utcnow()
    program, _tiers = read_program(session)
    soon = now + dt.timedelta(days=EXPIRING_DAYS)
    remaining = LoyaltyLot.remaining
    expires = LoyaltyLot.expires_at
    points, expiring, due = session.execute(
        select(
            func.coalesce(func.sum(remaining), 0),
            func.coalesce(func.sum(remaining).filter(expires <= soon), 0),
            func.coalesce(func.sum(remaining).filter(expires <= now), 0),
        ).where(remaining > 0)
    ).one()
    members, holding, debt = session.execute(
        select(
            func.count(),
            func.count().filter(LoyaltyAccount.balance > 0),
            func.coalesce(func.sum(LoyaltyAccount.debt), 0),
        )
    ).one()
    value = Decimal(program.point_value)
    return {
        "points": int(points),
        "value": _money(Decimal(int(points)) * value),
        "accounts": int(holding),
        "members": int(members),
        "expiring_soon": int(expiring),
        "expiring_days": EXPIRING_DAYS,
        "due": int(due),
        "debt": int(debt),
        "point_value": value,
    }


def _saved(program: Any) -> bool:
    from sqlalchemy import inspect

    return inspect(program).persistent


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))
