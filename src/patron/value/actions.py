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

__all__ = ["RISKS", "churn_risk", "next_best_actions", "action_codes", "action_text"]

RISKS = ("low", "medium", "high")


def churn_risk(
    p_alive: np.ndarray,
    overdue: np.ndarray,
    rules: RiskRules,
    stages: StageRules,
    *,
    codes: bool = False,
) -> np.ndarray:
    """Low / medium / high: the higher of what P(alive) and the overdue ratio say.

    Overdue past the at-risk threshold of the lifecycle rules is medium, past the churned
    one high, so the risk never contradicts the stage (BG/NBD's P(alive) of 1 for
    one-time buyers included).

    >>> churn_risk(np.array([0.9, 0.5, 0.1, 0.9]), np.array([0.5, 0.5, 0.5, 5.0]),
    ...            RiskRules(), StageRules()).tolist()
    ['low', 'medium', 'high', 'high']

    With ``codes=True``: indices into :data:`RISKS` (int8) instead of strings.
    """
    level = np.where(p_alive < rules.high, 2, np.where(p_alive < rules.medium, 1, 0))
    late = np.where(
        overdue > stages.churned_overdue, 2, np.where(overdue > stages.at_risk_overdue, 1, 0)
    )
    level = np.maximum(level, late).astype(np.int8)
    return level if codes else np.asarray(RISKS)[level]


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
    biggest spender) serves rules with ``min_value_share``.  ``stage`` and ``risk`` are
    code strings; :func:`action_codes` does the same on integer codes.
    """
    from patron.value.lifecycle import STAGES

    stage_codes = np.select([stage == s for s in STAGES], list(range(len(STAGES))), default=-1)
    risk_codes = np.select([risk == r for r in RISKS], list(range(len(RISKS))), default=-1)
    codes, actions = action_codes(
        grade, n_grades, stage_codes, risk_codes, spend_top_share, playbook, names
    )
    return np.asarray(actions)[codes]


def action_codes(
    grade: np.ndarray,
    n_grades: int,
    stage: np.ndarray,
    risk: np.ndarray,
    spend_top_share: np.ndarray,
    playbook: tuple[Play, ...],
    names: tuple[str, ...] = (),
) -> tuple[np.ndarray, list[str]]:
    """:func:`next_best_actions` on integer codes, returning indices into a list of actions.

    ``stage`` and ``risk`` index ``STAGES`` and :data:`RISKS`; the list returned is every
    action of the playbook and ``no_action``, sorted.  Comparing small integers, not
    strings, is what keeps this cheap on millions of rows.
    """
    from patron.value.lifecycle import STAGES

    actions = sorted({p.action for p in playbook} | {"no_action"})
    n = len(grade)
    action = np.full(n, actions.index("no_action"), dtype=np.int16)
    open_ = np.ones(n, dtype=bool)
    for play in playbook:
        mask = open_.copy()
        if play.grade != "*":
            wanted = {"top": 0, "bottom": n_grades - 1}.get(play.grade)
            if wanted is None:
                wanted = names.index(play.grade) if play.grade in names else -1
            mask &= grade == wanted
        if play.stage != "*":
            mask &= stage == (STAGES.index(play.stage) if play.stage in STAGES else -2)
        if play.risk != "*":
            mask &= risk == (RISKS.index(play.risk) if play.risk in RISKS else -2)
        if play.min_value_share > 0:
            mask &= spend_top_share <= play.min_value_share * 100
        action[mask] = actions.index(play.action)
        open_ &= ~mask
    return action, actions


def action_text(code: str, lang: str | None = None) -> str:
    """The action's text in the language in use; a custom code is shown as written."""
    return catalogue(lang or get_language()).get(f"value.action.{code}", code)
