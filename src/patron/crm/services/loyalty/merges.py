"""When two customer records turn out to be one person, their points become one account.

:func:`patron.crm.services.identity.merge_customers` calls :func:`merge_accounts` in its
transaction. A merged-away customer's id resolves to the survivor everywhere, so points
left on the merged record's account could never be spent again: they move.

- If the survivor has no account, the merged record's account (its whole history) is
  handed to the survivor.
- If both have one, each lot with points left moves as it is -- same points, same
  earning date, same expiry -- through the ledger: one adjustment out of the merged
  account consuming its lots, and one adjustment into the survivor's per lot. A refund
  debt stays with the merged record's history (and is named in the audit event).

Either way the survivor may now qualify for a higher tier (their orders were moved too),
which applies at once.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from patron.crm.services.loyalty import events, ledger, tiers
from patron.crm.services.loyalty.accounts import ensure_accounts, lock_accounts
from patron.crm.services.loyalty.program import get_program
from patron.crm.tables import LoyaltyAccount
from patron.crm.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import User

__all__ = ["merge_accounts"]


def merge_accounts(
    session: Session,
    survivor_id: int,
    merged_id: int,
    *,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Move customer ``merged_id``'s points to ``survivor_id``; how many points moved."""
    now = now or utcnow()
    merged = session.scalars(
        select(LoyaltyAccount).where(LoyaltyAccount.customer_id == merged_id)
    ).one_or_none()
    if merged is None:
        return 0
    program = get_program(session)
    survivor = session.scalars(
        select(LoyaltyAccount).where(LoyaltyAccount.customer_id == survivor_id)
    ).one_or_none()
    if survivor is None:
        (merged,) = lock_accounts(session, [merged.id])
        session.execute(
            update(LoyaltyAccount)
            .where(LoyaltyAccount.id == merged.id)
            .values(customer_id=survivor_id, updated_at=now)
            .execution_options(synchronize_session="fetch")
        )
        moved = max(merged.balance, 0)
        events.accounts_merged(
            session, merged, survivor_id, merged_id, points=moved, debt=0, actor=actor
        )
        tiers.upgrade_if_qualified(session, merged, program, now=now, actor=actor)
        return moved
    ensure_accounts(session, [survivor_id], program=program, now=now)
    accounts = {a.id: a for a in lock_accounts(session, [merged.id, survivor.id])}
    merged, survivor = accounts[merged.id], accounts[survivor.id]
    shares = [(lot, lot.remaining) for lot in ledger.open_lots(session, merged)]
    moved = sum(share for _lot, share in shares)
    if moved:
        reason = f"merged into customer {survivor_id}"
        out = ledger.Posting(reason=reason, source_id=f"merge:{merged_id}", actor=actor)
        ledger.debit(
            session,
            merged,
            kind="adjust",
            points=moved,
            allocations=shares,
            posting=out,
            now=now,
        )
        into = ledger.Posting(
            reason=f"from customer {merged_id}", source_id=f"merge:{merged_id}", actor=actor
        )
        for lot, share in shares:  # each lot moves with its own dates
            ledger.credit(
                session,
                survivor,
                program,
                kind="adjust",
                points=share,
                posting=into,
                now=now,
                earned_at=lot.earned_at,
                expires_at=lot.expires_at,
            )
    events.accounts_merged(
        session, survivor, survivor_id, merged_id, points=moved, debt=merged.debt, actor=actor
    )
    tiers.upgrade_if_qualified(session, survivor, program, now=now, actor=actor)
    return moved
