"""Numbers as the report shows them, in the language in use.

zh-CN and en both group thousands with a comma and use a point for decimals, so one rule
serves both today; the language is still passed so a third language with other habits
changes one table here.  Amounts carry no currency sign: patron does not know the
currency, only that amounts have two decimals.  A missing value (None, NaN) shows as a
dash rather than as ``nan``.
"""

from __future__ import annotations

import math

__all__ = ["MISSING", "number", "amount", "count", "percent"]

MISSING = "—"

# (thousands separator, decimal point) per language.
_SEPARATORS = {"en": (",", "."), "zh-CN": (",", ".")}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def number(value: float | None, decimals: int = 0, lang: str = "en") -> str:
    """``value`` with thousands grouped and ``decimals`` places.

    >>> number(1234567.891, 2)
    '1,234,567.89'
    >>> number(float("nan"))
    '—'
    """
    if _missing(value):
        return MISSING
    thousands, point = _SEPARATORS.get(lang, _SEPARATORS["en"])
    value = float(value)
    if round(value, decimals) == 0:
        value = 0.0  # no "-0.00"
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", point).replace("\0", thousands)


def amount(value: float | None, lang: str = "en") -> str:
    """A money amount: two decimals, no currency sign.

    >>> amount(173115.5)
    '173,115.50'
    """
    return number(value, 2, lang)


def count(value: float | None, lang: str = "en") -> str:
    """A whole count.

    >>> count(2357)
    '2,357'
    """
    return number(value, 0, lang)


def percent(share: float | None, decimals: int = 1, lang: str = "en") -> str:
    """A share between 0 and 1 as a percentage.

    >>> percent(0.21425)
    '21.4%'
    """
    if _missing(share):
        return MISSING
    return number(100 * float(share), decimals, lang) + "%"
