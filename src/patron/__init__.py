"""patron: customer value management from a business's own records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "read_transactions",
    "summarize",
    "analyze",
    "backtest",
    "InputError",
    "PatronError",
    "__version__",
]

from patron.errors import InputError, PatronError

if TYPE_CHECKING:
    from patron.engine import summarize
    from patron.ingest import read_transactions
    from patron.value.analyze import analyze
    from patron.value.backtest import backtest


def __getattr__(name: str) -> Any:
    # Lazy: `patron --help` must not pay for pyarrow, ibis and duckdb.
    if name == "read_transactions":
        from patron.ingest import read_transactions

        return read_transactions
    if name == "summarize":
        from patron.engine import summarize

        return summarize
    if name in ("analyze", "backtest"):
        from importlib import import_module

        return getattr(import_module(f"patron.value.{name}"), name)
    if name in ("datasets", "models"):
        from importlib import import_module

        return import_module(f"patron.{name}")
    raise AttributeError(f"module 'patron' has no attribute {name!r}")
