"""The engine: transactions -> per-customer summary, as one Ibis expression on any backend."""

from patron.engine.summary import HOLDOUT_COLUMNS, SUMMARY_COLUMNS, summarize

__all__ = ["summarize", "SUMMARY_COLUMNS", "HOLDOUT_COLUMNS"]
