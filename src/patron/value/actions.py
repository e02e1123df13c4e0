"""Churn risk and the next best action, from a playbook of (grade, stage, risk) rules.

The playbook is an ordered list (see :mod:`patron.value.config`); the first matching rule
wins, so specific rules ("top grade at risk -> personal call") come before general ones
("at risk -> reactivation nudge").  Built-in action codes have zh/en text in the message
catalogue; a business's own codes are shown as written.
"""

from __future__ import annotations

import numpy as np

from patron.i18n import catalogue, get_language
from patron.value.config import Play, RiskRules, StageRules

__all__ = ["RISKS", "churn_risk", "next_best_actions", "action_text"]

RISKS = ("low", "medium", "high")


def churn_risk(
    p_alive: np.ndarray, overdue: np.ndarray, rules: RiskRules, stages: StageRules
) -> np.ndarray:
    """Low / medium / high: the higher of what P(alive) and the overdue ratio say.

    Overdue past the at-risk threshold of the lifecycle rules is medium, past the churned
    one high, so the risk never contradicts the stage (BG/NBD's P(alive) of 1 for
    one-time buyers included).

    >>> churn_risk(np.array([0.9, 0.5, 0.1, 0.9]), np.array([0.5, 0.5, 0.5, 5.0]),
    ...            RiskRules(), StageRules()).tolist()
    ['low', 'medium', 'high', 'high']
    """
    level = np.where(p_alive < rules.high, 2, np.where(p_alive < rules.medium, 1, 0))
    late = np.where(
        overdue > stages.churned_overdue, 2, np.where(overdue > stages.at_risk_overdue, 1, 0)
    )
    level = np.maximum(level, late)
    return np.asarray(RISKS)[level]


def next_best_actions(
    grade: np.ndarray,
    n_grades: int,
    stage: np.ndarray,
    risk: np.ndarray,
    spend_top_share: np.ndarray,
    playbook: tuple[Play, ...],
    names: tuple[str, ...] = (),
) -> np.ndarray:
    """The action code of the first matching playbook rule for every customer.

    ``grade`` holds grade indices (0 = top); rules may name a grade by its name in
    ``names``, or as ``top`` or ``bottom``.  ``spend_top_share`` (percent, 1 = the
    biggest spender) serves rules with ``min_value_share``.
    """
    n = len(grade)
    width = max(len(p.action) for p in playbook) if playbook else 1
    action = np.full(n, "", dtype=f"<U{max(width, len('no_action'))}")
    open_ = np.ones(n, dtype=bool)
    for play in playbook:
        mask = open_.copy()
        if play.grade != "*":
            wanted = {"top": 0, "bottom": n_grades - 1}.get(play.grade)
            if wanted is None:
                wanted = names.index(play.grade) if play.grade in names else -1
            mask &= grade == wanted
        if play.stage != "*":
            mask &= stage == play.stage
        if play.risk != "*":
            mask &= risk == play.risk
        if play.min_value_share > 0:
            mask &= spend_top_share <= play.min_value_share * 100
        action[mask] = play.action
        open_ &= ~mask
    action[open_] = "no_action"
    return action


def action_text(code: str, lang: str | None = None) -> str:
    """The action's text in the language in use; a custom code is shown as written."""
    return catalogue(lang or get_language()).get(f"value.action.{code}", code)
