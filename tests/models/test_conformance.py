"""One suite every model passes, in the spirit of scikit-learn's ``parametrize_with_checks``.

fit returns self; refitting is deterministic; integer weights fit exactly as repeated rows;
the analytic gradient agrees with finite differences; unfitted use raises NotFittedError;
predictions are finite and in range at the edges of the data.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy import optimize

import patron
from patron.errors import NotFittedError
from patron.models.inputs import columns_from


@dataclass
class Case:
    """How to feed one model: its data, and the predictions to check at the edges."""

    name: str
    module: str
    data: Callable[[object], dict[str, np.ndarray]]
    edges: Callable[[object], dict[str, np.ndarray]]
    weighted: bool = True
    probabilities: tuple[str, ...] = field(default=())

    def model_class(self):
        module = pytest.importorskip(f"patron.models.{self.module}")
        return getattr(module, self.name)


def _histories(summary) -> dict[str, np.ndarray]:
    return {k: summary[k].to_numpy() for k in ("frequency", "recency", "T")}


# (frequency, recency, T): no repeat, recency == T, T huge, frequency huge, a single customer.
EDGE_X = np.array([0, 5, 0, 5, 1e5, 1e5, 3])
EDGE_TX = np.array([0, 39, 0, 10, 30, 39, 20.0])
EDGE_T = np.array([39, 39, 1e9, 1e9, 39, 39, 20.0])


def _history_edges(model) -> dict[str, np.ndarray]:
    return {
        "p_alive": model.probability_alive(EDGE_X, EDGE_TX, EDGE_T),
        "conditional": model.conditional_expected_purchases(39, EDGE_X, EDGE_TX, EDGE_T),
        "conditional_one": np.array([model.conditional_expected_purchases(10, 2, 5.0, 8.0)]),
        "expected": model.expected_purchases(np.array([0.0, 1.0, 39.0, 1e6])),
        "p_purchases": model.probability_of_purchases(39, np.array([0, 1, 10, 1e5])),
    }


def _donations(_summary) -> dict[str, np.ndarray]:
    d = patron.datasets.donations()
    return {
        "frequency": d["frequency"].to_numpy(),
        "recency": d["recency"].to_numpy(),
        "n_periods": d["periods"].to_numpy(),
        "weights": d["weights"].to_numpy(),
    }


def _bgbb_edges(model) -> dict[str, np.ndarray]:
    x = np.array([0, 6, 0, 3, 1000])
    t_x = np.array([0, 6, 0, 3, 1000])
    n = np.array([6, 6, 1000, 1000, 1000])
    return {
        "p_alive": model.probability_alive(x, t_x, n),
        "conditional": model.conditional_expected_purchases(5, x, t_x, n),
        "expected": model.expected_purchases(np.array([0, 1, 6, 1000])),
        "p_purchases": model.probability_of_purchases(6, np.array([0, 1, 6])),
    }


def _spend(summary) -> dict[str, np.ndarray]:
    keep = summary["frequency"].to_numpy() > 0
    return {
        "frequency": summary["frequency"].to_numpy()[keep],
        "monetary_value": summary["monetary_value"].to_numpy()[keep],
    }


def _spend_edges(model) -> dict[str, np.ndarray]:
    return {
        "spend": model.conditional_expected_spend(
            np.array([0, 1, 1e5, 1]), np.array([0, 1e-3, 50.0, 1e7])
        ),
        "mean": np.array([model.expected_spend()]),
    }


def _survivors(_summary) -> dict[str, np.ndarray]:
    table = patron.datasets.sbg_retention()
    return {"survivors": table["regular"].to_numpy()[:8]}


def _sbg_edges(model) -> dict[str, np.ndarray]:
    t = np.array([1, 2, 12, 1000])
    return {
        "survival": model.survival(t),
        "retention": model.retention(t),
        "derl": np.atleast_1d(model.expected_remaining_lifetime(1, 0.1)),
    }


CASES = [
    Case(
        "BetaGeo", "beta_geo", _histories, _history_edges, probabilities=("p_alive", "p_purchases")
    ),
    Case(
        "ModifiedBetaGeo",
        "modified_beta_geo",
        _histories,
        _history_edges,
        probabilities=("p_alive", "p_purchases"),
    ),
    Case(
        "ParetoNBD",
        "pareto_nbd",
        _histories,
        _history_edges,
        probabilities=("p_alive", "p_purchases"),
    ),
    Case(
        "BetaGeoBetaBinom",
        "beta_geo_beta_binom",
        _donations,
        _bgbb_edges,
        probabilities=("p_alive", "p_purchases"),
    ),
    Case("GammaGamma", "gamma_gamma", _spend, _spend_edges),
    Case(
        "ShiftedBetaGeometric",
        "shifted_beta_geometric",
        _survivors,
        _sbg_edges,
        weighted=False,
        probabilities=("survival", "retention"),
    ),
]


@pytest.fixture(params=CASES, ids=lambda c: c.name)
def case(request):
    return request.param


@pytest.fixture
def data(case, cdnow_summary):
    return case.data(cdnow_summary)


def test_fit_returns_self_and_sets_fitted_attributes(case, data):
    model = case.model_class()()
    assert not hasattr(model, "params_")
    assert model.fit(**data) is model
    names = model._param_names
    assert list(model.params_) == list(names)
    assert list(model.standard_errors_) == list(names)
    assert list(model.confidence_intervals_) == list(names)
    assert np.isfinite(model.log_likelihood_) and model.log_likelihood_ < 0
    assert model.n_customers_ > 0
    assert all(v > 0 and np.isfinite(v) for v in model.params_.values())
    assert repr(model).startswith(case.name + "(")


def test_refit_is_deterministic(case, data):
    cls = case.model_class()
    first = cls().fit(**data)
    again = first.fit(**data)
    fresh = cls().fit(**data)
    assert again.params_ == fresh.params_
    assert again.log_likelihood_ == fresh.log_likelihood_


def test_integer_weights_fit_as_repeated_rows(case, data):
    if not case.weighted:
        pytest.skip(f"{case.name} is fitted on cohort counts, which are weights already")
    rng = np.random.default_rng(0)
    if "weights" in data:
        weights = data["weights"].astype(int)
        rows = {k: v for k, v in data.items() if k != "weights"}
    else:
        rows = data
        weights = rng.integers(1, 4, len(next(iter(rows.values()))))
    cls = case.model_class()
    weighted = cls().fit(**rows, weights=weights)
    repeated = cls().fit(**{k: np.repeat(v, weights) for k, v in rows.items()})
    for name in cls._param_names:
        assert weighted.params_[name] == pytest.approx(repeated.params_[name], rel=1e-7)
    assert weighted.log_likelihood_ == pytest.approx(repeated.log_likelihood_, rel=1e-10)
    assert weighted.n_customers_ == repeated.n_customers_


def _objective(model, data):
    if "survivors" in data:
        return model._objective(model._prepare(data["survivors"]))
    rows = {k: v for k, v in data.items() if k != "weights"}
    columns, weights = columns_from(rows, data.get("weights"))
    return model._objective(model._prepare(columns, weights))


def test_analytic_gradient_agrees_with_finite_differences(case, data):
    model = case.model_class()().fit(**data)
    objective = _objective(model, data)
    at_optimum = np.log(list(model.params_.values()))
    # Scaled to about one customer's log-likelihood, so that check_grad's forward
    # differences are accurate to ~1e-8 whatever the number of customers.
    scale = 1.0 / abs(objective(at_optimum)[0])
    away = at_optimum + np.array([0.3, -0.2, 0.25, -0.1][: len(at_optimum)])
    for phi in (at_optimum, away):
        gradient = objective(phi)[1] * scale
        error = optimize.check_grad(
            lambda p: objective(p)[0] * scale, lambda p: objective(p)[1] * scale, phi
        )
        assert error <= 1e-5 * max(1.0, np.linalg.norm(gradient)), (phi, error)


def test_unfitted_model_raises_not_fitted_error(case):
    model = case.model_class()()
    with pytest.raises(NotFittedError, match="fit"):
        case.edges(model)


def test_predictions_are_finite_and_in_range_at_the_edges(case, data):
    model = case.model_class()().fit(**data)
    for name, values in case.edges(model).items():
        values = np.asarray(values, dtype=float)
        assert np.all(np.isfinite(values)), (name, values)
        assert np.all(values >= 0), (name, values)
        if name in case.probabilities:
            assert np.all(values <= 1), (name, values)


def test_scalar_input_gives_a_python_float(case, data):
    model = case.model_class()().fit(**data)
    if case.name == "GammaGamma":
        value = model.conditional_expected_spend(2, 30.0)
    elif case.name == "ShiftedBetaGeometric":
        value = model.survival(3)
    elif case.name == "BetaGeoBetaBinom":
        value = model.probability_alive(2, 3, 6)
    else:
        value = model.probability_alive(2, 30.43, 38.86)
    assert isinstance(value, float)


def test_every_model_is_exported():
    models = importlib.import_module("patron.models")
    for case in CASES:
        assert case.name in models.__all__
