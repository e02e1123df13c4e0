"""BG/NBD against its paper, lifetimes and its own simulation."""

from __future__ import annotations

import numpy as np
import pytest

from patron.models import BetaGeo

# lifetimes 0.11.3 BetaGeoFitter().fit(frequency, recency, T) on the same CDNOW summary
# (tests/data/cdnow_lifetimes_summary.csv holds its input), printed with repr().
LIFETIMES = {
    "r": 0.24259454342106715,
    "alpha": 4.413602716077379,
    "a": 0.7929218333480146,
    "b": 2.4259057287223023,
}
LIFETIMES_CONDITIONAL_39 = (
    1.2259068098148258  # conditional_expected_..._up_to_time(39, 2, 30.43, 38.86)
)
LIFETIMES_EXPECTED_39 = 1.1950099744790117  # expected_number_of_purchases_up_to_time(39)
LIFETIMES_P2_39 = 0.08532292342736295  # probability_of_n_purchases_up_to_time(39, 2)


@pytest.fixture(scope="module")
def fitted(cdnow_summary):
    return BetaGeo().fit_summary(cdnow_summary)


def test_cdnow_estimates_equal_fader_hardie_lee_2005_table(fitted):
    """FHL (2005) p. 279: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4."""
    p = fitted.params_
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert round(fitted.log_likelihood_, 1) == -9582.4
    assert fitted.n_customers_ == 2357


def test_conditional_expectation_equals_fader_hardie_lee_2005(fitted):
    """FHL (2005) p. 281: a customer with x = 2, t_x = 30.43, T = 38.86 makes 1.226 purchases
    in the next 39 weeks."""
    assert round(fitted.conditional_expected_purchases(39, 2, 30.43, 38.86), 3) == 1.226


def test_estimates_equal_lifetimes_to_five_digits(fitted):
    for name, value in LIFETIMES.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-5), name
    assert fitted.conditional_expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(
        LIFETIMES_CONDITIONAL_39, rel=1e-5
    )
    assert fitted.expected_purchases(39) == pytest.approx(LIFETIMES_EXPECTED_39, rel=1e-5)
    assert fitted.probability_of_purchases(39, 2) == pytest.approx(LIFETIMES_P2_39, rel=1e-5)


def test_standard_errors_and_intervals_are_consistent(fitted):
    for name, value in fitted.params_.items():
        se = fitted.standard_errors_[name]
        low, high = fitted.confidence_intervals_[name]
        assert 0 < se < value
        assert 0 < low < value < high
        # The log-scale Wald interval is about value +- 1.96 se when se is small.
        assert high - low == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert np.allclose(np.sqrt(np.diag(fitted.covariance_)), list(fitted.standard_errors_.values()))


def test_expected_purchases_is_the_mean_of_the_purchase_distribution(fitted):
    n = np.arange(0, 600)
    for t in (1.0, 39.0, 78.0):
        pmf = fitted.probability_of_purchases(t, n)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
        assert (n * pmf).sum() == pytest.approx(fitted.expected_purchases(t), rel=1e-9)


def test_probability_alive_of_one_time_buyers_is_one(fitted):
    """The known failing of plain BG/NBD that MBG/NBD exists to fix."""
    assert fitted.probability_alive(0, 0, [1.0, 100.0, 1e6]).tolist() == [1.0, 1.0, 1.0]


def test_parameters_are_recovered_from_simulated_customers():
    truth = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    model = BetaGeo()
    model.params_ = truth
    rng = np.random.default_rng(11)
    T = rng.integers(1, 365, 100_000) / 7
    simulated = model.simulate(100_000, T, seed=5)
    fitted = BetaGeo().fit_summary(simulated)
    for name, value in truth.items():
        low, high = fitted.confidence_intervals_[name]
        assert low < value < high, (name, low, value, high)
