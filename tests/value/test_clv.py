"""CLV: the point value is the discounted expectation; the interval covers what happens."""

from __future__ import annotations

import numpy as np
import pytest

from patron.errors import InputError
from patron.models import BetaGeo
from patron.value.clv import customer_value, parse_horizon

TRUTH = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def _histories(n: int, calibration: float, holdout: float, seed: int):
    """BG/NBD customers followed for calibration + holdout weeks: the calibration summary
    and the purchases each made in the holdout."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], n)
    p = rng.beta(TRUTH["a"], TRUTH["b"], n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    later = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > calibration + holdout:
                break
            if t <= calibration:
                x[i] += 1
                t_x[i] = t
            else:
                later[i] += 1
            if rng.random() < p[i]:
                break
    return x, t_x, np.full(n, calibration), later


@pytest.fixture(scope="module")
def fitted_and_data():
    x, t_x, T, later = _histories(20_000, 39.0, 52.0, seed=4)
    model = BetaGeo().fit(x, t_x, T)
    return model, x, t_x, T, later


def test_horizons_are_explicit_lengths():
    assert parse_horizon("12M").steps == 12
    assert parse_horizon("12M").step_days == pytest.approx(365.25 / 12)
    assert parse_horizon("26w").step_days == 7
    assert parse_horizon("2Y").days == pytest.approx(730.5)
    with pytest.raises(InputError, match="12M, 26W"):
        parse_horizon("a year")


def test_without_discount_clv_is_expected_purchases_times_spend(fitted_and_data):
    model, x, t_x, T, _ = fitted_and_data
    spend = np.full(len(x), 20.0)
    scores = customer_value(
        model,
        spend,
        None,
        x,
        t_x,
        T,
        horizon=parse_horizon("52W"),
        time_unit="W",
        discount_rate=0.0,
    )
    expected = model.conditional_expected_purchases(52, x, t_x, T)
    assert np.allclose(scores.expected_purchases, expected)
    assert np.allclose(scores.predicted_clv, 20.0 * expected)
    assert scores.purchases_by_step.sum() == pytest.approx(expected.sum())


def test_discounting_lowers_value_by_the_right_amount(fitted_and_data):
    model, x, t_x, T, _ = fitted_and_data
    spend = np.ones(len(x))
    horizon = parse_horizon("1Y")
    plain = customer_value(
        model, spend, None, x, t_x, T, horizon=horizon, time_unit="W", discount_rate=0.0
    )
    discounted = customer_value(
        model, spend, None, x, t_x, T, horizon=horizon, time_unit="W", discount_rate=0.10
    )
    ratio = discounted.predicted_clv.sum() / plain.predicted_clv.sum()
    # Purchases spread over the year are discounted by between 1/1.1 and 1.
    assert 1 / 1.10 < ratio < 1.0
    assert np.all(discounted.predicted_clv <= plain.predicted_clv + 1e-12)


def test_the_80_percent_interval_covers_about_80_percent_of_what_happened(fitted_and_data):
    """Coverage on the 52 weeks that followed, for customers simulated from the model."""
    model, x, t_x, T, later = fitted_and_data
    scores = customer_value(
        model,
        np.ones(len(x)),
        None,
        x,
        t_x,
        T,
        horizon=parse_horizon("52W"),
        time_unit="W",
        discount_rate=0.0,
    )
    assert np.all(scores.clv_low <= scores.predicted_clv + 1e-9)
    assert np.all(scores.predicted_clv <= scores.clv_high + 1e-9)
    inside = (later >= scores.clv_low - 1e-9) & (later <= scores.clv_high + 1e-9)
    # Counts are whole numbers, so the interval is a little conservative.
    assert 0.78 <= inside.mean() <= 0.95, inside.mean()
    repeaters = x >= 3
    assert 0.70 <= inside[repeaters].mean() <= 0.97, inside[repeaters].mean()
