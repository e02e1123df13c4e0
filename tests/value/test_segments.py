"""RFM scores and segments, grades, lifecycle stages, risk and the playbook."""

from __future__ import annotations

import numpy as np
import pytest

from patron.value.actions import churn_risk, next_best_actions
from patron.value.config import GradeRules, Play, RiskRules, StageRules
from patron.value.grades import assign_grades, ranks, top_share
from patron.value.lifecycle import lifecycle_stages, rhythm
from patron.value.rfm import SEGMENTS, quintile_scores, rfm_segments


def test_quintiles_split_distinct_values_evenly():
    scores = quintile_scores(np.arange(100.0))
    assert np.bincount(scores)[1:].tolist() == [20, 20, 20, 20, 20]
    assert scores[0] == 1 and scores[-1] == 5


def test_ties_share_a_score():
    values = np.array([1.0] * 60 + list(range(2, 42)))
    scores = quintile_scores(values)
    assert len(set(scores[:60].tolist())) == 1


def test_every_rfm_cell_has_one_of_the_eleven_segments():
    r, fm = np.meshgrid(np.arange(1, 6), np.arange(1, 6))
    segments = rfm_segments(r.ravel(), fm.ravel(), fm.ravel())
    assert set(segments) == set(SEGMENTS)
    by_cell = dict(
        zip(zip(r.ravel().tolist(), fm.ravel().tolist(), strict=False), segments, strict=True)
    )
    assert by_cell[5, 5] == "champions"
    assert by_cell[1, 5] == "cant_lose"
    assert by_cell[1, 1] == "lost"
    assert by_cell[5, 1] == "new"


def test_ranks_match_the_usual_definitions():
    values = np.array([10.0, 30.0, 20.0, 30.0])
    assert ranks(values).tolist() == [1.0, 3.5, 2.0, 3.5]
    assert ranks(values, ties="max").tolist() == [1.0, 4.0, 2.0, 4.0]
    assert top_share(values).tolist() == [100.0, 50.0, 75.0, 50.0]


def test_default_grades_are_top_ten_and_next_twenty_percent():
    rng = np.random.default_rng(0)
    n = 1000
    ingredients = {
        "predicted_clv": rng.gamma(1, 100, n),
        "total_spend": rng.gamma(1, 100, n),
        "repeat_rate": rng.random(n),
        "recency": -rng.random(n),
    }
    grade, score = assign_grades(ingredients, GradeRules())
    assert np.bincount(grade).tolist() == [100, 200, 700]
    assert score[grade == 0].min() >= score[grade == 1].max()
    assert score[grade == 1].min() >= score[grade == 2].max()


def test_configured_grades_and_missing_satisfaction():
    rules = GradeRules(names=("钻石", "黄金", "白银", "普通"), cutoffs=(0.05, 0.15, 0.35))
    values = np.arange(200.0)
    ingredients = {
        "predicted_clv": values,
        "total_spend": values,
        "satisfaction": np.full(200, np.nan),
    }
    grade, _ = assign_grades(ingredients, rules)
    assert np.bincount(grade).tolist() == [10, 20, 40, 130]
    assert grade[-1] == 0 and grade[0] == 3


def test_rhythm_uses_the_population_for_one_time_buyers():
    r = rhythm(np.array([0, 2, 4]), np.array([0, 10.0, 8.0]), np.array([3, 12, 9.0]))
    assert r.tolist() == [3.5, 5.0, 2.0]


def test_stages_follow_the_customers_own_rhythm():
    rules = StageRules()
    # weekly buyer silent 1 week, weekly buyer silent 10 weeks, one-timer fresh, one-timer
    # long gone, a comeback after a long gap, a new regular with few purchases
    x = np.array([10, 10, 0, 0, 3, 1])
    t_x = np.array([10.0, 10.0, 0, 0, 30.0, 4.0])
    T = np.array([11.0, 20.0, 1.0, 60.0, 30.5, 6.0])
    gap = np.array([1.0, 1.0, 0, 0, 28.0, 4.0])
    stage, overdue = lifecycle_stages(x, t_x, T, np.ones(6), gap, rules)
    assert stage.tolist() == ["mature", "churned", "new", "churned", "reactivated", "growing"]
    assert overdue[0] == pytest.approx(1.0)


def test_one_time_buyers_decay_towards_churned_even_with_p_alive_one():
    """BG/NBD says P(alive) = 1 for every one-time buyer; the stage must not."""
    T = np.array([1.0, 6.0, 10.0, 30.0])
    x = np.array([0, 0, 0, 0, 5, 5])
    t_x = np.array([0, 0, 0, 0, 10.0, 10.0])
    stage, _ = lifecycle_stages(
        x,
        t_x,
        np.concatenate([T, [12.0, 12.0]]),
        np.ones(6),
        np.array([0, 0, 0, 0, 2, 2.0]),
        StageRules(),
    )
    assert stage[:4].tolist() == ["new", "at_risk", "churned", "churned"]


def test_risk_is_the_higher_of_p_alive_and_overdue():
    risk = churn_risk(
        np.array([0.9, 0.5, 0.1, 0.9, 0.9]),
        np.array([0.5, 0.5, 0.5, 3.0, 5.0]),
        RiskRules(),
        StageRules(),
    )
    assert risk.tolist() == ["low", "medium", "high", "medium", "high"]


def test_the_first_matching_play_wins():
    playbook = (
        Play("personal_call", grade="top", stage="at_risk"),
        Play("winback_offer", stage="churned", min_value_share=0.3),
        Play("welcome_series", stage="new"),
        Play("upsell_offer", grade="silver", stage="growing"),
        Play("nurture"),
    )
    grade = np.array([0, 2, 2, 2, 1, 1])
    stage = np.array(["at_risk", "at_risk", "churned", "churned", "new", "growing"], dtype=object)
    risk = np.array(["high"] * 6, dtype=object)
    share = np.array([1.0, 50.0, 10.0, 90.0, 50.0, 50.0])
    names = ("gold", "silver", "regular")
    actions = next_best_actions(grade, 3, stage, risk, share, playbook, names)
    assert actions.tolist() == [
        "personal_call",
        "nurture",
        "winback_offer",
        "nurture",
        "welcome_series",
        "upsell_offer",
    ]
