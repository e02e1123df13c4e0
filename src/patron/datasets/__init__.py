"""Data to try patron on: the real data sets of the papers and a synthetic Chinese shop.

The real ones (CDNOW, donations, sBG retention) are the test oracles for the models; the
synthetic shop export exercises ingest with the mess real exports have, and tells exactly
what that mess is.
"""

from patron.datasets.cdnow import cdnow, cdnow_path, donations, sbg_retention
from patron.datasets.demo_shop import demo_shop

__all__ = ["cdnow", "cdnow_path", "demo_shop", "donations", "sbg_retention"]
