"""The ledger's two movements, on a locked account: a credit opens a lot, a debit consumes lots.

Everything that changes a balance goes through :func:`credit` or :func:`debit`, which
keep three numbers equal at every commit -- the account's balance, the sum of its entries,
and the sum of its lots' remaining points less its refund debt -- and write each entry's
``balance_after``. The caller holds the account's lock (:mod:`.accounts`).

A debit consumes lots first-to-expire first (lots that never expire last, then oldest
first), and lots already past their expiry are expired before anything else may take them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, case, func, select

from patron.crm.services.loyalty.rules import add_months
from patron.crm.tables import LoyaltyAllocation, LoyaltyEntry, LoyaltyLot

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import LoyaltyAccount, LoyaltyProgram, User

__all__ = [
    "Posting",
    "credit",
    "debit",
    "open_lots",
    "lots_for_debit",
    "expire_due",
    "take",
    "lots_by_expiry",
]


@dataclass(frozen=True)
class Posting:
    """Who wrote an entry, why, and what it came from."""

    reason: str = ""
    source_type: str = "manual"
    source_id: str | None = None
    order_id: int | None = None
    reward_id: int | None = None
    reverses_id: int | None = None
    dedupe_key: str | None = None
    actor: User | None = None


def _entry(
    account: LoyaltyAccount, kind: str, points: int, posting: Posting, now: dt.datetime
) -> LoyaltyEntry:
    actor = posting.actor
    return LoyaltyEntry(
        account_id=account.id,
        kind=kind,
        points=points,
        balance_after=account.balance + points,
        shortfall=0,
        reason=posting.reason,
        source_type=posting.source_type,
        source_id=posting.source_id,
        order_id=posting.order_id,
        reward_id=posting.reward_id,
        reverses_id=posting.reverses_id,
        dedupe_key=posting.dedupe_key,
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.username if actor is not None else "",
        created_at=now,
    )


def credit(
    session: Session,
    account: LoyaltyAccount,
    program: LoyaltyProgram,
    *,
    kind: str,
    points: int,
    posting: Posting,
    now: dt.datetime,
    earned_at: dt.datetime | None = None,
    expires_at: dt.datetime | None | bool = True,
) -> LoyaltyEntry:
    """Add ``points`` (> 0) as a new lot expiring ``expiry_months`` after ``earned_at``.

    ``expires_at`` given (a time, or None for never) keeps a moved lot's own expiry.
    A refund debt is paid first: that much of the new lot is allocated to the reversals
    that left the debt, and only the rest can be spent.
    """
    earned_at = earned_at or now
    entry = _entry(account, kind, points, posting, now)
    months = program.expiry_months
    settled = min(account.debt, points)
    lot = LoyaltyLot(
        account_id=account.id,
        entry=entry,
        points=points,
        remaining=points - settled,
        earned_at=earned_at,
        expires_at=(add_months(earned_at, months) if months else None)
        if expires_at is True
        else expires_at,
    )
    session.add_all((entry, lot))
    if settled:
        session.flush()
        _settle_debt(session, account, lot, settled)
    account.balance += points
    account.debt -= settled
    account.updated_at = now
    session.flush()
    return entry


def _settle_debt(session: Session, account: LoyaltyAccount, lot: LoyaltyLot, points: int) -> None:
    """Allocate ``points`` of ``lot`` to the reversals still owed, oldest first."""
    allocated = (
        select(func.coalesce(func.sum(LoyaltyAllocation.points), 0))
        .where(LoyaltyAllocation.entry_id == LoyaltyEntry.id)
        .scalar_subquery()
    )
    owed = session.execute(
        select(LoyaltyEntry.id, -LoyaltyEntry.points - allocated)
        .where(LoyaltyEntry.account_id == account.id, LoyaltyEntry.kind == "reverse")
        .order_by(LoyaltyEntry.id)
    ).all()
    for entry_id, open_points in owed:
        if points <= 0:
            break
        share = min(int(open_points), points)
        if share > 0:
            session.add(LoyaltyAllocation(entry_id=entry_id, lot_id=lot.id, points=share))
            points -= share
    if points:  # the debt column and the reversals disagree: refuse rather than guess
        raise RuntimeError(f"account {account.id}: debt {account.debt} has no reversal to settle")


def open_lots(session: Session, account: LoyaltyAccount) -> list[LoyaltyLot]:
    """The account's lots with points left, first to expire first."""
    query = (
        select(LoyaltyLot)
        .where(LoyaltyLot.account_id == account.id, LoyaltyLot.remaining > 0)
        .order_by(LoyaltyLot.expires_at.is_(None), LoyaltyLot.expires_at, LoyaltyLot.id)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def lots_for_debit(
    session: Session, account: LoyaltyAccount, points: int, now: dt.datetime
) -> list[LoyaltyLot]:
    """The open lots a debit of ``points`` at ``now`` touches, first to expire first.

    That is every lot already due (it must expire before anything is taken) and then just
    enough lots to cover ``points``: an account with years of small earns is not read in
    full for each redemption. One query: a running sum in expiry order, and the total of
    the due lots, as window functions.
    """
    params = {"account_id": account.id, "points": points, "now": now}
    return list(session.scalars(_lots_for_debit(), params))


@cache
def _lots_for_debit():
    """The statement of :func:`lots_for_debit`, built once (it runs for every debit)."""
    fifo = (LoyaltyLot.expires_at.is_(None), LoyaltyLot.expires_at, LoyaltyLot.id)
    now = bindparam("now", type_=LoyaltyLot.expires_at.type)
    due = case((LoyaltyLot.expires_at <= now, LoyaltyLot.remaining), else_=0)
    window = (
        select(
            LoyaltyLot.id.label("id"),
            (func.sum(LoyaltyLot.remaining).over(order_by=fifo) - LoyaltyLot.remaining).label(
                "before"
            ),
            func.sum(due).over().label("due"),
        )
        .where(LoyaltyLot.account_id == bindparam("account_id"), LoyaltyLot.remaining > 0)
        .subquery()
    )
    return (
        select(LoyaltyLot)
        .join(window, window.c.id == LoyaltyLot.id)
        .where(window.c.before < window.c.due + bindparam("points"))
        .order_by(*fifo)
        .execution_options(populate_existing=True)
    )


def lots_by_expiry(lots: Sequence[LoyaltyLot], first_lot_id: int | None = None) -> list[LoyaltyLot]:
    """``lots`` in the order a debit takes them (``first_lot_id`` first, if given)."""
    ordered = sorted(
        lots,
        key=lambda lot: (lot.expires_at is None, lot.expires_at or dt.datetime.min, lot.id),
    )
    if first_lot_id is not None:
        ordered.sort(key=lambda lot: lot.id != first_lot_id)
    return ordered


def take(lots: Sequence[LoyaltyLot], points: int) -> list[tuple[LoyaltyLot, int]]:
    """Up to ``points`` from ``lots`` in their order: (lot, points taken) pairs."""
    taken = []
    for lot in lots:
        if points <= 0:
            break
        share = min(lot.remaining, points)
        if share > 0:
            taken.append((lot, share))
            points -= share
    return taken


def debit(
    session: Session,
    account: LoyaltyAccount,
    *,
    kind: str,
    points: int,
    allocations: Sequence[tuple[LoyaltyLot, int]],
    posting: Posting,
    now: dt.datetime,
    shortfall: int = 0,
) -> LoyaltyEntry:
    """Take ``points`` (> 0) off the balance, consuming ``allocations`` from their lots.

    The allocations normally cover the points; a refund reversal under the
    allow-negative policy covers less, and the rest becomes the account's debt.
    """
    entry = _entry(account, kind, -points, posting, now)
    entry.shortfall = shortfall
    session.add(entry)
    covered = 0
    for lot, share in allocations:
        lot.remaining -= share
        covered += share
        session.add(LoyaltyAllocation(entry=entry, lot_id=lot.id, points=share))
    account.balance -= points
    account.debt += points - covered
    account.updated_at = now
    session.flush()
    return entry


def expire_due(
    session: Session, account: LoyaltyAccount, lots: Sequence[LoyaltyLot], now: dt.datetime
) -> tuple[list[LoyaltyEntry], list[LoyaltyLot]]:
    """Expire the lots of ``lots`` due by ``now``; returns (expiry entries, lots still open).

    Each lot expires in an entry of its own, keyed ``expire:<lot>``, so no lot can expire
    twice whoever runs the expiry.
    """
    entries, still_open = [], []
    for lot in lots:
        if lot.expires_at is not None and lot.expires_at <= now and lot.remaining > 0:
            posting = Posting(
                source_type="job", source_id=str(lot.id), dedupe_key=f"expire:{lot.id}"
            )
            entries.append(
                debit(
                    session,
                    account,
                    kind="expire",
                    points=lot.remaining,
                    allocations=[(lot, lot.remaining)],
                    posting=posting,
                    now=now,
                )
            )
        elif lot.remaining > 0:
            still_open.append(lot)
    return entries, still_open
