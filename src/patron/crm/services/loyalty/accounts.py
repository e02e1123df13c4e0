"""Finding and locking points accounts.

Every change of a balance starts by locking the account's row, and keeps the lock until
the transaction ends: the balance it checks is then the balance it changes. PostgreSQL
locks the row with ``SELECT ... FOR UPDATE``; SQLite has no row locks, and every write
transaction there already holds the database's single write lock from its first
statement (``BEGIN IMMEDIATE``, :mod:`patron.crm.db`). Lots are only ever changed under
their account's lock, so they need no lock of their own.

Several accounts are locked in primary-key order (as saleor's ``lock_objects`` does), so
two transactions that each lock several accounts can never wait for each other in a
circle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import select

from patron.crm.services.loyalty.sql import insert_ignore
from patron.crm.tables import LoyaltyAccount, LoyaltyTier

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import LoyaltyProgram

__all__ = [
    "LOCK_ROWS",
    "find_account",
    "lock_account",
    "lock_account_id",
    "lock_accounts",
    "ensure_accounts",
]

#: Lock the account row before reading its balance. Only the tests that show what goes
#: wrong without the lock turn this off.
LOCK_ROWS = True


def _locked(query):
    query = query.execution_options(populate_existing=True)
    return query.with_for_update() if LOCK_ROWS else query


def find_account(session: Session, customer_id: int) -> LoyaltyAccount | None:
    """The customer's account, unlocked (for reading), or ``None``."""
    query = select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id)
    return session.scalars(query).one_or_none()


def lock_account(
    session: Session,
    customer_id: int,
    *,
    program: LoyaltyProgram | None = None,
    now: dt.datetime | None = None,
    create: bool = True,
) -> LoyaltyAccount | None:
    """The customer's account, locked until the transaction ends; opened when ``create``.

    Two first earns at once both insert the account; the unique customer id makes the
    second insert do nothing, and both then lock the one row. Opening one needs the
    ``program`` and ``now``.
    """
    query = _locked(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id))
    account = session.scalars(query).one_or_none()
    if account is None and create:
        if program is None or now is None:
            raise ValueError("opening an account needs the programme and the time")
        ensure_accounts(session, [customer_id], program=program, now=now)
        account = session.scalars(query).one()
    return account


def lock_account_id(session: Session, account_id: int) -> LoyaltyAccount:
    """The account ``account_id``, locked until the transaction ends."""
    return session.scalars(
        _locked(select(LoyaltyAccount).where(LoyaltyAccount.id == account_id))
    ).one()


def lock_accounts(session: Session, account_ids: Iterable[int]) -> list[LoyaltyAccount]:
    """The accounts ``account_ids``, locked in primary-key order."""
    ids = sorted(set(account_ids))
    if not ids:
        return []
    query = select(LoyaltyAccount).where(LoyaltyAccount.id.in_(ids)).order_by(LoyaltyAccount.id)
    return list(session.scalars(_locked(query)))


def ensure_accounts(
    session: Session, customer_ids: Iterable[int], *, program: LoyaltyProgram, now: dt.datetime
) -> None:
    """Open an account, in the lowest tier, for each customer who has none yet."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    base = session.scalar(
        select(LoyaltyTier.id)
        .where(LoyaltyTier.program_id == program.id)
        .order_by(LoyaltyTier.rank)
        .limit(1)
    )
    rows = [
        {
            "customer_id": customer_id,
            "program_id": program.id,
            "balance": 0,
            "debt": 0,
            "tier_id": base,
            "tier_since": now,
            "created_at": now,
            "updated_at": now,
        }
        for customer_id in ids
    ]
    for start in range(0, len(rows), 1000):
        session.execute(
            insert_ignore(session, LoyaltyAccount, ["customer_id"]), rows[start : start + 1000]
        )
