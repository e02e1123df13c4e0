"""sBG against its paper's retention data, its follow-up's DERL and its own simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special

from patron.datasets import sbg_retention
from patron.errors import ConvergenceError, InputError, NotFittedError
from patron.models import ShiftedBetaGeometric

PUBLISHED = {"regular": (0.704, 1.182), "high_end": (0.668, 3.806)}


@pytest.fixture(scope="module")
def data():
    table = sbg_retention()
    return {name: table[name].to_numpy() for name in ("regular", "high_end")}


@pytest.fixture(scope="module")
def fitted(data):
    """Each segment fitted on the survivors at the start of years 0..7 (the paper's years
    1-7 of renewal data); years 8-12 are the holdout."""
    return {name: ShiftedBetaGeometric().fit(series[:8]) for name, series in data.items()}


def test_estimates_equal_fader_hardie_2007(fitted):
    """Fader & Hardie (2007), J. Interactive Marketing 21(1): regular alpha = 0.704,
    beta = 1.182; high end alpha = 0.668, beta = 3.806.  The same figures are the reference
    values of pymc-marketing's sBG notebook (docs/source/notebooks/clv/dev/sBG_marimo.py,
    ``ref_val``) and of jdmaturen/shifted_beta_geometric_py's test of the high-end data."""
    for name, (alpha, beta) in PUBLISHED.items():
        params = fitted[name].params_
        assert (round(params["alpha"], 3), round(params["beta"], 3)) == (alpha, beta), name
        assert fitted[name].n_customers_ == 1000


def test_log_likelihood_at_alpha_beta_one_equals_worksheet_start():
    """jdmaturen/shifted_beta_geometric_py checks LL(1, 1) = -2.115 per customer on the
    high-end data (the spreadsheet's starting point): -2,115.5 for the 1,000.  At
    alpha = beta = 1, P(T = t) = 1 / (t (t + 1)) and S(t) = 1 / (t + 1) exactly."""
    high_end = [1000, 869, 743, 653, 593, 551, 517, 491]
    model = ShiftedBetaGeometric()
    value, _ = model._objective(model._prepare(high_end))(np.zeros(2))
    lost = -np.diff(high_end)
    t = np.arange(1, 8)
    exact = lost @ -np.log(t * (t + 1)) - 491 * np.log(8)
    assert value == pytest.approx(exact, rel=1e-13)
    assert round(value, 1) == -2115.5


def test_projection_tracks_the_holdout_years(fitted, data):
    """FH (2007): fitted on years 1-7, the sBG projection of the survivors in years 8-12
    tracks the actual counts closely (within 4.1 % here, the high end in year 12 the
    furthest)."""
    years = np.arange(8, 13)
    for name, model in fitted.items():
        projected = 1000 * model.survival(years)
        actual = data[name][8:]
        assert np.all(np.abs(projected / actual - 1) < 0.05), (name, projected, actual)


def test_high_end_projection_equals_jdmaturen_figures(fitted):
    """jdmaturen/shifted_beta_geometric_py README: the high-end survival projected for years
    8-12 is [0.460, 0.436, 0.414, 0.395, 0.378] (an independent implementation)."""
    survival = fitted["high_end"].survival(np.arange(8, 13))
    assert np.round(survival, 3).tolist() == [0.460, 0.436, 0.414, 0.395, 0.378]


def test_derl_equals_jdmaturen_figure_and_its_defining_sum(fitted):
    """DERL of Fader & Hardie (2010), Marketing Science 29(1), eq. 6.  No DERL figure of the
    paper was found in a searchable source; jdmaturen/shifted_beta_geometric_py's README
    gives 7.530 for the high-end cohort after 7 renewals at d = 10 %, and the value must equal
    its defining sum: sum over t > n of S(t) / S(n) / (1 + d)^(t - n - 1)."""
    model = fitted["high_end"]
    assert round(model.expected_remaining_lifetime(7, 0.10), 3) == 7.530
    alpha, beta = model.params_["alpha"], model.params_["beta"]
    t = np.arange(0, 400_000)
    log_s = special.betaln(alpha, beta + t) - special.betaln(alpha, beta)
    for renewals in (0, 1, 4, 10):
        for d in (0.05, 0.10, 0.25):
            future = t[renewals + 1 :]
            log_terms = log_s[future] - log_s[renewals] - (future - renewals - 1) * np.log1p(d)
            terms = np.exp(log_terms)
            derl = model.expected_remaining_lifetime(renewals, d)
            assert derl == pytest.approx(terms.sum(), rel=1e-10), (renewals, d)


def test_del_is_one_period_plus_discounted_derl_after_no_renewal(fitted):
    """A new customer pays now, then is a customer with 0 renewals one period on."""
    for model in fitted.values():
        for d in (0.01, 0.10, 0.5):
            derl = model.expected_remaining_lifetime(0, d)
            assert model.expected_lifetime(d) == pytest.approx(1 + derl / (1 + d), rel=1e-12)
    # alpha < 1: the undiscounted lifetime has no mean; DERL grows without bound as d -> 0.
    regular = fitted["regular"]
    assert regular.expected_lifetime(0.0) == np.inf
    assert regular.expected_remaining_lifetime(3, 0.0) == np.inf
    assert np.isfinite(regular.expected_remaining_lifetime(3, 1e-6))


def test_derl_rises_with_tenure(fitted):
    """The point of FH (2010): survivors are the loyal, so a customer's remaining value grows
    with the renewals already made."""
    derl = fitted["regular"].expected_remaining_lifetime(np.arange(0, 30), 0.10)
    assert np.all(np.diff(derl) > 0)


def cohorts_of(data):
    """Both segments on years 0..7, as two cohorts of one pooled fit."""
    return [data["regular"][:8], data["high_end"][:8]]


@pytest.mark.parametrize("where", ["optimum", "away"])
def test_gradient_is_exact(data, where):
    """Analytic gradient against finite differences of the per-customer mean log-likelihood;
    at the optimum the error is measured against 1 + |gradient|, since the gradient is ~0."""
    model = ShiftedBetaGeometric()
    cohorts = model._prepare(cohorts_of(data))
    objective = model._objective(cohorts)
    scale = 1.0 / cohorts.total
    phi = np.log(list(ShiftedBetaGeometric().fit(cohorts_of(data)).params_.values()))
    if where == "away":
        phi = phi + np.array([0.7, -0.5])

    def value(p):
        return objective(p)[0] * scale

    def gradient(p):
        return objective(p)[1] * scale

    error = optimize.check_grad(value, gradient, phi)
    norm = np.linalg.norm(gradient(phi))
    if where == "optimum":
        assert norm < 1e-6
        assert error / (1.0 + norm) < 1e-5
    else:
        assert norm > 0.01
        assert error / norm < 1e-5


def test_cohorts_pool_into_one_alpha_beta(data):
    """Two identical cohorts carry the evidence of one twice its size; a list, a mapping and
    a 2-D array are the same input; cohorts may be observed for different lengths."""
    one = ShiftedBetaGeometric().fit(data["regular"][:8])
    two = ShiftedBetaGeometric().fit([data["regular"][:8], data["regular"][:8]])
    doubled = ShiftedBetaGeometric().fit(2 * data["regular"][:8])
    for name in ("alpha", "beta"):
        assert two.params_[name] == pytest.approx(one.params_[name], rel=1e-7)
        assert doubled.params_[name] == pytest.approx(one.params_[name], rel=1e-7)
    assert two.n_customers_ == 2000 and two.n_cohorts_ == 2
    as_list = ShiftedBetaGeometric().fit(cohorts_of(data))
    as_dict = ShiftedBetaGeometric().fit(
        {"regular": cohorts_of(data)[0], "high": cohorts_of(data)[1]}
    )
    as_array = ShiftedBetaGeometric().fit(np.vstack(cohorts_of(data)))
    assert as_list.params_ == as_dict.params_ == as_array.params_
    table = sbg_retention().slice(0, 8).drop_columns(["year"])
    assert ShiftedBetaGeometric().fit(table).params_ == as_list.params_
    assert ShiftedBetaGeometric().fit(table.to_pandas()).params_ == as_list.params_
    with pytest.raises(InputError, match="Cohort year: 1 customers are active"):
        ShiftedBetaGeometric().fit(sbg_retention())
    ragged = ShiftedBetaGeometric().fit([data["regular"][:8], data["regular"][:4], [500, 320]])
    assert ragged.n_customers_ == 2500 and ragged.n_cohorts_ == 3


def test_refit_is_deterministic(data):
    first = ShiftedBetaGeometric().fit(cohorts_of(data))
    again = ShiftedBetaGeometric().fit(cohorts_of(data))
    assert first.params_ == again.params_
    assert first.log_likelihood_ == again.log_likelihood_
    assert first.standard_errors_ == again.standard_errors_


def test_parameters_are_recovered_from_simulated_cohorts():
    alpha, beta = PUBLISHED["regular"]
    truth = ShiftedBetaGeometric()
    truth.params_ = {"alpha": alpha, "beta": beta}
    cohorts = [
        truth.simulate(100_000, periods, seed=seed) for seed, periods in enumerate((7, 5, 3, 1))
    ]
    fitted = ShiftedBetaGeometric().fit(cohorts)
    assert fitted.n_customers_ == 400_000
    for name, value in truth.params_.items():
        low, high = fitted.confidence_intervals_[name]
        assert low < value < high, (name, low, value, high)


def test_simulated_survivors_follow_the_survival_curve():
    model = ShiftedBetaGeometric()
    model.params_ = {"alpha": 0.668, "beta": 3.806}
    survivors = model.simulate(400_000, 12, seed=4)
    assert survivors.dtype.kind == "i" and len(survivors) == 13 and survivors[0] == 400_000
    assert np.all(np.diff(survivors) <= 0)
    np.testing.assert_allclose(survivors / 400_000, model.survival(np.arange(13)), atol=0.003)


def test_survival_retention_and_churn_agree(fitted):
    model = fitted["regular"]
    t = np.arange(1, 50)
    survival = model.survival(t)
    previous = model.survival(t - 1)
    np.testing.assert_allclose(model.retention(t), survival / previous, rtol=1e-12)
    np.testing.assert_allclose(model.churn_probability(t), previous - survival, rtol=1e-10)
    # Eq. 7's recursion for P(T = t).
    alpha, beta = model.params_["alpha"], model.params_["beta"]
    recursion = [alpha / (alpha + beta)]
    for k in range(2, 50):
        recursion.append(recursion[-1] * (beta + k - 2) / (alpha + beta + k - 1))
    np.testing.assert_allclose(model.churn_probability(t), recursion, rtol=1e-12)


def test_predictions_are_floats_for_scalars_and_broadcast_arrays(fitted):
    model = fitted["high_end"]
    for value in (
        model.survival(3),
        model.retention(3),
        model.churn_probability(3),
        model.expected_remaining_lifetime(3, 0.1),
        model.expected_lifetime(0.1),
    ):
        assert type(value) is float
    grid = model.expected_remaining_lifetime(np.arange(4)[:, None], [0.05, 0.1, 0.2])
    assert grid.shape == (4, 3)


def test_predictions_are_finite_and_in_range_at_the_edges(fitted):
    model = fitted["regular"]
    assert model.survival(0) == 1.0
    far = model.survival([1e3, 1e6, 1e9])
    assert np.all(np.isfinite(far)) and np.all((far > 0) & (far < 1))
    assert model.retention(1) == pytest.approx(
        model.params_["beta"] / (model.params_["alpha"] + model.params_["beta"])
    )
    assert 0.999 < model.retention(1e6) < 1.0
    assert 0 < model.churn_probability(1e6) < 1e-6
    # DERL is at least the chance of the next renewal (its first, undiscounted term).
    derl = model.expected_remaining_lifetime([0, 1e4], [10.0, 0.01])
    assert np.all(np.isfinite(derl))
    assert derl[0] > model.retention(1) and derl[1] > model.retention(1e4 + 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.survival(-1), "t=-1.0 is not valid"),
        (lambda m: m.retention(0), "t=0.0 is not valid"),
        (lambda m: m.churn_probability([1, 0.5]), "t=0.5 is not valid"),
        (lambda m: m.expected_remaining_lifetime(-1, 0.1), "n_renewals=-1.0 is not valid"),
        (lambda m: m.expected_remaining_lifetime(1, -0.1), "discount_rate=-0.1 is not valid"),
        (lambda m: m.expected_lifetime(np.nan), "discount_rate=nan is not valid"),
    ],
)
def test_predictions_outside_the_domain_raise(fitted, call, message):
    with pytest.raises(InputError, match=message):
        call(fitted["regular"])


@pytest.mark.parametrize(
    ("survivors", "message"),
    [
        (
            [1000, 631, 668, 382],
            "Cohort 0: 668 customers are active at the start of period 2 "
            "but only 631 were at the start of period 1",
        ),
        (
            [[1000, 631], [1000, 700, 710]],
            "Cohort 1: 710 customers are active at the start of period 2",
        ),
        ({"north": [100, 90], "south": [100, 90, 95]}, "Cohort south: 95 customers"),
        ([1000], "Cohort 0 has 1 values"),
        ([[1000, 900], []], "Cohort 1 has 0 values"),
        ([1000, 631, -1], r"Row 0: survivors\[2\] is -1.0; it cannot be negative"),
        ([[10, 9], [1000, 631.5]], r"Row 1: survivors\[1\] is 631.5; it must be a whole"),
        ([1000, np.nan], r"Row 0: survivors\[1\] is nan"),
        ([], "Cohort 0 has 0 values"),
        ([0, 0, 0], "There are no customers to fit"),
    ],
)
def test_invalid_input_names_the_cohort_and_period(survivors, message):
    with pytest.raises(InputError, match=message):
        ShiftedBetaGeometric().fit(survivors)


@pytest.mark.parametrize("survivors", [[100, 100, 100], [100, 0], [[100, 0], [50, 0, 0]]])
def test_cohorts_that_all_stay_or_all_leave_cannot_be_fitted(survivors):
    """Nobody lost, or everybody lost at the first renewal: alpha or beta runs off."""
    with pytest.raises(ConvergenceError):
        ShiftedBetaGeometric().fit(survivors)


def test_unfitted_predictions_raise_not_fitted():
    model = ShiftedBetaGeometric()
    calls = [
        lambda: model.survival(1),
        lambda: model.retention(1),
        lambda: model.churn_probability(1),
        lambda: model.expected_remaining_lifetime(1, 0.1),
        lambda: model.expected_lifetime(0.1),
        lambda: model.simulate(10, 3, seed=1),
    ]
    for call in calls:
        with pytest.raises(NotFittedError):
            call()
