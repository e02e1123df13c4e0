"""Helpers shared by the loyalty tests: customers, orders and a fixed clock."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from patron.crm.services import customers
from patron.crm.services.loyalty import get_program
from patron.crm.tables import Order, OrderLine

NOW = dt.datetime(2026, 3, 10, 4, 0, tzinfo=dt.UTC)
_numbers = itertools.count(1)


def new_customer(session, *, birthday: dt.date | None = None, name: str = "") -> int:
    """A customer (flushed); their id."""
    customer = customers.create_customer(
        session, actor=None, name=name or f"会员{next(_numbers)}", birthday=birthday
    )
    return customer.id


def new_order(
    session,
    customer_id: int,
    amount: str | Decimal,
    *,
    at: dt.datetime = NOW,
    status: str = "completed",
    lines: tuple[tuple[str, str | None, str, str], ...] = (),
) -> Order:
    """An order (and its lines: sku, category, quantity, price), flushed."""
    order = Order(
        source="shop",
        order_no=f"SO{next(_numbers):06d}",
        customer_id=customer_id,
        ordered_at=at,
        amount=Decimal(amount),
        status=status,
    )
    session.add(order)
    session.flush()
    for sku, category, quantity, price in lines:
        session.add(
            OrderLine(
                order_id=order.id,
                sku=sku,
                category=category,
                quantity=Decimal(quantity),
                price=Decimal(price),
            )
        )
    session.flush()
    return order


def set_program(session, **values) -> None:
    """Change the programme's fields directly (the settings service is tested elsewhere)."""
    program = get_program(session)
    for name, value in values.items():
        setattr(program, name, value)
    session.flush()
