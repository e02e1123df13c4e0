"""Points from orders: earning by the programme's rules, and reversing them on a refund.

An order earns once and is reversed once, whoever calls and however often: each writes an
entry keyed ``order:<id>:earn`` / ``order:<id>:reverse``, unique in the database.

A refund takes back the points the order earned -- from the order's own lot first, then
first-to-expire. When some were already spent, the programme's ``refund_policy`` decides,
and both ways leave a trace: ``claw_back`` takes what is left (down to zero) and records
the rest as the entry's ``shortfall``; ``allow_negative`` takes everything and leaves a
negative balance, a debt the next points pay off. Every reversal is audited.

Many exports write a refund as a row of its own -- a negative amount, status refunded, its
order number the original's plus a suffix (``SO123-R``, ``SO123_退款``). Such a row takes
back its share of what the original earned (a refund of half the amount, half the points;
never more than the original has left), from the customer whose original it is. A refund
row whose original cannot be told (no earned order of the customer's whose number starts
its own) takes back nothing and is counted as ``unmatched`` in the import's report.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.crm.services.loyalty import events, ledger, tiers
from patron.crm.services.loyalty.accounts import (
    ensure_accounts,
    lock_account_id,
    lock_accounts,
)
from patron.crm.services.loyalty.program import earn_rules, get_program, program_tiers
from patron.crm.services.loyalty.rules import Line, order_points
from patron.crm.tables import Customer, LoyaltyAccount, LoyaltyEntry, LoyaltyLot, Order, OrderLine
from patron.crm.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import LoyaltyProgram, LoyaltyTier, User

__all__ = ["earn_for_order", "reverse_for_refund", "earn_for_import", "points_for_order"]


def _key(order: Order, what: str) -> str:
    return f"order:{order.id}:{what}"


def _entry_by_key(session: Session, key: str) -> LoyaltyEntry | None:
    return session.scalars(select(LoyaltyEntry).where(LoyaltyEntry.dedupe_key == key)).first()


def _member(session: Session, customer_id: int) -> Customer:
    """The customer, followed past merges to the record that survives."""
    customer = session.get(Customer, customer_id)
    hops = 0
    while customer is not None and customer.merged_into_id is not None and hops < 16:
        customer, hops = session.get(Customer, customer.merged_into_id), hops + 1
    if customer is None:
        raise LookupError(f"order's customer {customer_id} does not exist")
    return customer


def points_for_order(
    session: Session,
    program: LoyaltyProgram,
    order: Order,
    customer: Customer,
    tier: LoyaltyTier | None,
) -> int:
    """What ``order`` earns under the programme, for a customer in ``tier``."""
    if not program.active or order.status != "completed" or order.amount <= 0:
        return 0
    zone = ZoneInfo(program.timezone)
    local = order.ordered_at.astimezone(zone)
    if program.started_on is not None and local.date() < program.started_on:
        return 0
    lines = []
    if program.multipliers:
        rows = session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))
        lines = [Line(line.price * line.quantity, line.sku, line.category) for line in rows]
    birthday = customer.birthday is not None and customer.birthday.month == local.month
    return order_points(
        earn_rules(program),
        order.amount,
        lines=lines,
        tier_multiplier=tier.multiplier if tier is not None else 1,
        birthday_month=birthday,
    )


def earn_for_order(
    session: Session,
    order: Order,
    *,
    actor: User | None = None,
    now: dt.datetime | None = None,
    source: str = "order",
) -> LoyaltyEntry | None:
    """Earn the order's points for its customer; the earn entry, or None when it earns none.

    A second call for the same order returns the first entry. The points are dated by the
    order (they expire ``expiry_months`` after it was placed); the customer moves up a
    tier at once when they now qualify.
    """
    existing = _entry_by_key(session, _key(order, "earn"))
    if existing is not None:
        return existing
    program = get_program(session)
    if not program.active or order.status != "completed" or order.amount <= 0:
        return None
    now = now or utcnow()
    customer = _member(session, order.customer_id)
    ensure_accounts(session, [customer.id], program=program, now=now)
    account_id = session.scalar(
        select(LoyaltyAccount.id).where(LoyaltyAccount.customer_id == customer.id)
    )
    account = lock_account_id(session, account_id)
    return _earn_locked(
        session,
        program,
        program_tiers(session, program),
        account,
        order,
        customer,
        now,
        actor,
        source,
    )


def _earn_locked(
    session: Session,
    program: LoyaltyProgram,
    tier_list: list[LoyaltyTier],
    account: LoyaltyAccount,
    order: Order,
    customer: Customer,
    now: dt.datetime,
    actor: User | None,
    source: str,
) -> LoyaltyEntry | None:
    tier = next((t for t in tier_list if t.id == account.tier_id), None)
    points = points_for_order(session, program, order, customer, tier)
    if points <= 0:
        return None
    posting = ledger.Posting(
        source_type=source,
        source_id=order.order_no[:64],
        order_id=order.id,
        dedupe_key=_key(order, "earn"),
        actor=actor,
    )
    entry = ledger.credit(
        session,
        account,
        program,
        kind="earn",
        points=points,
        posting=posting,
        now=now,
        earned_at=min(order.ordered_at, now),
    )
    tiers.upgrade_if_qualified(session, account, program, now=now, actor=actor, tiers=tier_list)
    return entry


def reverse_for_refund(
    session: Session,
    order: Order,
    *,
    actor: User | None = None,
    now: dt.datetime | None = None,
    source: str = "order",
) -> LoyaltyEntry | None:
    """Take back what ``order`` earned; the reversal entry, or None when it earned nothing.

    A second call returns the first reversal. See the module's docstring for what happens
    when the points were already spent.
    """
    earned = _entry_by_key(session, _key(order, "earn"))
    if earned is None:
        return None
    existing = _entry_by_key(session, _key(order, "reverse"))
    if existing is not None:
        return existing
    now = now or utcnow()
    program = get_program(session)
    account = lock_account_id(session, earned.account_id)
    return _reverse_locked(session, program, account, order, earned, now, actor, source)


def _reverse_locked(
    session: Session,
    program: LoyaltyProgram,
    account: LoyaltyAccount,
    order: Order,
    earned: LoyaltyEntry,
    now: dt.datetime,
    actor: User | None,
    source: str,
    points: int | None = None,
) -> LoyaltyEntry | None:
    """Reverse ``points`` of ``earned`` (all that is left of it by default) for ``order``.

    ``order`` is the refunded order itself, or a refund row of its own; what earlier
    refund rows took back of the same earn is never taken twice. None when nothing is left.
    """
    left = earned.points - _reversed_already(session, earned)
    points = left if points is None else min(points, left)
    if points <= 0:
        return None
    _expired, lots = ledger.expire_due(session, account, ledger.open_lots(session, account), now)
    own_lot = session.scalar(select(LoyaltyLot.id).where(LoyaltyLot.entry_id == earned.id))
    allocations = ledger.take(ledger.lots_by_expiry(lots, own_lot), points)
    taken = sum(share for _lot, share in allocations)
    negative = program.refund_policy == "allow_negative"
    posting = ledger.Posting(
        source_type=source,
        source_id=order.order_no[:64],
        order_id=order.id,
        reverses_id=earned.id,
        dedupe_key=_key(order, "reverse"),
        actor=actor,
    )
    debt_before = account.debt
    entry = ledger.debit(
        session,
        account,
        kind="reverse",
        points=points if negative else taken,
        allocations=allocations,
        posting=posting,
        now=now,
        shortfall=0 if negative else points - taken,
    )
    events.points_reversed(
        session,
        account,
        entry,
        earned=earned.points,
        policy=program.refund_policy,
        debt_before=debt_before,
        actor=actor,
    )
    return entry


def _reversed_already(session: Session, earned: LoyaltyEntry) -> int:
    """Points already taken back of ``earned`` (its reversals' points, shortfalls included)."""
    rows = session.execute(
        select(LoyaltyEntry.points, LoyaltyEntry.shortfall).where(
            LoyaltyEntry.reverses_id == earned.id, LoyaltyEntry.kind == "reverse"
        )
    )
    return sum(-points + (shortfall or 0) for points, shortfall in rows)


def _original_earn(session: Session, refund: Order) -> tuple[Order, LoyaltyEntry] | None:
    """The earned order a refund row refunds, or None.

    The customer's earned order, placed no later, whose number is the longest that starts
    the refund's own.
    """
    rows = session.execute(
        select(Order, LoyaltyEntry)
        .join(LoyaltyEntry, LoyaltyEntry.order_id == Order.id)
        .where(
            Order.customer_id == refund.customer_id,
            Order.id != refund.id,
            Order.amount > 0,
            Order.ordered_at <= refund.ordered_at,
            LoyaltyEntry.kind == "earn",
        )
    ).all()
    found = [
        (order, entry)
        for order, entry in rows
        if refund.order_no.startswith(order.order_no) and refund.order_no != order.order_no
    ]
    if not found:
        return None
    return max(found, key=lambda pair: (len(pair[0].order_no), pair[0].ordered_at, pair[0].id))


def _refund_share(refund: Order, original: Order, earned: LoyaltyEntry) -> int:
    """The points a refund row takes back: its share of the original's amount, rounded."""
    share = (-refund.amount) / original.amount * earned.points
    return int(share.to_integral_value(rounding="ROUND_HALF_UP"))


def earn_for_import(
    session: Session,
    batch_id: int,
    *,
    actor: User | None = None,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Earn for an import batch's purchases and reverse its refunds; counts of each.

    Only when the programme earns on imports (``earn_on_import``).
    The accounts are opened first, then locked together in primary-key order, and the
    orders handled customer by customer, in time order.
    """
    program = get_program(session)
    counts = {"earned": 0, "points": 0, "reversed": 0, "unmatched": 0}
    if not program.active or not program.earn_on_import:
        return counts
    now = now or utcnow()
    orders = list(
        session.scalars(
            select(Order)
            .where(Order.batch_id == batch_id, Order.status.in_(("completed", "refunded")))
            .order_by(Order.customer_id, Order.ordered_at, Order.id)
        )
    )
    if not orders:
        return counts
    members = {o.customer_id: _member(session, o.customer_id) for o in orders}
    ensure_accounts(session, {m.id for m in members.values()}, program=program, now=now)
    by_customer = dict(
        session.execute(
            select(LoyaltyAccount.customer_id, LoyaltyAccount.id).where(
                LoyaltyAccount.customer_id.in_({m.id for m in members.values()})
            )
        ).all()
    )
    accounts = {a.id: a for a in lock_accounts(session, by_customer.values())}
    tier_list = program_tiers(session, program)
    todo: dict[int, list[Order]] = defaultdict(list)
    for order in orders:
        todo[by_customer[members[order.customer_id].id]].append(order)
    # What the batch's orders already earned or reversed, in one query.
    done = {
        (entry.order_id, entry.kind): entry
        for entry in session.scalars(
            select(LoyaltyEntry)
            .join(Order, Order.id == LoyaltyEntry.order_id)
            .where(Order.batch_id == batch_id, LoyaltyEntry.kind.in_(("earn", "reverse")))
        )
    }
    for account_id in sorted(todo):
        account = accounts[account_id]
        for order in todo[account_id]:
            customer = members[order.customer_id]
            earned = done.get((order.id, "earn"))
            if order.status == "completed" and earned is None:
                entry = _earn_locked(
                    session, program, tier_list, account, order, customer, now, actor, "import"
                )
                if entry is not None:
                    counts["earned"] += 1
                    counts["points"] += entry.points
            elif order.status == "refunded" and earned is not None:
                if (order.id, "reverse") not in done:
                    if _reverse_locked(
                        session, program, account, order, earned, now, actor, "import"
                    ):
                        counts["reversed"] += 1
            elif order.status == "refunded" and order.amount < 0:
                if (order.id, "reverse") in done:
                    continue
                original = _original_earn(session, order)
                if original is None:
                    counts["unmatched"] += 1
                    continue
                points = _refund_share(order, *original)
                entry = _reverse_locked(
                    session, program, account, order, original[1], now, actor, "import", points
                )
                if entry is not None:
                    counts["reversed"] += 1
    return counts
