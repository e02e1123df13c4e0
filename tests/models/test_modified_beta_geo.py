"""MBG/NBD against lifetimes' ModifiedBetaGeoFitter (the paper prints no CDNOW figures)."""

from __future__ import annotations

import numpy as np
import pytest

from patron.models import BetaGeo, ModifiedBetaGeo

# lifetimes 0.11.3 ModifiedBetaGeoFitter().fit(frequency, recency, T) on the same CDNOW
# summary (tests/data/cdnow_lifetimes_summary.csv holds its input), printed with repr().
LIFETIMES = {
    "r": 0.5248429031495964,
    "alpha": 6.183081764399258,
    "a": 0.8913595172712049,
    "b": 1.6140029311982784,
}
LIFETIMES_CONDITIONAL_39 = 1.2626692202500687  # conditional_..._up_to_time(39, 2, 30.43, 38.86)
LIFETIMES_P_ALIVE = 0.7061257  # conditional_probability_alive(2, 30.43, 38.86)
LIFETIMES_P_ALIVE_ONE_TIMER = 0.38971519  # conditional_probability_alive(0, 0, 38.86)
# expected_number_of_purchases_up_to_time(39) gives 1.1822798470838023: lifetimes evaluates
# 2F1 where it converges slowly and is off by 8e-8; patron's value is checked against the
# mean of the purchase-count distribution below instead.
LIFETIMES_EXPECTED_39 = 1.1822798470838023


@pytest.fixture(scope="module")
def fitted(cdnow_summary):
    return ModifiedBetaGeo().fit_summary(cdnow_summary)


def test_estimates_equal_lifetimes_modified_beta_geo_fitter(fitted):
    for name, value in LIFETIMES.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-5), name
    assert fitted.conditional_expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(
        LIFETIMES_CONDITIONAL_39, rel=1e-6
    )
    assert fitted.probability_alive(2, 30.43, 38.86) == pytest.approx(LIFETIMES_P_ALIVE, abs=1e-7)
    assert fitted.probability_alive(0, 0, 38.86) == pytest.approx(
        LIFETIMES_P_ALIVE_ONE_TIMER, abs=1e-6
    )
    assert fitted.expected_purchases(39) == pytest.approx(LIFETIMES_EXPECTED_39, rel=1e-6)


def test_fits_cdnow_a_little_better_than_bg_nbd(fitted, cdnow_summary):
    """MBG/NBD nests no BG/NBD, but on CDNOW its likelihood is slightly higher."""
    plain = BetaGeo().fit_summary(cdnow_summary)
    assert plain.log_likelihood_ < fitted.log_likelihood_ < plain.log_likelihood_ + 1


def test_one_time_buyers_decay_towards_gone(fitted):
    """Why patron's lifecycle stages use MBG/NBD: P(alive) of a one-time buyer falls with
    the time since that purchase, where BG/NBD keeps it at 1."""
    p = fitted.probability_alive(0, 0, [1.0, 10.0, 52.0, 520.0])
    assert np.all(np.diff(p) < 0)
    assert p[-1] < 0.2


def test_expected_purchases_is_the_mean_of_the_purchase_distribution(fitted):
    n = np.arange(0, 600)
    for t in (1.0, 39.0, 78.0):
        pmf = fitted.probability_of_purchases(t, n)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
        assert (n * pmf).sum() == pytest.approx(fitted.expected_purchases(t), rel=1e-9)


def test_parameters_are_recovered_from_simulated_customers():
    truth = dict(LIFETIMES)
    model = ModifiedBetaGeo()
    model.params_ = truth
    rng = np.random.default_rng(3)
    T = rng.integers(1, 365, 100_000) / 7
    fitted = ModifiedBetaGeo().fit_summary(model.simulate(100_000, T, seed=8))
    for name, value in truth.items():
        low, high = fitted.confidence_intervals_[name]
        assert low < value < high, (name, low, value, high)
