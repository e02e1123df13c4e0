"""Small builders for the customer tests: users, orders, scoring runs and their snapshots.

Rows go in through the tables, so the customer services are tested on their own, whatever
state the import and scoring services are in.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import event

from patron.crm.tables import Order, OrderLine, ScoreSnapshot, ScoringRun, User

T0 = dt.datetime(2024, 3, 5, 8, 0, tzinfo=dt.UTC)


def make_user(session, username="lin", role="staff", display_name=""):
    user = User(username=username, role=role, password_hash="x", display_name=display_name)
    session.add(user)
    session.flush()
    return user


def make_order(session, customer_id, order_no, *, at=T0, amount="100.00", lines=()):
    order = Order(
        source="shop",
        order_no=order_no,
        customer_id=customer_id,
        ordered_at=at,
        amount=Decimal(amount),
    )
    session.add(order)
    session.flush()
    for sku, name, quantity, price in lines:
        session.add(
            OrderLine(
                order_id=order.id,
                sku=sku,
                name=name,
                quantity=Decimal(quantity),
                price=Decimal(price),
            )
        )
    session.flush()
    return order


def make_run(session, scores, *, status="done", as_of=dt.date(2024, 6, 30)):
    """A scoring run with one snapshot per ``{customer_id: {field: value}}`` entry."""
    run = ScoringRun(status=status, as_of=as_of, model="bgnbd", finished_at=T0)
    session.add(run)
    session.flush()
    for customer_id, values in scores.items():
        row = {
            "orders": 1,
            "total_spend": Decimal("100.00"),
            "first_purchase": dt.date(2024, 1, 1),
            "last_purchase": dt.date(2024, 3, 1),
            "frequency": 0.0,
            "recency": 0.0,
            "T": 10.0,
            "monetary_value": 0.0,
            "rfm_r": 3,
            "rfm_f": 3,
            "rfm_m": 3,
            "rfm_segment": "333",
            "p_alive": 0.5,
            "predicted_clv": 100.0,
            "grade": "silver",
            "lifecycle_stage": "mature",
            "churn_risk": "low",
            "next_best_action": "keep",
            **values,
        }
        session.add(ScoreSnapshot(run_id=run.id, customer_id=customer_id, **row))
    session.flush()
    return run


class QueryCounter:
    """Counts the SQL statements an engine runs while the block is open."""

    def __init__(self, engine):
        self.engine = engine
        self.count = 0

    def _count(self, *args, **kwargs):
        self.count += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._count)
