"""The engine's user-facing messages, by catalogue key.

Every message goes through :func:`patron.i18n._`.  Until ``locales/*.toml`` carry the
``[engine]`` keys, the English text below is used, so the engine never fails for want of
a translation; once a catalogue has a key, its text (zh-CN included) wins.
"""

from __future__ import annotations

from patron.i18n import _

__all__ = ["message", "FALLBACK"]

FALLBACK = {
    "engine.bad_option": "{option}={value!r} is not valid; choose one of {choices}.",
    "engine.bad_date": "{option}={value!r} is not a date (give a date such as 2024-03-05).",
    "engine.calibration_after_as_of": (
        "calibration_end={calibration_end} must be before as_of={as_of}: the holdout period "
        "is the time between them."
    ),
    "engine.missing_columns": (
        "The transactions table has no column {missing}; it needs customer_id, ts and "
        "amount. Columns found: {found}."
    ),
    "engine.bad_type.customer_id": (
        "Column customer_id has type {type}; it must hold text (or whole numbers)."
    ),
    "engine.bad_type.ts": "Column ts has type {type}; it must hold timestamps or dates.",
    "engine.bad_type.amount": "Column amount has type {type}; it must hold numbers.",
    "engine.no_transactions": (
        "There are no transactions to summarise, so there is no last date to use as as_of."
    ),
}


def message(key: str, **values: object) -> str:
    """The message ``key`` in the current language, with its placeholders filled in."""
    try:
        return _(key, **values)
    except KeyError:
        return FALLBACK[key].format(**values)
