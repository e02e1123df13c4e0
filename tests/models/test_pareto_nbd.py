"""Pareto/NBD against its published CDNOW estimates, the note's 2F1 form, lifetimes and its
own simulation.

The generic checks every model passes (fit returns self, edges, scalar output, ...) are in
test_conformance.py; these are the ones particular to this model and its quadrature.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from patron.models import ParetoNBD
from patron.models.histories import Histories

PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}

# lifetimes 0.11.3: ParetoNBDFitter with params_ set to PUBLISHED (no fit), printed with
# repr(): conditional_probability_alive(2, 30.43, 38.86), (0, 0, 38.86),
# conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86) and
# expected_number_of_purchases_up_to_time(39).
LIFETIMES_P_ALIVE = 0.8691675591530111
LIFETIMES_P_ALIVE_ONE_TIMER = 0.29528660461689443
LIFETIMES_CONDITIONAL_39 = 1.4551231932576019
LIFETIMES_EXPECTED_39 = 1.2130028442810157


@pytest.fixture(scope="module")
def fitted(cdnow_summary):
    return ParetoNBD().fit_summary(cdnow_summary)


@pytest.fixture
def published():
    model = ParetoNBD()
    model.params_ = dict(PUBLISHED)
    return model


def _cdnow_histories(summary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(summary[k].to_numpy().astype(float) for k in ("frequency", "recency", "T"))


def test_cdnow_estimates_equal_the_published_ones(fitted):
    """Fader, Hardie & Lee (2005), Marketing Science 24(2), report the Pareto/NBD on this
    data beside their BG/NBD: r = 0.553, alpha = 10.578, s = 0.606, beta = 11.669, LL =
    -9595.0.  The same four values are lifetimes' oracle for its ParetoNBDFitter
    (lifetimes tests/test_estimation.py, ``test_params_out_is_close_to_Hardie_paper``)."""
    p = fitted.params_
    assert {k: round(v, 3) for k, v in p.items()} == PUBLISHED
    assert round(fitted.log_likelihood_, 1) == -9595.0
    assert fitted.n_customers_ == 2357


def _note_log_likelihood(r, alpha, s, beta, x, t_x, T):
    """Fader & Hardie (2005), "A note on deriving the Pareto/NBD model", section 3."""
    m = r + s + x
    if alpha >= beta:

        def a(t):
            return special.hyp2f1(m, s + 1, m + 1, (alpha - beta) / (alpha + t)) / (alpha + t) ** m
    else:

        def a(t):
            return special.hyp2f1(m, r + x, m + 1, (beta - alpha) / (beta + t)) / (beta + t) ** m

    bracket = (alpha + T) ** -(r + x) * (beta + T) ** -s + s / m * (a(t_x) - a(T))
    return (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        + np.log(bracket)
    )


def _quad_log_likelihood(r, alpha, s, beta, x, t_x, T):
    """The same likelihood with its integral done by adaptive quadrature in log(tau)."""

    def integrand(v):
        tau = np.exp(v) - 1
        return np.exp(v - (r + x) * np.log(alpha + tau) - (s + 1) * np.log(beta + tau))

    dead, _ = integrate.quad(integrand, np.log1p(t_x), np.log1p(T), epsabs=0, epsrel=1e-13)
    bracket = (alpha + T) ** -(r + x) * (beta + T) ** -s + s * dead
    return (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        + np.log(bracket)
    )


def test_log_likelihood_equals_the_notes_closed_form_to_1e_10():
    """Each customer's log-likelihood against the note's 2F1 expression (and quad)."""
    rng = np.random.default_rng(3)
    for _ in range(8):
        r, s = np.exp(rng.uniform(-2.5, 2, 2))
        alpha, beta = np.exp(rng.uniform(-2, 5, 2))
        for _ in range(25):
            x = float(rng.choice([0, 1, 2, 5, 20]))
            T = float(rng.uniform(0.5, 100))
            t_x = 0.0 if x == 0 else float(rng.choice([T, T - 1 / 7, rng.uniform(0, T)]))
            history = Histories.of(np.array([x]), np.array([t_x]), np.array([T]), np.ones(1))
            ours = ParetoNBD()._objective(history)(np.log([r, alpha, s, beta]))[0]
            note = _note_log_likelihood(r, alpha, s, beta, x, t_x, T)
            assert ours == pytest.approx(note, rel=1e-10, abs=1e-10), (r, alpha, s, beta, x, t_x, T)
            if t_x < T:
                quad = _quad_log_likelihood(r, alpha, s, beta, x, t_x, T)
                assert ours == pytest.approx(quad, rel=1e-10, abs=1e-10)


def test_gradient_passes_check_grad_at_and_away_from_the_optimum(fitted, cdnow_summary):
    x, t_x, T = _cdnow_histories(cdnow_summary)
    objective = ParetoNBD()._objective(Histories.of(x, t_x, T, np.ones(len(x))))
    optimum = np.log(list(fitted.params_.values()))
    # Scaled to about one customer's log-likelihood, so that check_grad's forward
    # differences (step 1.5e-8) are themselves accurate to ~1e-7.
    scale = 1.0 / abs(objective(optimum)[0])

    def value(phi):
        return objective(phi)[0] * scale

    def gradient(phi):
        return objective(phi)[1] * scale

    away = optimum + np.array([1.0, -1.0, 1.0, -1.0])
    assert optimize.check_grad(value, gradient, away) <= 1e-6 * np.linalg.norm(gradient(away))
    # The gradient is ~1e-11 at the optimum, so there check_grad measures its own forward
    # differences (~5e-8); central differences, accurate here to ~1e-10, do better.
    assert optimize.check_grad(value, gradient, optimum) <= 2e-7
    step = 1e-5
    for phi in (optimum, away):
        central = [(value(phi + e) - value(phi - e)) / (2 * step) for e in np.eye(4) * step]
        assert np.max(np.abs(gradient(phi) - central)) <= 1e-9


def test_integer_weights_fit_exactly_as_duplicated_rows(cdnow_summary):
    x, t_x, T = _cdnow_histories(cdnow_summary)
    weights = np.random.default_rng(1).integers(1, 4, len(x))
    weighted = ParetoNBD().fit(x, t_x, T, weights=weights)
    repeated = ParetoNBD().fit(
        np.repeat(x, weights), np.repeat(t_x, weights), np.repeat(T, weights)
    )
    for name, value in repeated.params_.items():
        assert weighted.params_[name] == pytest.approx(value, rel=1e-10)
    assert weighted.log_likelihood_ == pytest.approx(repeated.log_likelihood_, rel=1e-12)


def test_refit_is_deterministic(cdnow_summary, fitted):
    again = ParetoNBD().fit_summary(cdnow_summary)
    assert again.params_ == fitted.params_
    assert again.log_likelihood_ == fitted.log_likelihood_


def test_parameters_are_recovered_from_simulated_customers(published):
    """100,000 customers drawn from the CDNOW estimates and observed for 39 weeks: each true
    parameter lies in its 95% interval.  (Over seeds 0-39 the intervals covered r, alpha, s
    and beta 37, 38, 37 and 35 times; seed 0 was the first one tried.)"""
    simulated = published.simulate(100_000, 39.0, seed=0)
    fitted = ParetoNBD().fit_summary(simulated)
    for name, value in PUBLISHED.items():
        low, high = fitted.confidence_intervals_[name]
        assert low < value < high, (name, low, value, high)


def test_simulated_histories_are_valid_and_reproducible(published):
    table = published.simulate(5_000, np.linspace(1, 52, 5_000), seed=7)
    x, t_x, T = (table[k].to_numpy() for k in ("frequency", "recency", "T"))
    assert table.column_names == ["frequency", "recency", "T", "lambda_", "mu_"]
    assert np.all((t_x <= T) & (t_x >= 0))
    assert np.array_equal(t_x > 0, x > 0)
    assert published.simulate(5_000, np.linspace(1, 52, 5_000), seed=7).equals(table)


def test_probability_of_purchases_sums_to_one_with_mean_expected_purchases(published):
    n = np.arange(0, 2_000)
    for t in (0.5, 39.0, 200.0):
        pmf = published.probability_of_purchases(t, n)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-8)
        assert (n * pmf).sum() == pytest.approx(published.expected_purchases(t), rel=1e-8)


def test_probability_of_purchases_equals_direct_integration(published):
    """P(X(t) = n) against its definition integrated by quad (FH 2006 note, section 4)."""
    r, alpha, s, beta = PUBLISHED.values()
    for t in (1.0, 39.0):
        for n in (0, 1, 5):

            def died_at(tau, n=n):
                return (
                    stats.nbinom.pmf(n, r, alpha / (alpha + tau))
                    * s
                    * beta**s
                    / (beta + tau) ** (s + 1)
                )

            dead, _ = integrate.quad(died_at, 0, t, epsabs=0, epsrel=1e-12)
            alive = stats.nbinom.pmf(n, r, alpha / (alpha + t)) * (beta / (beta + t)) ** s
            assert published.probability_of_purchases(t, n) == pytest.approx(alive + dead, rel=1e-9)


def test_predictions_equal_lifetimes(published):
    assert published.probability_alive(2, 30.43, 38.86) == pytest.approx(
        LIFETIMES_P_ALIVE, rel=1e-12
    )
    assert published.probability_alive(0, 0, 38.86) == pytest.approx(
        LIFETIMES_P_ALIVE_ONE_TIMER, rel=1e-12
    )
    assert published.conditional_expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(
        LIFETIMES_CONDITIONAL_39, rel=1e-12
    )
    assert published.expected_purchases(39) == pytest.approx(LIFETIMES_EXPECTED_39, rel=1e-12)


def test_predictions_equal_lifetimes_on_a_grid(published):
    pd = pytest.importorskip("pandas")
    lifetimes = pytest.importorskip("lifetimes")
    theirs = lifetimes.ParetoNBDFitter()
    theirs.params_ = pd.Series(PUBLISHED)
    x = np.array([0, 1, 2, 5, 10, 26, 0, 3, 50])
    t_x = np.array([0, 5.0, 30.0, 20.0, 38.0, 30.86, 0, 1.0, 38.5])
    T = np.array([39, 39, 39, 38, 39, 31, 10, 52, 39.0])
    with np.errstate(all="ignore"):
        p_alive = theirs.conditional_probability_alive(x, t_x, T)
        conditional = theirs.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, T)
    assert published.probability_alive(x, t_x, T) == pytest.approx(p_alive, rel=1e-12)
    assert published.conditional_expected_purchases(52, x, t_x, T) == pytest.approx(
        conditional, rel=1e-12
    )


def test_conditional_expectations_frozen_in_lifetimes_tests(fitted):
    """lifetimes tests/test_estimation.py: the BTYD walkthrough's 25.46 purchases in 52
    weeks for x = 26, t_x = 30.86, T = 31 (to 0.01, as there), and the pair of values its
    ``test_conditional_expectation_underflow`` records in comments for r, alpha, s, beta =
    0.55, 10.58, 0.61, 11.67 (which lifetimes 0.11.3 itself now returns as NaN)."""
    assert fitted.conditional_expected_purchases(52, 26, 30.86, 31) == pytest.approx(
        25.46, abs=0.01
    )
    model = ParetoNBD()
    model.params_ = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
    assert model.conditional_expected_purchases(10, 132, 200, 200) == pytest.approx(
        6.2060517889632418, rel=1e-10
    )
    assert model.conditional_expected_purchases(10, 133, 200, 200) == pytest.approx(
        6.2528722475748113, rel=1e-10
    )


def test_probability_alive_at_the_edges(published):
    # A purchase at T: certainly alive.
    assert published.probability_alive([1, 5, 1e5], [39, 39, 39], [39, 39, 39]).tolist() == [
        1.0,
        1.0,
        1.0,
    ]
    # Unlike BG/NBD, a one-time buyer's chances fade with time.
    one_timer = published.probability_alive(0, 0, [1.0, 39.0, 1e4, 1e9])
    assert np.all(np.diff(one_timer) < 0) and np.all((one_timer > 0) & (one_timer < 1))
    # Many purchases long ago: dead, but not a NaN.
    assert published.probability_alive(1e5, 10, 39) == 0.0
    assert published.probability_alive([], [], []).shape == (0,)


def test_s_equal_one_is_the_limit_of_its_neighbours(published):
    def at(s):
        model = ParetoNBD()
        model.params_ = {**PUBLISHED, "s": s}
        return model.expected_purchases(39), model.conditional_expected_purchases(39, 2, 30, 39)

    for value, below, above in zip(at(1.0), at(1 - 1e-9), at(1 + 1e-9), strict=True):
        assert value == pytest.approx(below, rel=1e-8)
        assert value == pytest.approx(above, rel=1e-8)
