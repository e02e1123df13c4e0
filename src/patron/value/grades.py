"""Customer grades (客户等级): a composite of value and loyalty, cut at fixed shares.

Value is what the customer will bring (predicted CLV) and has brought (net spend); loyalty
is how often they come back (repeat purchases per unit of tenure), how recently, and how
satisfied they say they are when that is known.  Each ingredient enters as a percentile
rank, so a long tail of big spenders cannot swamp the others, and a missing ingredient
(no satisfaction data) gives its weight to the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from patron.i18n import _
from patron.models.inputs import distinct_values
from patron.value.config import GRADE_CODES, GradeRules

__all__ = ["assign_grades", "grade_label", "top_share"]


def ranks(values: np.ndarray, ties: str = "average") -> np.ndarray:
    """Ranks 1..n of ``values``; equal values share the ``average``, ``min`` or ``max`` rank.

    (``scipy.stats.rankdata`` does the same, but importing scipy.stats costs a second.)

    >>> ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    index, counts, last = _rank_parts(values)
    per_value = {"max": last, "min": last - counts + 1}.get(ties, last - (counts - 1) / 2)
    return per_value[index]


_shared: dict | None = None


@contextlib.contextmanager
def shared_ranks() -> Iterator[None]:
    """Within this block, ranking the same values twice sorts them once.

    Scoring ranks spend, recency and value for RFM, grades and reasons alike; on 3M
    customers each sort takes most of a second.
    """
    global _shared
    _shared = {}
    try:
        yield
    finally:
        _shared = None


def _rank_parts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    key = None
    if _shared is not None:
        key = (values.dtype.str, len(values), hash(values.tobytes()))
        if key in _shared:
            return _shared[key]
    if len(values) > _HASH_FROM and values.dtype.kind in "iuf" and not np.isnan(values).any():
        _distinct, index, counts = distinct_values(values)
    else:
        _unique, index, counts = np.unique(values, return_inverse=True, return_counts=True)
    parts = (index, counts, np.cumsum(counts).astype(float))
    if key is not None:
        _shared[key] = parts
    return parts


# From this many values, hashing then sorting the distinct ones beats sorting them all.
_HASH_FROM = 100_000


def top_share(values: np.ndarray) -> np.ndarray:
    """The share of customers at or above each value, in percent (1 = the very top).

    >>> top_share(np.array([10.0, 30.0, 20.0, 0.0])).tolist()
    [75.0, 25.0, 50.0, 100.0]
    """
    if len(values) == 0:
        return np.zeros(0)
    # The highest rank among equals of -values, from the lowest rank of values.
    return (len(values) - ranks(values, ties="min") + 1) / len(values) * 100


def _percentile(values: np.ndarray) -> np.ndarray:
    return ranks(values) / len(values)


def assign_grades(
    ingredients: dict[str, np.ndarray], rules: GradeRules
) -> tuple[np.ndarray, np.ndarray]:
    """Grade index (0 = top) and the composite score of every customer.

    ``ingredients`` maps the names in ``rules.weights`` to per-customer values where
    higher is better; an ingredient that is absent or all NaN gives its weight away.
    """
    n = len(next(iter(ingredients.values())))
    score = np.zeros(n)
    total = 0.0
    for name, weight in rules.weights.items():
        values = ingredients.get(name)
        if weight <= 0 or values is None or n == 0:
            continue
        known = np.isfinite(values)
        if not known.any():
            continue
        ranks = np.full(n, 0.5)  # unknown satisfaction counts as middling
        ranks[known] = _percentile(values[known])
        score += weight * ranks
        total += weight
    score /= total or 1.0
    # Rank by score; a stable sort keeps equal scores in table order (deterministic).
    order = np.argsort(-score, kind="stable")
    position = np.empty(n)
    position[order] = (np.arange(n) + 1) / max(n, 1)
    grade = np.searchsorted(np.asarray(rules.cutoffs), position, side="left")
    return grade.astype(np.int8), score


def grade_label(index: int, rules: GradeRules) -> str:
    """The grade's name for display: translated for the built-in codes, else as given."""
    name = rules.names[index]
    return _(f"value.grade.{name}") if name in GRADE_CODES else name
