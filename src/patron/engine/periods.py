"""Periods and time units: the one place where calendar arithmetic lives.

A *period* is how purchases are counted: several purchases in the same period count once
(``D`` days, ``W`` weeks starting on Monday, ``M`` calendar months).  A *time unit* is how
durations are reported (``D``, ``W``, ``M``, ``Y``).  Durations are measured between period
starts and converted with fixed lengths in days: a week is 7 days, a month 365.25/12 days
and a year 365.25 days -- never a 30-day month.  When the period and the unit are the same,
durations are whole numbers of periods, as lifetimes gives them.

Every period gets an integer index that the SQL of every backend can compute from a
timestamp: the day number since 1970-01-01 (``D``), ``(day + 3) // 7`` (``W``: 1970-01-01
was a Thursday, so weeks change on Mondays) and ``year * 12 + month - 1`` (``M``).  The
Python functions below compute the same indexes for dates given as options (``as_of``,
``calibration_end``), so an expression compares integers with integers.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = [
    "PERIODS",
    "TIME_UNITS",
    "DAYS_PER_UNIT",
    "as_date",
    "day_number",
    "period_key",
    "key_index",
    "period_index_of",
    "duration",
    "duration_value",
]

PERIODS = ("D", "W", "M")
TIME_UNITS = ("D", "W", "M", "Y")
DAYS_PER_UNIT = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}
_EPOCH = dt.date(1970, 1, 1)


def day_number(date: ir.DateValue) -> ir.IntegerValue:
    """Days since 1970-01-01 of a date column."""
    return date.epoch_days()


def as_date(ts: ir.Value) -> ir.DateValue:
    """The date of a timestamp or date column (the time of day is dropped)."""
    return ts if ts.type().is_date() else ts.date()


def period_key(ts: ir.Value, period: str) -> ir.Value:
    """What rows are grouped by to put each in its period.

    For days this is the date itself (a 4-byte key the engines group fastest); weeks and
    months get their integer index.  :func:`key_index` turns either into the index.
    """
    if period == "D":
        return as_date(ts)
    if period == "W":
        return (day_number(as_date(ts)) + 3) // 7
    return ts.year() * 12 + ts.month() - 1


def key_index(key: ir.Value, period: str) -> ir.IntegerValue:
    """The integer period index of a :func:`period_key` (for a few rows: per customer)."""
    return day_number(key) if period == "D" else key


def period_index_of(date: dt.date, period: str) -> int:
    """The period index of one date, computed in Python (see :func:`period_key`)."""
    if period == "D":
        return (date - _EPOCH).days
    if period == "W":
        return ((date - _EPOCH).days + 3) // 7
    return date.year * 12 + date.month - 1


def _factor(period: str, unit: str) -> tuple[float, float]:
    """Days per period and days per unit, or (1, 1) when a period is exactly one unit."""
    if period == unit:
        return 1.0, 1.0
    return DAYS_PER_UNIT[period], DAYS_PER_UNIT[unit]


def duration(periods: ir.IntegerValue, period: str, unit: str) -> ir.FloatingValue:
    """A number of periods expressed in time units, as a float column."""
    per, div = _factor(period, unit)
    value = periods.cast("float64")
    if per != 1.0:
        value = value * per
    if div != 1.0:
        value = value / div
    return value


def duration_value(periods: int, period: str, unit: str) -> float:
    """:func:`duration` of one number, with the same floating-point operations."""
    per, div = _factor(period, unit)
    value = float(periods)
    if per != 1.0:
        value = value * per
    if div != 1.0:
        value = value / div
    return value
