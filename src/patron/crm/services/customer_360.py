"""The customer 360: everything about one customer, for one page, in a few queries.

The service desk opens it while the customer is on the phone, so it is read in a fixed
number of queries whatever the customer's history (one per kind of thing, never one per
order): profile, ids, tags, consents, the latest orders with their lines, the latest
contacts, every score the customer has had, and the merges that made the record.

:func:`build` is the portable path (SQLite, and any database). On PostgreSQL
:func:`build_on_postgresql` asks for the same 360 in one statement
(:mod:`patron.crm.services.customer_360_sql`): under many concurrent clients the round
trips, not the queries, set the latency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from patron.crm.services import customer_360_sql
from patron.crm.services.customer_dicts import (
    customer_dict,
    merge_dict,
    order_dict,
    score_dict,
    touchpoint_dict,
)
from patron.crm.tables import (
    Customer,
    CustomerConsent,
    CustomerExternalId,
    CustomerMerge,
    CustomerTag,
    Order,
    OrderLine,
    ScoreSnapshot,
    ScoringRun,
    Touchpoint,
    User,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["build", "build_on_postgresql"]


def build(
    session: Session, customer: Customer, *, orders_limit: int = 50, touchpoints_limit: int = 50
) -> dict[str, Any]:
    """The 360 of ``customer`` (already resolved past any merge).

    Returns
    -------
    dict
        ``customer`` (profile, with ``owner_name``), ``external_ids`` (``source``,
        ``external_id``), ``tags``, ``consents`` (``{channel: granted}``), ``orders``
        (newest first, each with ``lines``), ``orders_total`` (how many orders in all),
        ``orders_amount`` (their exact sum), ``touchpoints`` (newest first),
        ``touchpoints_total``, ``score`` (the latest finished run's snapshot, ``None``
        when that run did not score the customer), ``score_history`` (every finished
        run's snapshot, oldest first), ``merges`` and ``timeline`` (the orders and
        touchpoints above, newest first, each with ``type`` and ``at``).
    """
    profile = customer_dict(customer)
    owner = session.get(User, customer.owner_id) if customer.owner_id is not None else None
    profile["owner_name"] = (owner.display_name or owner.username) if owner else None

    external_ids = [
        {"source": source, "external_id": external_id}
        for source, external_id in session.execute(
            select(CustomerExternalId.source, CustomerExternalId.external_id)
            .where(CustomerExternalId.customer_id == customer.id)
            .order_by(CustomerExternalId.source, CustomerExternalId.external_id)
        )
    ]
    tags = list(
        session.scalars(
            select(CustomerTag.tag)
            .where(CustomerTag.customer_id == customer.id)
            .order_by(CustomerTag.tag)
        )
    )
    consents = {
        channel: granted
        for channel, granted in session.execute(
            select(CustomerConsent.channel, CustomerConsent.granted)
            .where(CustomerConsent.customer_id == customer.id)
            .order_by(CustomerConsent.channel)
        )
    }
    orders, orders_total, orders_amount = _orders(session, customer.id, max(orders_limit, 0))
    touchpoints, touchpoints_total = _touchpoints(session, customer.id, max(touchpoints_limit, 0))
    score, history = _scores(session, customer.id)
    merges = session.scalars(
        select(CustomerMerge)
        .where(
            or_(CustomerMerge.survivor_id == customer.id, CustomerMerge.merged_id == customer.id)
        )
        .order_by(CustomerMerge.id.desc())
    )
    return {
        "customer": profile,
        "external_ids": external_ids,
        "tags": tags,
        "consents": consents,
        "orders": orders,
        "orders_total": orders_total,
        "orders_amount": orders_amount,
        "touchpoints": touchpoints,
        "touchpoints_total": touchpoints_total,
        "score": score,
        "score_history": history,
        "merges": [merge_dict(merge) for merge in merges],
        "timeline": _timeline(orders, touchpoints),
    }


def build_on_postgresql(
    session: Session,
    customer_id: int,
    *,
    orders_limit: int = 50,
    touchpoints_limit: int = 50,
    max_hops: int = 16,
) -> dict[str, Any] | None:
    """The 360 of ``customer_id`` (merges followed, ``max_hops`` at most) in one statement.

    The same dict as :func:`build`, or ``None`` when no customer has the id. PostgreSQL
    only.
    """
    doc = customer_360_sql.fetch_document(
        session,
        customer_id,
        orders_limit=orders_limit,
        touchpoints_limit=touchpoints_limit,
        max_hops=max_hops,
    )
    return None if doc is None else _from_document(doc)


async def build_on_postgresql_async(
    connection: Any, customer_id: int, **limits: int
) -> dict[str, Any] | None:
    """:func:`build_on_postgresql` on a psycopg async connection (raw cursor, autocommit).

    ``limits``: ``orders_limit``, ``touchpoints_limit`` and ``max_hops`` as there.
    """
    doc = await customer_360_sql.fetch_document_async(connection, customer_id, **limits)
    return None if doc is None else _from_document(doc)


def _from_document(doc: dict[str, Any]) -> dict[str, Any]:
    record = customer_360_sql.from_document(doc)
    record["timeline"] = _timeline(record["orders"], record["touchpoints"])
    return record


def _timeline(orders: list[dict], touchpoints: list[dict]) -> list[dict]:
    """Orders and touchpoints together, newest first, each with ``type`` and ``at``."""
    timeline = [{"type": "order", "at": o["ordered_at"], **o} for o in orders]
    timeline += [{"type": "touchpoint", "at": t["occurred_at"], **t} for t in touchpoints]
    timeline.sort(key=lambda item: (item["at"], item["type"], item["id"]), reverse=True)
    return timeline


def _orders(session: Session, customer_id: int, limit: int) -> tuple[list[dict], int, Decimal]:
    # The count and sum ride along as window functions (computed before the LIMIT).
    where = Order.customer_id == customer_id
    rows = session.execute(
        select(Order, func.count().over(), func.sum(Order.amount).over())
        .where(where)
        .order_by(Order.ordered_at.desc(), Order.id.desc())
        .limit(limit)
    ).all()
    if rows:
        total, amount = rows[0][1], rows[0][2]
    else:  # no orders, or none asked for
        total, amount = session.execute(
            select(func.count(), func.sum(Order.amount)).where(where)
        ).one()
    lines: dict[int, list[OrderLine]] = {}
    if rows:
        for line in session.scalars(
            select(OrderLine)
            .where(OrderLine.order_id.in_([row[0].id for row in rows]))
            .order_by(OrderLine.order_id, OrderLine.id)
        ):
            lines.setdefault(line.order_id, []).append(line)
    items = [order_dict(row[0], lines.get(row[0].id)) for row in rows]
    return items, int(total or 0), amount if amount is not None else Decimal("0.00")


def _touchpoints(session: Session, customer_id: int, limit: int) -> tuple[list[dict], int]:
    where = Touchpoint.customer_id == customer_id
    rows = session.execute(
        select(Touchpoint, User.display_name, User.username, func.count().over())
        .outerjoin(User, User.id == Touchpoint.staff_id)
        .where(where)
        .order_by(Touchpoint.occurred_at.desc(), Touchpoint.id.desc())
        .limit(limit)
    ).all()
    if rows:
        total = rows[0][3]
    else:
        total = session.scalar(select(func.count()).select_from(Touchpoint).where(where))
    items = [touchpoint_dict(row[0], row[1] or row[2]) for row in rows]
    return items, int(total or 0)


def _scores(session: Session, customer_id: int) -> tuple[dict | None, list[dict]]:
    latest = select(func.max(ScoringRun.id)).where(ScoringRun.status == "done").scalar_subquery()
    rows = session.execute(
        select(ScoreSnapshot, ScoringRun, latest)
        .join(ScoringRun, ScoringRun.id == ScoreSnapshot.run_id)
        .where(ScoreSnapshot.customer_id == customer_id, ScoringRun.status == "done")
        .order_by(ScoreSnapshot.run_id)
    ).all()
    history = [score_dict(snapshot, run) for snapshot, run, _ in rows]
    score = next((h for h in history if h["run_id"] == rows[-1][2]), None) if rows else None
    return score, history
