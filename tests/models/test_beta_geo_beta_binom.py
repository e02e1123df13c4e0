"""BG/BB against its paper, Hardie's spreadsheet, lifetimes and its own simulation."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest
from scipy import optimize

from patron.datasets import donations
from patron.errors import InputError, NotFittedError
from patron.models import BetaGeoBetaBinom
from patron.models.inputs import columns_from

PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


@pytest.fixture(scope="module")
def data():
    return donations()


@pytest.fixture(scope="module")
def fitted(data):
    return BetaGeoBetaBinom().fit_summary(data)


def _columns(data):
    return [data[name].to_numpy().astype(float) for name in ("frequency", "recency", "periods")]


def test_donations_estimates_equal_fader_hardie_shang_2010(fitted):
    """Fader, Hardie & Shang (2010), Marketing Science 29(6): alpha = 1.204, beta = 0.750,
    gamma = 0.657, delta = 2.783, LL = -33,225.6 on the 11,104 donors of 1995, n = 6.

    The estimates are also those lifetimes' tests/test_estimation.py checks against the paper
    (``test_params_out_is_close_to_Hardie_paper``).
    """
    assert {k: round(v, 3) for k, v in fitted.params_.items()} == PUBLISHED
    assert round(fitted.log_likelihood_, 1) == -33225.6
    assert fitted.n_customers_ == 11104


def test_donations_estimates_equal_hardie_spreadsheet_to_four_decimals(fitted):
    """Hardie's BG/BB spreadsheet (brucehardie.com/notes/010) holds 1.2035, 0.7497, 0.6567,
    2.7834, as quoted in pymc-marketing's tests/clv/models/test_beta_geo_beta_binom.py."""
    expected = {"alpha": 1.2035, "beta": 0.7497, "gamma": 0.6567, "delta": 2.7834}
    assert {k: round(v, 4) for k, v in fitted.params_.items()} == expected


def test_probability_alive_equals_paper_table_6(fitted):
    """FHS (2010) Table 6, P(alive in 2002): 0.11 for no repeat donation (x = 0, t_x = 0),
    0.59 for x = 2, t_x = 4 and 0.93 for x = 6, t_x = 6 (n = 6), as lifetimes' test
    ``test_prob_alive_is_close_to_Hardie_paper_table_6`` quotes the table."""
    p = fitted.probability_alive([0, 2, 6], [0, 4, 6], 6)
    assert np.round(p, 2).tolist() == [0.11, 0.59, 0.93]


def test_predictions_equal_hardie_spreadsheet(fitted, data):
    """Hardie's BG/BB spreadsheet (notes/010), as quoted by lifetimes' and pymc-marketing's
    tests: 12,884.2 transactions expected from the donors in 2002-2006 ("Conditional
    Expectations (II)", column F); 3,454.9 donors expected with no repeat donation and
    1,253.1 with six in 1996-2001 ("In-Sample Fit", C18 and C24); E[X(n)] for n = 1..11
    ("Tracking Plot", B7:B17)."""
    x, t_x, n = _columns(data)
    weights = data["weights"].to_numpy()
    total = weights @ fitted.conditional_expected_purchases(5, x, t_x, n)
    assert round(total, 1) == 12884.2
    assert round(11104 * fitted.probability_of_purchases(6, 0), 1) == 3454.9
    assert round(11104 * fitted.probability_of_purchases(6, 6), 1) == 1253.1
    tracking = [0.4985, 0.9233, 1.2969, 1.6323, 1.9381, 2.2202, 2.4826, 2.7285, 2.9603]
    tracking += [3.1798, 3.3887]
    assert np.round(fitted.expected_purchases(np.arange(1, 12)), 4).tolist() == tracking


def test_expected_purchases_equal_btyd_example():
    """BTYD 2.4.3's ``bgbb.Expectation(c(1.20, 0.75, 0.66, 2.78), n = 1:10)`` example output."""
    model = BetaGeoBetaBinom()
    model.params_ = {"alpha": 1.20, "beta": 0.75, "gamma": 0.66, "delta": 2.78}
    btyd = [0.4973166, 0.9207078, 1.2927317, 1.6266289, 1.9309062, 2.2113893, 2.4722624]
    btyd += [2.7166434, 2.9469256, 3.1649902]
    assert np.round(model.expected_purchases(np.arange(1, 11)), 7).tolist() == btyd


def test_fit_and_predictions_equal_lifetimes(fitted, data):
    """lifetimes 0.11.3 ``BetaGeoBetaBinomFitter``: the same optimum, and the same predictions
    when given the same parameters."""
    pytest.importorskip("lifetimes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoBetaBinomFitter

        frame = data.to_pandas()
        theirs = BetaGeoBetaBinomFitter().fit(
            frame["frequency"], frame["recency"], frame["periods"], frame["weights"]
        )
        for name, value in fitted.params_.items():
            assert theirs.params_[name] == pytest.approx(value, rel=1e-5), name
        theirs.params_ = dict(fitted.params_)
        x, t_x, n = _columns(data)
        for horizon in (1, 5, 10):
            ours = fitted.conditional_expected_purchases(horizon, x, t_x, n)
            lifetimes = theirs.conditional_expected_number_of_purchases_up_to_time(
                horizon, x, t_x, n
            )
            np.testing.assert_allclose(ours, lifetimes, rtol=1e-9)
        np.testing.assert_allclose(
            fitted.probability_alive(x, t_x, n),
            theirs.conditional_probability_alive(1, x, t_x, n),
            rtol=1e-9,
        )
        in_sample = theirs.expected_number_of_transactions_in_first_n_periods(6)["model"]
        np.testing.assert_allclose(
            11104 * fitted.probability_of_purchases(6, in_sample.index.to_numpy()),
            in_sample.to_numpy(),
            rtol=1e-9,
        )


@pytest.mark.parametrize("where", ["optimum", "away"])
def test_gradient_is_exact(fitted, data, where):
    """The analytic gradient against finite differences of the per-donor mean log-likelihood
    (scale ~1, so forward differences are good to ~1e-7).  At the optimum the gradient is ~0,
    so the error is measured against 1 + |gradient| there."""
    model = BetaGeoBetaBinom()
    columns, weights = columns_from(
        {"frequency": data["frequency"], "recency": data["recency"], "n_periods": data["periods"]},
        data["weights"],
    )
    histories = model._prepare(columns, weights)
    objective = model._objective(histories)
    scale = 1.0 / histories.total
    phi = np.log(list(fitted.params_.values()))
    if where == "away":
        phi = phi + np.array([0.4, -0.3, 0.5, -0.6])

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


def test_integer_weights_fit_as_repeated_rows(fitted, data):
    x, t_x, n = _columns(data)
    counts = data["weights"].to_numpy()
    rows = BetaGeoBetaBinom().fit(
        np.repeat(x, counts), np.repeat(t_x, counts), np.repeat(n, counts)
    )
    assert rows.n_customers_ == 11104
    for name, value in fitted.params_.items():
        assert rows.params_[name] == pytest.approx(value, rel=1e-7), name
    assert rows.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-12)


def test_refit_is_deterministic(fitted, data):
    again = BetaGeoBetaBinom().fit_summary(data)
    assert again.params_ == fitted.params_
    assert again.log_likelihood_ == fitted.log_likelihood_
    assert again.standard_errors_ == fitted.standard_errors_


def test_standard_errors_and_intervals_are_consistent(fitted):
    for name, value in fitted.params_.items():
        se = fitted.standard_errors_[name]
        low, high = fitted.confidence_intervals_[name]
        assert 0 < se < value
        assert 0 < low < value < high
    assert np.allclose(np.sqrt(np.diag(fitted.covariance_)), list(fitted.standard_errors_.values()))


def test_parameters_are_recovered_from_simulated_customers():
    truth = dict(PUBLISHED)
    model = BetaGeoBetaBinom()
    model.params_ = truth
    simulated = model.simulate(100_000, 6, seed=7)
    assert simulated.column_names[:3] == ["frequency", "recency", "n_periods"]
    refit = BetaGeoBetaBinom().fit_summary(simulated)
    for name, value in truth.items():
        low, high = refit.confidence_intervals_[name]
        assert low < value < high, (name, low, value, high)


def test_simulated_frequencies_follow_the_purchase_distribution():
    model = BetaGeoBetaBinom()
    model.params_ = dict(PUBLISHED)
    simulated = model.simulate(200_000, 6, seed=3)
    x = simulated["frequency"].to_numpy()
    t_x = simulated["recency"].to_numpy()
    assert np.all((x <= t_x) & (t_x <= 6) & ((x == 0) == (t_x == 0)))
    observed = np.bincount(x.astype(int), minlength=7) / len(x)
    expected = model.probability_of_purchases(6, np.arange(7))
    np.testing.assert_allclose(observed, expected, atol=0.004)


def test_probability_of_purchases_sums_to_one_with_mean_expected_purchases(fitted):
    for n in (0, 1, 6, 40):
        x = np.arange(0, n + 1)
        pmf = fitted.probability_of_purchases(n, x)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
        assert (x * pmf).sum() == pytest.approx(fitted.expected_purchases(n), rel=1e-10)
    assert fitted.probability_of_purchases(6, [-1, 7]).tolist() == [0.0, 0.0]


def test_conditional_expectation_is_alive_probability_times_purchase_rate(fitted):
    """One opportunity ahead, E[X(n, n+1)] = P(alive at n+1) E[p | x, n]: a check of eq. 13
    against eq. 11 that does not share the closed form of the sum."""
    x, t_x, n = np.array([0, 1, 3, 6]), np.array([0, 5, 4, 6]), 6
    p_mean = (fitted.params_["alpha"] + x) / (fitted.params_["alpha"] + fitted.params_["beta"] + n)
    np.testing.assert_allclose(
        fitted.conditional_expected_purchases(1, x, t_x, n),
        fitted.probability_alive(x, t_x, n) * p_mean,
        rtol=1e-12,
    )


def test_predictions_are_floats_for_scalars_and_broadcast_arrays(fitted):
    assert type(fitted.expected_purchases(6)) is float
    assert type(fitted.conditional_expected_purchases(5, 2, 4, 6)) is float
    assert type(fitted.probability_alive(2, 4, 6)) is float
    assert type(fitted.probability_of_purchases(6, 2)) is float
    grid = fitted.conditional_expected_purchases(np.arange(1, 4)[:, None], [0, 1, 2], [0, 3, 5], 6)
    assert grid.shape == (3, 3)
    assert fitted.probability_alive([[0, 1], [2, 3]], [[0, 1], [4, 6]], 6).shape == (2, 2)


def test_predictions_are_finite_and_in_range_at_the_edges(fitted):
    assert fitted.expected_purchases(0) == 0.0
    assert fitted.conditional_expected_purchases(0, 3, 5, 6) == 0.0
    long = fitted.expected_purchases([1e3, 1e5])
    assert np.all(np.isfinite(long)) and long[0] < long[1]
    # Long histories: a steady buyer is alive, one silent for 500 opportunities after 500
    # straight purchases is all but surely gone -- a tiny probability, not NaN or 0/0.
    p = fitted.probability_alive([0, 1, 999, 500], [0, 1, 1000, 500], 1000)
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    assert p[2] > 0.9 > p[1] > p[3]
    e = fitted.conditional_expected_purchases(100, [0, 1, 500], [0, 1, 500], 1000)
    assert np.all(np.isfinite(e)) and np.all(e >= 0)


def test_gamma_near_one_is_continuous():
    """E[X(n)] and eq. 13 divide by gamma - 1; at gamma = 1 they are the limit."""
    values = []
    for gamma in (1 - 1e-5, 1 - 1e-9, 1.0, 1 + 1e-9, 1 + 1e-5):
        model = BetaGeoBetaBinom()
        model.params_ = {"alpha": 1.2, "beta": 0.75, "gamma": gamma, "delta": 2.8}
        values.append(
            [model.expected_purchases(6), model.conditional_expected_purchases(5, 2, 4, 6)]
        )
    values = np.array(values)
    np.testing.assert_allclose(values, np.broadcast_to(values[2], values.shape), rtol=1e-4)
    np.testing.assert_allclose(values[[1, 3]], values[[2, 2]], rtol=1e-8)


def test_fit_summary_reads_n_periods_and_periods(data, fitted):
    renamed = data.rename_columns(["frequency", "recency", "n_periods", "weights"])
    assert BetaGeoBetaBinom().fit_summary(renamed).params_ == fitted.params_
    with pytest.raises(InputError, match="n_periods"):
        BetaGeoBetaBinom().fit_summary(data.drop_columns(["periods"]))


@pytest.mark.parametrize(
    ("frequency", "recency", "n_periods", "message"),
    [
        ([1, -1], [2, 3], [6, 6], "Row 1: frequency is -1.0; it cannot be negative"),
        ([1, 1.5], [2, 3], [6, 6], "Row 1: frequency is 1.5; it must be a whole number"),
        ([1, 1], [2, 2.5], [6, 6], "Row 1: recency is 2.5; it must be a whole number"),
        ([1, 1], [2, 7], [6, 6], "Row 1: recency 7.0 is greater than n_periods 6.0"),
        ([1, 0], [2, 3], [6, 6], "Row 1: frequency is 0 but recency is 3.0"),
        ([1, 4], [2, 3], [6, 6], "Row 1: frequency 4.0 is more than the 3.0 periods"),
        ([1, 1], [2, 0], [6, 6], "Row 1: frequency 1.0 is more than the 0.0 periods"),
        ([1, 1], [2, 3], [6, np.nan], "Row 1: n_periods is nan"),
        ([0, 0], [0, 0], [6, 6], "No customer bought more than once"),
        ([], [], [], "There are no customers to fit"),
    ],
)
def test_invalid_input_names_the_row_and_why(frequency, recency, n_periods, message):
    with pytest.raises(InputError, match=message):
        BetaGeoBetaBinom().fit(frequency, recency, n_periods)


@pytest.mark.parametrize(
    ("weights", "message"),
    [([0, 0], "There are no customers to fit"), ([0, 5], "No customer bought more than once")],
)
def test_zero_weight_rows_are_no_customers(weights, message):
    with pytest.raises(InputError, match=message):
        BetaGeoBetaBinom().fit([1, 0], [2, 0], [6, 6], weights=weights)


def test_invalid_input_names_the_customer_when_ids_are_given():
    with pytest.raises(InputError, match="Customer b: frequency 4.0 is more than"):
        BetaGeoBetaBinom().fit([1, 4], [2, 3], [6, 6], ids=["a", "b"])


def test_unfitted_predictions_raise_not_fitted():
    model = BetaGeoBetaBinom()
    calls = [
        lambda: model.expected_purchases(6),
        lambda: model.conditional_expected_purchases(5, 1, 2, 6),
        lambda: model.probability_alive(1, 2, 6),
        lambda: model.probability_of_purchases(6, 1),
        lambda: model.simulate(10, 6, seed=1),
    ]
    for call in calls:
        with pytest.raises(NotFittedError):
            call()


def test_fit_accepts_arrow_columns(data, fitted):
    table = pa.table({"f": data["frequency"], "r": data["recency"], "n": data["periods"]})
    model = BetaGeoBetaBinom().fit(table["f"], table["r"], table["n"], data["weights"])
    assert model.params_ == fitted.params_
