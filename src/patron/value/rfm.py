"""RFM: recency, frequency and monetary quintile scores, and the named segments.

Scores are 1-5 from each customer's percentile rank, with ties sharing the lowest rank of
their group, so the many customers with one order all get F = 1 rather than being split at
random across quintiles (or all landing on 2 or 3, as an average rank would put them).
Segments follow the common R x FM grid (FM = the rounded mean of F and M):

=====================  ===========  ============
segment                R            FM
=====================  ===========  ============
champions              5            4-5
loyal                  3-5          3-5 (rest)
potential_loyalists    4-5          2-3
new                    5            1
promising              4            1
need_attention         3            3
about_to_sleep         3            1-2
cant_lose              1-2          5
at_risk                1-2          3-4
hibernating            2            1-2
lost                   1            1-2
=====================  ===========  ============
"""

from __future__ import annotations

import numpy as np

from patron.value.grades import ranks

__all__ = ["SEGMENTS", "quintile_scores", "rfm_segments"]

SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalists",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "cant_lose",
    "at_risk",
    "hibernating",
    "lost",
)


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """Scores 1-5 by percentile rank (ties share the lowest); higher values score higher.

    >>> quintile_scores(np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6])).tolist()
    [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.int8)
    share = ranks(values, ties="min") / len(values)
    return np.clip(np.ceil(share * 5), 1, 5).astype(np.int8)


def _segment_table() -> np.ndarray:
    """Segment index for every (R, FM) pair, R and FM in 1..5."""
    grid = np.empty((6, 6), dtype=np.int8)
    name = SEGMENTS.index
    for r in range(1, 6):
        for fm in range(1, 6):
            if r == 5 and fm >= 4:
                s = "champions"
            elif r >= 4 and fm in (2, 3):
                s = "potential_loyalists"
            elif r == 5 and fm == 1:
                s = "new"
            elif r == 4 and fm == 1:
                s = "promising"
            elif r == 3 and fm == 3:
                s = "need_attention"
            elif r == 3 and fm <= 2:
                s = "about_to_sleep"
            elif r >= 3:
                s = "loyal"
            elif fm == 5:
                s = "cant_lose"
            elif fm >= 3:
                s = "at_risk"
            elif r == 2:
                s = "hibernating"
            else:
                s = "lost"
            grid[r, fm] = name(s)
    return grid


_GRID = _segment_table()


def rfm_segments(r: np.ndarray, f: np.ndarray, m: np.ndarray, *, codes: bool = False) -> np.ndarray:
    """Segment codes (from :data:`SEGMENTS`) for R, F, M scores.

    With ``codes=True``: indices into :data:`SEGMENTS` instead of strings.

    >>> rfm_segments(np.array([5, 1, 3]), np.array([5, 1, 3]), np.array([4, 2, 3])).tolist()
    ['champions', 'lost', 'need_attention']
    """
    fm = np.floor((f.astype(float) + m) / 2 + 0.5).astype(int)
    index = _GRID[r, fm]
    return index if codes else np.asarray(SEGMENTS)[index]
