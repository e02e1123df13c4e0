"""The ledger's invariants, checked in SQL over every account (or a few).

The CHECK constraints refuse a lot below zero and a redemption beyond the balance row by
row; what no single row can say is checked here, by sums:

1. an account's balance is the sum of its entries;
2. each entry's ``balance_after`` is the running sum of its account's entries;
3. a lot's remaining points are its points less what was allocated from it;
4. an account's balance is the sum of its lots' remaining points less its debt;
5. its debt is what its debits took beyond the lots they consumed;
6. no debit consumed more than it took, nor a lot of another account.

The tests run this after every step of a random walk, and the benchmark at its end, so
the statements are plain SQL written once (both databases speak it), with the accounts to
look at as one expanding parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, text

if TYPE_CHECKING:
    from sqlalchemy import TextClause
    from sqlalchemy.orm import Session

__all__ = ["check_invariants"]

_ACCOUNTS = """
SELECT a.id, a.balance, a.debt,
       COALESCE(e.points, 0), COALESCE(l.remaining, 0),
       COALESCE(o.points, 0) - COALESCE(x.points, 0)
FROM loyalty_accounts a
LEFT JOIN (SELECT account_id, SUM(points) AS points FROM loyalty_entries
           WHERE {entries} GROUP BY account_id) e ON e.account_id = a.id
LEFT JOIN (SELECT account_id, SUM(remaining) AS remaining FROM loyalty_lots
           WHERE {lots} GROUP BY account_id) l ON l.account_id = a.id
LEFT JOIN (SELECT account_id, SUM(-points) AS points FROM loyalty_entries
           WHERE points < 0 AND {entries} GROUP BY account_id) o ON o.account_id = a.id
LEFT JOIN (SELECT e.account_id, SUM(al.points) AS points FROM loyalty_allocations al
           JOIN loyalty_entries e ON e.id = al.entry_id
           WHERE {entries_e} GROUP BY e.account_id) x ON x.account_id = a.id
WHERE {accounts}
ORDER BY a.id
"""

_RUNNING = """
SELECT id, account_id, balance_after, running FROM (
  SELECT id, account_id, balance_after,
         SUM(points) OVER (PARTITION BY account_id ORDER BY id) AS running
  FROM loyalty_entries WHERE {entries}
) r WHERE balance_after <> running ORDER BY id LIMIT 20
"""

_LOTS = """
SELECT l.id, l.points, l.remaining, COALESCE(SUM(al.points), 0)
FROM loyalty_lots l LEFT JOIN loyalty_allocations al ON al.lot_id = l.id
WHERE {lots_l}
GROUP BY l.id, l.points, l.remaining
HAVING l.remaining <> l.points - COALESCE(SUM(al.points), 0)
    OR l.remaining < 0 OR l.remaining > l.points
ORDER BY l.id LIMIT 20
"""

_DEBITS = """
SELECT e.id, e.points, SUM(al.points)
FROM loyalty_entries e JOIN loyalty_allocations al ON al.entry_id = e.id
WHERE {entries_e}
GROUP BY e.id, e.points
HAVING SUM(al.points) > -e.points OR e.points > 0
ORDER BY e.id LIMIT 20
"""

_CROSSED = """
SELECT al.id FROM loyalty_allocations al
JOIN loyalty_entries e ON e.id = al.entry_id
JOIN loyalty_lots l ON l.id = al.lot_id
WHERE l.account_id <> e.account_id AND {entries_e}
ORDER BY al.id LIMIT 20
"""


@cache
def _statement(template: str, some: bool) -> TextClause:
    """``template`` for every account, or for the accounts of the ``ids`` parameter."""
    columns = {
        "accounts": "a.id",
        "entries": "account_id",
        "entries_e": "e.account_id",
        "lots": "account_id",
        "lots_l": "l.account_id",
    }
    where = {name: f"{column} IN :ids" if some else "1 = 1" for name, column in columns.items()}
    statement = text(template.format(**where))
    return statement.bindparams(bindparam("ids", expanding=True)) if some else statement


def check_invariants(session: Session, account_ids: Iterable[int] | None = None) -> list[str]:
    """Every broken invariant, one sentence each (an empty list when the ledger is sound)."""
    ids = sorted(set(account_ids)) if account_ids is not None else None
    if ids is not None and not ids:
        return []
    params = {"ids": ids} if ids is not None else {}

    def rows(template: str):
        return session.execute(_statement(template, ids is not None), params).all()

    problems: list[str] = []
    for account, balance, debt, entries, remaining, unallocated in rows(_ACCOUNTS):
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
    for entry, account, after, running in rows(_RUNNING):
        problems.append(
            f"account {account}: entry {entry} says balance {after}, the entries sum to {running}"
        )
    for lot, points, remaining, used in rows(_LOTS):
        problems.append(f"lot {lot}: {points} points, {used} allocated, {remaining} remaining")
    for entry, points, used in rows(_DEBITS):
        problems.append(f"entry {entry} ({points} points) consumed {used} points of lots")
    for (allocation,) in rows(_CROSSED):
        problems.append(f"allocation {allocation} takes from another account's lot")
    return problems
