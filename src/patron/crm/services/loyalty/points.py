"""Earning, redeeming and adjusting points by hand or through the API.

Each function resolves the customer (a merged-away id acts on the survivor), locks the
account, checks, and writes through the ledger; none commits. A refusal leaves the
transaction for the caller to roll back (lots found past their expiry on the way may have
been expired in it).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from patron.crm.services import customers
from patron.crm.services.errors import Conflict, Invalid
from patron.crm.services.loyalty import events, ledger, tiers
from patron.crm.services.loyalty.accounts import lock_account
from patron.crm.services.loyalty.program import MAX_POINTS, get_program, get_reward
from patron.crm.tables.base import utcnow
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import LoyaltyEntry, User

__all__ = ["InsufficientPoints", "earn", "redeem", "adjust", "check_points", "check_reason"]

SOURCES = ("manual", "api")


class InsufficientPoints(Conflict):
    """A redemption (or a negative adjustment) larger than the balance (HTTP 409)."""

    code = "insufficient_points"


def check_points(points: Any, *, negative: bool = False) -> int:
    """``points`` as a whole number of points, > 0 (or != 0 when ``negative`` is allowed)."""
    if isinstance(points, bool) or not isinstance(points, int):
        raise Invalid(_("loyalty.points_not_integer", value=str(points)[:40]), field="points")
    low = -MAX_POINTS if negative else 1
    if not low <= points <= MAX_POINTS or points == 0:
        raise Invalid(
            _(
                "loyalty.points_range" if not negative else "loyalty.points_range_signed",
                limit=f"{MAX_POINTS:,}",
            ),
            field="points",
        )
    return points


def check_reason(reason: Any, *, required: bool) -> str:
    """The reason, trimmed; required for what a person decides (an earn, an adjustment)."""
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or "\x00" in reason:
        raise Invalid(_("loyalty.bad_reason"), field="reason")
    reason = reason.strip()
    if required and not reason:
        raise Invalid(_("loyalty.reason_required"), field="reason")
    if len(reason) > 500:
        raise Invalid(_("loyalty.too_long", field="reason", limit=500), field="reason")
    return reason


def earn(
    session: Session,
    customer_id: int,
    points: int,
    *,
    reason: str,
    actor: User | None = None,
    now: dt.datetime | None = None,
    source: str = "manual",
) -> LoyaltyEntry:
    """Give ``points`` to the customer (a goodwill gesture, a purchase made elsewhere).

    The points form a lot that expires as the programme says; the account is opened on
    the first earn; under a points-based tier rule the customer is upgraded at once.
    """
    points = check_points(points)
    reason = check_reason(reason, required=True)
    now = now or utcnow()
    customer = customers.get_customer(session, customer_id)
    program = get_program(session)
    account = lock_account(session, customer.id, program=program, now=now)
    posting = ledger.Posting(reason=reason, source_type=_source(source), actor=actor)
    entry = ledger.credit(
        session, account, program, kind="earn", points=points, posting=posting, now=now
    )
    if program.tier_basis == "points":
        tiers.upgrade_if_qualified(session, account, program, now=now, actor=actor)
    return entry


def redeem(
    session: Session,
    customer_id: int,
    points: int | None = None,
    *,
    reason: str = "",
    reward_id: int | None = None,
    actor: User | None = None,
    now: dt.datetime | None = None,
    source: str = "manual",
) -> LoyaltyEntry:
    """Spend ``points`` (or a reward's price), first-to-expire lots first.

    Raises
    ------
    InsufficientPoints
        (409) When the balance -- after expiring what was due -- is smaller.
    Invalid
        For a number of points that is not a positive whole number, an inactive reward,
        or points that differ from the reward's price.
    """
    reward = None
    if reward_id is not None:
        reward = get_reward(session, reward_id)
        if not reward.active:
            raise Invalid(_("loyalty.reward_inactive", name=reward.name), field="reward_id")
        if points is not None and points != reward.points_cost:
            raise Invalid(
                _("loyalty.reward_price", name=reward.name, cost=reward.points_cost),
                field="points",
            )
        points = reward.points_cost
    points = check_points(points)
    reason = check_reason(reason, required=False) or (reward.name if reward else "")
    now = now or utcnow()
    customer = customers.get_customer(session, customer_id)
    account = lock_account(session, customer.id, create=False)
    if account is None or account.balance < points:
        raise _insufficient(points, account.balance if account else 0)
    lots = ledger.lots_for_debit(session, account, points, now)
    expired, lots = ledger.expire_due(session, account, lots, now)
    if account.balance < points:
        raise _insufficient(points, account.balance, expired=-sum(e.points for e in expired))
    posting = ledger.Posting(
        reason=reason,
        source_type="reward" if reward else _source(source),
        source_id=str(reward.id) if reward else None,
        reward_id=reward.id if reward else None,
        actor=actor,
    )
    return ledger.debit(
        session,
        account,
        kind="redeem",
        points=points,
        allocations=ledger.take(lots, points),
        posting=posting,
        now=now,
    )


def adjust(
    session: Session,
    customer_id: int,
    points: int,
    *,
    reason: str,
    actor: User | None,
    now: dt.datetime | None = None,
    source: str = "manual",
) -> LoyaltyEntry:
    """A manager's correction: add points, or take them away down to a balance of zero.

    Audited as ``loyalty.adjust`` with the balance before and after.

    Raises
    ------
    InsufficientPoints
        (409) When a negative adjustment would take the balance below zero.
    """
    points = check_points(points, negative=True)
    reason = check_reason(reason, required=True)
    now = now or utcnow()
    customer = customers.get_customer(session, customer_id)
    program = get_program(session)
    posting = ledger.Posting(reason=reason, source_type=_source(source), actor=actor)
    account = lock_account(session, customer.id, program=program, now=now, create=points > 0)
    if points > 0:
        entry = ledger.credit(
            session, account, program, kind="adjust", points=points, posting=posting, now=now
        )
    else:
        if account is None or account.balance < -points:
            raise _insufficient(-points, account.balance if account else 0, adjust=True)
        lots = ledger.lots_for_debit(session, account, -points, now)
        _expired, lots = ledger.expire_due(session, account, lots, now)
        if account.balance < -points:
            raise _insufficient(-points, account.balance, adjust=True)
        entry = ledger.debit(
            session,
            account,
            kind="adjust",
            points=-points,
            allocations=ledger.take(lots, -points),
            posting=posting,
            now=now,
        )
    events.points_adjusted(session, account, entry, actor=actor)
    return entry


def _source(source: str) -> str:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    return source


def _insufficient(
    points: int, balance: int, *, expired: int = 0, adjust: bool = False
) -> InsufficientPoints:
    key = "loyalty.adjust_below_zero" if adjust else "loyalty.insufficient"
    message = _(key, points=f"{points:,}", balance=f"{balance:,}")
    if expired:
        message += " " + _("loyalty.expired_now", expired=f"{expired:,}")
    return InsufficientPoints(message, field="points")
