"""Lifecycle stages: new, growing, mature, at risk, churned, reactivated.

A stage answers "where is this customer in their relationship with us", so it is read off
two clocks: the model's P(alive), and the customer's *own* rhythm -- their mean time
between purchases -- against the time since their last purchase ("overdue": 1 means one
usual gap has passed, 3 means three).  A weekly buyer silent for a month is at risk; a
yearly buyer silent for a month is not.

One-time buyers have no rhythm of their own; they are measured against the population's
median rhythm, so they decay from new to at risk to churned as time passes, even under
BG/NBD, whose P(alive) stays 1 for them (the known failing of that model).  The stage then
does not depend on which purchase model was chosen.
"""

from __future__ import annotations

import numpy as np

from patron.value.config import StageRules

__all__ = ["STAGES", "rhythm", "lifecycle_stages"]

STAGES = ("new", "growing", "mature", "at_risk", "churned", "reactivated")


def rhythm(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Each customer's mean time between purchases; the population median for one-timers.

    >>> rhythm(np.array([0, 2, 4]), np.array([0, 10.0, 8.0]), np.array([3, 12, 9.0])).tolist()
    [3.5, 5.0, 2.0]
    """
    repeat = frequency > 0
    own = np.divide(recency, frequency, out=np.zeros_like(recency, dtype=float), where=repeat)
    if repeat.any():
        typical = float(np.median(own[repeat]))
    else:
        typical = float(np.median(T)) if len(T) else 1.0
    typical = typical if typical > 0 else 1.0
    return np.where(repeat & (own > 0), own, typical)


def lifecycle_stages(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    p_alive: np.ndarray,
    last_gap: np.ndarray,
    rules: StageRules,
    *,
    codes: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Stage codes (from :data:`STAGES`) and the overdue ratio of every customer.

    With ``codes=True`` the stages come as indices into :data:`STAGES` (int8), which is
    what millions of customers should be carried as; else as the code strings.

    ``last_gap`` is the time between the customer's last two purchases (0 without a
    repeat purchase), in the unit of ``recency`` and ``T``.  Precedence: churned, at risk,
    reactivated, new, mature, growing.
    """
    usual = rhythm(frequency, recency, T)
    overdue = (T - recency) / usual
    repeat = frequency > 0
    # The rhythm before the last gap: a long gap that ends in a purchase is a comeback.
    before = np.divide(
        recency - last_gap,
        frequency - 1,
        out=np.full(len(frequency), np.nan),
        where=frequency >= 2,
    )
    before = np.where(np.isfinite(before) & (before > 0), before, usual)
    churned = (p_alive < rules.churned_p_alive) | (overdue > rules.churned_overdue)
    at_risk = (p_alive < rules.at_risk_p_alive) | (overdue > rules.at_risk_overdue)
    reactivated = repeat & (last_gap > rules.reactivated_gap_rhythms * before)
    new = ~repeat & (T <= rules.new_within_rhythms * usual)
    mature = frequency + 1 >= rules.mature_purchases
    order = ["churned", "at_risk", "reactivated", "new", "mature"]
    stage = np.select(
        [churned, at_risk, reactivated, new, mature],
        [np.int8(STAGES.index(name)) for name in order],
        default=np.int8(STAGES.index("growing")),
    ).astype(np.int8)
    return (stage if codes else np.asarray(STAGES)[stage]), overdue
