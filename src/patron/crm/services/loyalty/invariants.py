"""The ledger's invariants, checked in SQL over every account (or a few).

The CHECK constraints refuse a lot below zero and a redemption beyond the balance row by
row; what no single row can say is checked here, by sums:

1. an account's balance is the sum of its entries;
2. each entry's ``balance_after`` is the running sum of its account's entries;
3. a lot's remaining points are its points less what was allocated from it;
4. an account's balance is the sum of its lots' remaining points less its debt;
5. its debt is what its debits took beyond the lots they consumed;
6. no debit consumed more than it took, nor a lot of another account.

The tests run this after every step of a random walk; the benchmark at its end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, literal, select

from patron.crm.tables import LoyaltyAccount, LoyaltyAllocation, LoyaltyEntry, LoyaltyLot

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["check_invariants"]


def check_invariants(session: Session, account_ids: Iterable[int] | None = None) -> list[str]:
    """Every broken invariant, one sentence each (an empty list when the ledger is sound)."""
    ids = sorted(set(account_ids)) if account_ids is not None else None

    def only(column):
        return column.in_(ids) if ids is not None else literal(True)

    problems: list[str] = []
    a, e, lot, al = LoyaltyAccount, LoyaltyEntry, LoyaltyLot, LoyaltyAllocation

    entry_sums = (
        select(e.account_id, func.sum(e.points).label("points"))
        .where(only(e.account_id))
        .group_by(e.account_id)
        .subquery()
    )
    lot_sums = (
        select(lot.account_id, func.sum(lot.remaining).label("remaining"))
        .where(only(lot.account_id))
        .group_by(lot.account_id)
        .subquery()
    )
    owed = (
        select(e.account_id, func.sum(-e.points).label("points"))
        .where(only(e.account_id), e.points < 0)
        .group_by(e.account_id)
        .subquery()
    )
    allocated = (
        select(e.account_id, func.sum(al.points).label("points"))
        .join(e, e.id == al.entry_id)
        .where(only(e.account_id))
        .group_by(e.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            a.id,
            a.balance,
            a.debt,
            func.coalesce(entry_sums.c.points, 0),
            func.coalesce(lot_sums.c.remaining, 0),
            func.coalesce(owed.c.points, 0) - func.coalesce(allocated.c.points, 0),
        )
        .outerjoin(entry_sums, entry_sums.c.account_id == a.id)
        .outerjoin(lot_sums, lot_sums.c.account_id == a.id)
        .outerjoin(owed, owed.c.account_id == a.id)
        .outerjoin(allocated, allocated.c.account_id == a.id)
        .where(only(a.id))
        .order_by(a.id)
    ).all()
    for account, balance, debt, entries, remaining, unallocated in rows:
        if balance != entries:
            problems.append(f"account {account}: balance {balance} != sum of entries {entries}")
        if balance != remaining - debt:
            problems.append(
                f"account {account}: balance {balance} != lots remaining {remaining} - debt {debt}"
            )
        if debt != unallocated:
            problems.append(
                f"account {account}: debt {debt} != debits not covered by lots {unallocated}"
            )
        if debt < 0 or balance + debt < 0 or (debt and balance != -debt):
            problems.append(f"account {account}: balance {balance} with debt {debt}")

    running = (
        select(
            e.id,
            e.account_id,
            e.balance_after,
            func.sum(e.points).over(partition_by=e.account_id, order_by=e.id).label("running"),
        )
        .where(only(e.account_id))
        .subquery()
    )
    for entry, account, after, total in session.execute(
        select(running).where(running.c.balance_after != running.c.running).limit(20)
    ):
        problems.append(
            f"account {account}: entry {entry} says balance {after}, the entries sum to {total}"
        )

    lot_use = (
        select(lot.id, lot.points, lot.remaining, func.coalesce(func.sum(al.points), 0))
        .outerjoin(al, al.lot_id == lot.id)
        .where(only(lot.account_id))
        .group_by(lot.id, lot.points, lot.remaining)
        .having(
            (lot.remaining != lot.points - func.coalesce(func.sum(al.points), 0))
            | (lot.remaining < 0)
            | (lot.remaining > lot.points)
        )
        .limit(20)
    )
    for lot_id, points, remaining, used in session.execute(lot_use):
        problems.append(f"lot {lot_id}: {points} points, {used} allocated, {remaining} remaining")

    over = (
        select(e.id, e.points, func.sum(al.points))
        .join(al, al.entry_id == e.id)
        .where(only(e.account_id))
        .group_by(e.id, e.points)
        .having((func.sum(al.points) > -e.points) | (e.points > 0))
        .limit(20)
    )
    for entry, points, used in session.execute(over):
        problems.append(f"entry {entry} ({points} points) consumed {used} points of lots")

    crossed = (
        select(al.id)
        .join(e, e.id == al.entry_id)
        .join(lot, and_(lot.id == al.lot_id, lot.account_id != e.account_id))
        .where(only(e.account_id))
        .limit(20)
    )
    for allocation in session.scalars(crossed):
        problems.append(f"allocation {allocation} takes from another account's lot")
    return problems
