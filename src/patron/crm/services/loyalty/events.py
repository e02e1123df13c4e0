"""The loyalty events of the audit trail: one function per event (as saleor's giftcard events).

The ledger is the points' own history: every entry records its actor, reason and source,
and is never changed, so an earn or a redemption needs no second record. The audit trail
gets what changes the rules or overrides them, and what a manager must be able to find
later: a programme change, a manual adjustment, a refund that could not take back every
point (or left a debt), a tier change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from patron.crm.services import audit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import (
        AuditEvent,
        LoyaltyAccount,
        LoyaltyEntry,
        LoyaltyProgram,
        LoyaltyTier,
        User,
    )

__all__ = [
    "program_updated",
    "points_adjusted",
    "points_reversed",
    "tier_changed",
    "accounts_merged",
]


def program_updated(
    session: Session,
    program: LoyaltyProgram,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    actor: User | None,
) -> AuditEvent:
    """``loyalty.program_update``: the rules, tiers or rewards that changed."""
    return audit.record(
        session,
        actor=actor,
        action="loyalty.program_update",
        object_type="loyalty_program",
        object_id=program.id,
        before=before,
        after=after,
    )


def points_adjusted(
    session: Session, account: LoyaltyAccount, entry: LoyaltyEntry, *, actor: User | None
) -> AuditEvent:
    """``loyalty.adjust``: a manager's correction, with the balance before and after."""
    return audit.record(
        session,
        actor=actor,
        action="loyalty.adjust",
        object_type="customer",
        object_id=account.customer_id,
        before={"balance": entry.balance_after - entry.points},
        after={
            "balance": entry.balance_after,
            "points": entry.points,
            "reason": entry.reason,
            "entry_id": entry.id,
        },
    )


def points_reversed(
    session: Session,
    account: LoyaltyAccount,
    entry: LoyaltyEntry,
    *,
    earned: int,
    policy: str,
    debt_before: int,
    actor: User | None,
) -> AuditEvent:
    """``loyalty.reverse``: a refunded order's points taken back, and what could not be.

    Recorded for every reversal, so a shortfall (claw-back) or a negative balance
    (allow-negative) is never silent.
    """
    return audit.record(
        session,
        actor=actor,
        action="loyalty.reverse",
        object_type="customer",
        object_id=account.customer_id,
        before={"balance": entry.balance_after - entry.points, "debt": debt_before},
        after={
            "balance": entry.balance_after,
            "debt": account.debt,
            "order_id": entry.order_id,
            "earned": earned,
            "reversed": -entry.points,
            "shortfall": entry.shortfall,
            "policy": policy,
            "entry_id": entry.id,
        },
    )


def tier_changed(
    session: Session,
    account: LoyaltyAccount,
    *,
    old: LoyaltyTier | None,
    new: LoyaltyTier | None,
    why: str,
    qualification: Any,
    actor: User | None,
) -> AuditEvent:
    """``loyalty.tier_change``: an upgrade (at once) or a downgrade (at a review)."""
    return audit.record(
        session,
        actor=actor,
        action="loyalty.tier_change",
        object_type="customer",
        object_id=account.customer_id,
        before={"tier": old.code if old is not None else None},
        after={
            "tier": new.code if new is not None else None,
            "why": why,
            "qualification": qualification,
        },
    )


def accounts_merged(
    session: Session,
    account: LoyaltyAccount,
    survivor_id: int,
    merged_id: int,
    *,
    points: int,
    debt: int,
    actor: User | None,
) -> AuditEvent:
    """``loyalty.merge``: a merged-away customer's points moved to the survivor's account."""
    return audit.record(
        session,
        actor=actor,
        action="loyalty.merge",
        object_type="customer",
        object_id=survivor_id,
        before={"merged_id": merged_id},
        after={
            "merged_id": merged_id,
            "account_id": account.id,
            "points": points,
            "debt_left": debt,
        },
    )
