"""GammaGamma against its paper, and the conformance checks every patron model passes.

Oracle: the CDNOW sample of Fader, Hardie & Lee (2005), calibration period to 1997-09-30,
946 repeat customers.  The published figures, and where each was checked:

* p = 6.25, q = 3.74, gamma = 15.44: Fader & Hardie (2013), "The Gamma-Gamma model of
  monetary value" (http://www.brucehardie.com/notes/025/), as quoted by lifetimes'
  ``test_params_out_is_close_to_Hardie_paper`` (CamDavidsonPilon/lifetimes,
  lifetimes/tests/test_estimation.py), R BTYD's ``spend.plot.average.transaction.value``
  example and R CLVTools' tests/testthat/test_correctness_gg.R ("Parameter estimates from
  Fader & Hardie, 2013").
* log-likelihood -4055.9177: CLVTools' test_correctness_gg.R (``correct.LL``) for the same
  data; CLVTools' gg_LL.cpp includes the x^(px) Jacobian term, as patron does.
* E(Z | x, m_x) for the first ten CDNOW customers, 24.65, 18.91, 35.17, 35.17, 35.17, 71.46,
  18.91, 35.17, 27.28, 35.17 (35.17 = the population mean p*gamma/(q-1) at Hardie's full
  precision): lifetimes' ``test_conditional_expected_average_profit``, "from Hardie
  spreadsheet http://brucehardie.com/notes/025/".
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import patron
from patron.errors import InputError, NotFittedError
from patron.models import GammaGamma
from patron.models.inputs import columns_from

PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}


@pytest.fixture(scope="module")
def summary():
    return patron.summarize(patron.datasets.cdnow(sample=True), as_of="1997-09-30")


@pytest.fixture(scope="module")
def repeat(summary):
    """(frequency, monetary_value, customer_id) of the 946 repeat customers."""
    x = summary["frequency"].to_numpy().astype(float)
    m = summary["monetary_value"].to_numpy()
    ids = np.asarray(summary["customer_id"].to_pylist(), dtype=object)
    keep = x > 0
    return x[keep], m[keep], ids[keep]


@pytest.fixture(scope="module")
def fitted(summary):
    return GammaGamma().fit_summary(summary)


def _truth(params=PUBLISHED) -> GammaGamma:
    model = GammaGamma()
    model.params_ = dict(params)
    return model


# --------------------------------------------------------------------------- the paper


def test_cdnow_estimates_are_the_published_ones(fitted, repeat):
    assert fitted.n_customers_ == 946 == len(repeat[0])
    for name, value in PUBLISHED.items():
        assert round(fitted.params_[name], 2) == value, name
    # The true log-density of the 946 mean spends (Jacobian included), as CLVTools prints.
    assert round(fitted.log_likelihood_, 4) == -4055.9177


def test_fit_on_arrays_equals_fit_summary(fitted, repeat):
    x, m, ids = repeat
    model = GammaGamma().fit(x, m, ids=ids)
    assert model.params_ == pytest.approx(fitted.params_, rel=1e-12)
    assert model.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-12)


def test_conditional_expected_spend_is_hardies_spreadsheet(fitted, summary):
    x = summary["frequency"].to_numpy()[:10]
    m = summary["monetary_value"].to_numpy()[:10]
    expected = [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]
    assert np.round(fitted.conditional_expected_spend(x, m), 2).tolist() == expected


def test_expected_spend_is_the_population_mean(fitted):
    p, q, gamma = (fitted.params_[k] for k in ("p", "q", "gamma"))
    assert fitted.expected_spend() == pytest.approx(p * gamma / (q - 1), rel=1e-15)
    assert round(fitted.expected_spend(), 2) == 35.17
    # A one-time buyer gets the population mean, whatever monetary_value says.
    assert fitted.conditional_expected_spend(0, 123.0) == fitted.expected_spend()


def test_conditional_expected_spend_shrinks_towards_own_mean(fitted):
    mean = fitted.expected_spend()
    spend = fitted.conditional_expected_spend([1, 5, 50, 5000], 100.0)
    assert np.all(np.diff(spend) > 0)
    assert np.all((spend > mean) & (spend < 100.0))
    assert spend[-1] == pytest.approx(100.0, rel=1e-3)


def test_conditional_expected_spend_is_the_posterior_mean():
    """E(p/nu | data) under the Gamma(q + px, gamma + x m_x) posterior, by quadrature."""
    from scipy import integrate, stats

    model = _truth()
    p, q, gamma = 6.25, 3.74, 15.44
    x, m = 3.0, 50.0
    posterior = stats.gamma(q + p * x, scale=1 / (gamma + x * m))
    value, _ = integrate.quad(lambda nu: p / nu * posterior.pdf(nu), 0, np.inf)
    assert model.conditional_expected_spend(x, m) == pytest.approx(value, rel=1e-8)


def test_expected_spend_is_infinite_without_a_finite_mean():
    model = _truth({"p": 2.0, "q": 0.8, "gamma": 10.0})
    assert model.expected_spend() == np.inf
    assert model.conditional_expected_spend(0, 0.0) == np.inf
    # Repeat customers still have a finite posterior mean: q + px > 1.
    assert np.isfinite(model.conditional_expected_spend(1, 20.0))
    assert _truth({"p": 2.0, "q": 1.0, "gamma": 10.0}).conditional_expected_spend(
        1, 20.0
    ) == pytest.approx(2.0 * (10.0 + 20.0) / 2.0)


def test_predictions_broadcast_and_return_scalars():
    model = _truth()
    assert isinstance(model.conditional_expected_spend(2, 30.0), float)
    assert model.conditional_expected_spend([[1], [2]], [10.0, 20.0, 30.0]).shape == (2, 3)


# --------------------------------------------------------------------------- conformance


def _data(model, x, m, w=None):
    columns, weights = columns_from({"frequency": x, "monetary_value": m}, w)
    return model._prepare(columns, weights)


def _central_difference(objective, phi, step=1e-6):
    grad = np.empty_like(phi)
    for j in range(len(phi)):
        e = np.zeros_like(phi)
        e[j] = step
        grad[j] = (objective(phi + e)[0] - objective(phi - e)[0]) / (2 * step)
    return grad


def _relative_error(objective, phi):
    analytic = objective(phi)[1]
    numeric = _central_difference(objective, phi)
    return np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric)


@pytest.mark.parametrize("where", ["optimum", "away"])
def test_gradient_is_the_derivative(fitted, repeat, where):
    x, m, _ = repeat
    phi = np.log([fitted.params_[k] for k in ("p", "q", "gamma")])
    if where == "away":
        phi = phi + np.array([0.7, -0.4, 0.9])
        objective = fitted._objective(_data(fitted, x, m))
        assert _relative_error(objective, phi) < 1e-5
    else:
        # The full gradient vanishes at the optimum, so check it per customer there; the
        # full one, per customer, is as small as the optimizer's stopping rule leaves it.
        for row in range(0, len(x), 97):
            objective = fitted._objective(_data(fitted, x[row : row + 1], m[row : row + 1]))
            assert _relative_error(objective, phi) < 1e-5, row
        whole = fitted._objective(_data(fitted, x, m))(phi)[1]
        assert np.max(np.abs(whole)) / len(x) < 1e-6


def test_objective_is_the_true_log_density():
    """Sum of log f(m_x) equals a direct numeric integration of the density over nu."""
    from scipy import integrate, stats

    p, q, gamma = 6.25, 3.74, 15.44
    x, m = np.array([1.0, 4.0]), np.array([20.0, 55.5])
    model = _truth()
    value = model._objective(_data(model, x, m))(np.log([p, q, gamma]))[0]
    direct = 0.0
    for xi, mi in zip(x, m, strict=True):

        def joint(nu, xi=xi, mi=mi):
            return stats.gamma.pdf(mi, p * xi, scale=1 / (xi * nu)) * stats.gamma.pdf(
                nu, q, scale=1 / gamma
            )

        direct += np.log(integrate.quad(joint, 0, np.inf, epsabs=0, epsrel=1e-12)[0])
    assert value == pytest.approx(direct, rel=1e-9)


def test_integer_weights_equal_duplicated_rows(repeat):
    x, m, _ = repeat
    rng = np.random.default_rng(7)
    weights = rng.integers(0, 4, len(x)).astype(float)
    weighted = GammaGamma().fit(x, m, weights)
    duplicated = GammaGamma().fit(
        np.repeat(x, weights.astype(int)), np.repeat(m, weights.astype(int))
    )
    assert weighted.n_customers_ == duplicated.n_customers_ == weights.sum()
    for name in PUBLISHED:
        assert weighted.params_[name] == pytest.approx(duplicated.params_[name], rel=1e-12)
    assert weighted.log_likelihood_ == pytest.approx(duplicated.log_likelihood_, rel=1e-12)


def test_weights_column_of_a_summary_is_used(repeat):
    x, m, _ = repeat
    table = pa.table(
        {
            "frequency": np.r_[x, 0.0],
            "monetary_value": np.r_[m, 0.0],
            "weights": np.r_[np.full(len(x), 2.0), 5.0],
        }
    )
    model = GammaGamma().fit_summary(table)
    assert model.n_customers_ == 2 * len(x)
    assert model.params_ == pytest.approx(GammaGamma().fit(x, m).params_, rel=1e-9)


def test_parameters_are_recovered(repeat):
    """100k simulated customers with CDNOW's frequencies: truth inside the 95% intervals."""
    x, _, _ = repeat
    rng = np.random.default_rng(2013)
    frequency = rng.choice(x, 100_000)
    table = _truth().simulate(100_000, frequency, seed=2005)
    assert table.column_names == ["frequency", "monetary_value", "nu_"]
    model = GammaGamma().fit_summary(table)
    for name, value in PUBLISHED.items():
        low, high = model.confidence_intervals_[name]
        assert low < value < high, (name, low, high)


def test_simulate_draws_the_model():
    table = _truth().simulate(200_000, 3, seed=1)
    x = table["frequency"].to_numpy()
    m = table["monetary_value"].to_numpy()
    nu = table["nu_"].to_numpy()
    assert np.all(x == 3) and np.all(m > 0)
    # E(m_x | nu) = p / nu, and E(p / nu) = p gamma / (q - 1).
    assert np.mean(m * nu) == pytest.approx(6.25, rel=0.01)
    assert np.median(m) == pytest.approx(np.median(6.25 / nu), rel=0.05)
    assert table.equals(_truth().simulate(200_000, 3, seed=1))


def test_refit_is_deterministic(repeat):
    x, m, _ = repeat
    first, second = GammaGamma().fit(x, m), GammaGamma().fit(x[::-1], m[::-1])
    assert first.params_ == second.params_
    assert first.log_likelihood_ == second.log_likelihood_
    assert first.standard_errors_ == second.standard_errors_


def test_fitted_attributes(fitted):
    assert set(fitted.params_) == set(fitted.standard_errors_) == {"p", "q", "gamma"}
    assert fitted.covariance_.shape == (3, 3)
    assert all(se > 0 for se in fitted.standard_errors_.values())
    assert repr(fitted) == "GammaGamma(p=6.25, q=3.744, gamma=15.44)"


def test_not_fitted_before_fit():
    model = GammaGamma()
    assert repr(model) == "GammaGamma(penalizer=0.0)"
    for call in (
        model.expected_spend,
        lambda: model.conditional_expected_spend(1, 10.0),
        lambda: model.simulate(10, 2),
    ):
        with pytest.raises(NotFittedError, match="GammaGamma"):
            call()
    assert not hasattr(model, "params_")


# --------------------------------------------------------------------------- bad input


def test_frequency_zero_names_the_customer():
    with pytest.raises(InputError, match="Customer c2: frequency is 0; Gamma-Gamma") as info:
        GammaGamma().fit([1, 0, 2], [10.0, 0.0, 5.0], ids=["c1", "c2", "c3"])
    assert info.value.column == "frequency"


@pytest.mark.parametrize("bad", [0.0, -4.0])
def test_spend_not_positive_names_the_customer(bad):
    with pytest.raises(InputError, match=f"Customer c3: monetary_value is {bad}") as info:
        GammaGamma().fit([1, 1, 2], [10.0, 3.0, bad], ids=["c1", "c2", "c3"])
    assert info.value.column == "monetary_value"
    assert info.value.value == bad


@pytest.mark.parametrize(
    ("x", "m", "match"),
    [
        ([1, np.nan], [1.0, 2.0], "Row 1: frequency is nan"),
        ([1, 2], [1.0, np.inf], "Row 1: monetary_value is inf"),
        ([1, -2], [1.0, 2.0], "Row 1: frequency is -2.0; it cannot be negative"),
        ([1, 2.5], [1.0, 2.0], "Row 1: frequency is 2.5; it must be a whole number"),
        ([1, 2], [1.0], "monetary_value has 1 values but frequency has 2"),
        ([], [], "There are no customers to fit"),
    ],
)
def test_bad_values_are_input_errors(x, m, match):
    with pytest.raises(InputError, match=match):
        GammaGamma().fit(x, m)


def test_summary_without_repeat_customers():
    table = pa.table({"frequency": [0, 0], "monetary_value": [0.0, 0.0]})
    with pytest.raises(InputError, match="No customer has a repeat purchase"):
        GammaGamma().fit_summary(table)


def test_summary_keeps_bad_rows_for_fit_to_report():
    table = pa.table(
        {
            "customer_id": ["a", "b", "c"],
            "frequency": [0.0, 2.0, None],
            "monetary_value": [0.0, 3.0, 4.0],
        }
    )
    with pytest.raises(InputError, match="Customer c: frequency is nan"):
        GammaGamma().fit_summary(table)


def test_summary_missing_column():
    with pytest.raises(InputError, match="no column monetary_value"):
        GammaGamma().fit_summary({"frequency": [1, 2]})


def test_negative_penalizer_is_refused():
    with pytest.raises(InputError, match="penalizer"):
        GammaGamma(penalizer=-1.0).fit([1, 2, 3], [1.0, 2.0, 3.0])
