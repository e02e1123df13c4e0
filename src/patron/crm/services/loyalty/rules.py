"""Earn rules and calendar arithmetic: pure functions, no database.

An order's points are

    floor(amount x line weight x points per unit x tier multiplier x birthday multiplier)
    + points per order

where the line weight is the order lines' value-weighted product or category multiplier
(1 without lines or multipliers). Points are rounded down, never up: the programme must
never invent a point, and a fraction of one is not owed.

Months are calendar months (a point earned on 31 January with a one-month expiry expires on
28 or 29 February), never 30 days.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

__all__ = [
    "EarnRules",
    "Line",
    "add_months",
    "line_weight",
    "order_points",
    "period_key",
]


@dataclass(frozen=True)
class Line:
    """What an order line contributes to the multiplier: its value, SKU and category."""

    value: Decimal
    sku: str = ""
    category: str | None = None


@dataclass(frozen=True)
class EarnRules:
    """The programme's earn rules, as plain values (see ``LoyaltyProgram``)."""

    points_per_unit: Decimal = Decimal(1)
    points_per_order: int = 0
    min_amount: Decimal = Decimal(0)
    birthday_multiplier: Decimal = Decimal(2)
    #: ``{"sku": {sku: factor}, "category": {category: factor}}``; a SKU's wins.
    multipliers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def line_weight(lines: Sequence[Line], multipliers: Mapping[str, Mapping[str, Any]]) -> Decimal:
    """The value-weighted multiplier of an order's lines (1 when nothing applies).

    >>> m = {"category": {"生鲜": 2}, "sku": {"A1": 3}}
    >>> line_weight([Line(Decimal(50), "A1"), Line(Decimal(50), "B", "生鲜")], m)
    Decimal('2.5')
    >>> line_weight([Line(Decimal(10), "B", "服装")], m), line_weight([], m)
    (Decimal('1'), Decimal('1'))
    """
    skus = multipliers.get("sku") or {}
    categories = multipliers.get("category") or {}
    total = weighted = Decimal(0)
    for line in lines:
        if line.value <= 0:
            continue
        factor = skus.get(line.sku)
        if factor is None and line.category is not None:
            factor = categories.get(line.category)
        total += line.value
        weighted += line.value * Decimal(str(factor if factor is not None else 1))
    if total <= 0:
        return Decimal(1)
    return (weighted / total).normalize() if weighted != total else Decimal(1)


def order_points(
    rules: EarnRules,
    amount: Decimal,
    *,
    lines: Sequence[Line] = (),
    tier_multiplier: Decimal = Decimal(1),
    birthday_month: bool = False,
) -> int:
    """The points an order of ``amount`` earns under ``rules`` (0 below the minimum).

    >>> rules = EarnRules(points_per_unit=Decimal(1), points_per_order=5, min_amount=Decimal(10))
    >>> order_points(rules, Decimal("99.99"))
    104
    >>> order_points(rules, Decimal("99.99"), tier_multiplier=Decimal("1.5"), birthday_month=True)
    304
    >>> order_points(rules, Decimal("9.99")), order_points(rules, Decimal("-20"))
    (0, 0)
    """
    if amount <= 0 or amount < rules.min_amount:
        return 0
    weight = line_weight(lines, rules.multipliers) if lines else Decimal(1)
    factor = rules.points_per_unit * weight * tier_multiplier
    if birthday_month:
        factor *= rules.birthday_multiplier
    points = int((amount * factor).to_integral_value(rounding=ROUND_FLOOR))
    return max(points, 0) + rules.points_per_order


def add_months(when: dt.datetime, months: int) -> dt.datetime:
    """``when`` moved by whole calendar months, the day clamped to the month's end.

    >>> add_months(dt.datetime(2024, 1, 31, 12), 1)
    datetime.datetime(2024, 2, 29, 12, 0)
    >>> add_months(dt.datetime(2024, 3, 15), -12)
    datetime.datetime(2023, 3, 15, 0, 0)
    """
    index = when.year * 12 + (when.month - 1) + months
    year, month = divmod(index, 12)
    day = min(when.day, calendar.monthrange(year, month + 1)[1])
    return when.replace(year=year, month=month + 1, day=day)


def period_key(day: dt.date, months: int) -> str:
    """The review period holding ``day`` for a review every ``months`` months.

    >>> [period_key(dt.date(2026, 11, 30), m) for m in (1, 3, 6, 12)]
    ['2026-11', '2026-Q4', '2026-H2', '2026']
    """
    if months == 1:
        return f"{day.year}-{day.month:02d}"
    if months == 3:
        return f"{day.year}-Q{math.ceil(day.month / 3)}"
    if months == 6:
        return f"{day.year}-H{1 if day.month <= 6 else 2}"
    if months == 12:
        return str(day.year)
    raise ValueError(f"a review every {months} months is not supported (1, 3, 6 or 12)")
