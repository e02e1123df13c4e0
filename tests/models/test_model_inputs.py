"""What models accept, and the clear errors for what they cannot use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from patron.errors import ConvergenceError, InputError, NotFittedError, PatronError
from patron.models import BetaGeo, ModifiedBetaGeo
from patron.models.inputs import compress


def _simulated() -> tuple[list[float], list[float], list[float]]:
    truth = BetaGeo()
    truth.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    table = truth.simulate(500, np.arange(500) % 39 + 1.0, seed=2)
    return tuple(table[k].to_pylist() for k in ("frequency", "recency", "T"))


X, TX, T = _simulated()


@pytest.mark.parametrize(
    "convert",
    [
        np.asarray,
        list,
        pd.Series,
        lambda v: pl.Series(v, dtype=pl.Float64),
        pa.array,
        lambda v: pa.chunked_array([v[:3], v[3:]]),
    ],
    ids=["numpy", "list", "pandas", "polars", "arrow", "arrow-chunked"],
)
def test_every_container_gives_the_same_fit(convert):
    reference = BetaGeo().fit(np.array(X), np.array(TX), np.array(T))
    model = BetaGeo().fit(convert(X), convert(TX), convert(T))
    assert model.params_ == reference.params_


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"frequency": X, "recency": TX, "T": T}),
        pd.DataFrame({"frequency": X, "recency": TX, "T": T}),
        pl.DataFrame({"frequency": X, "recency": TX, "T": T}),
        {"frequency": X, "recency": TX, "T": T},
    ],
    ids=["arrow", "pandas", "polars", "dict"],
)
def test_fit_summary_takes_any_table(table):
    reference = BetaGeo().fit(X, TX, T)
    assert BetaGeo().fit_summary(table).params_ == reference.params_


def test_fit_summary_uses_a_weights_column():
    table = pa.table({"frequency": X, "recency": TX, "T": T, "weights": [2] * len(X)})
    doubled = BetaGeo().fit(X * 2, TX * 2, T * 2)
    model = BetaGeo().fit_summary(table)
    for name, value in doubled.params_.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-7)
    assert model.n_customers_ == 1000


def test_fit_summary_names_a_missing_column():
    with pytest.raises(InputError, match="no column T; columns found: frequency, recency"):
        BetaGeo().fit_summary({"frequency": X, "recency": TX})


@pytest.mark.parametrize(
    ("frequency", "recency", "T_", "message"),
    [
        ([0, 2, np.nan], [0, 3, 1], [5, 5, 5], "Customer c: frequency is nan; it must be a finite"),
        ([0, 2, 1], [0, 3, -1], [5, 5, 5], "Customer c: recency is -1.0; it cannot be negative"),
        ([0, 2.5, 1], [0, 3, 1], [5, 5, 5], "Customer b: frequency is 2.5; it must be a whole"),
        ([0, 2, 1], [0, 6, 1], [5, 5, 5], "Customer b: recency 6.0 is greater than T 5.0"),
        ([0, 2, 0], [0, 3, 1], [5, 5, 5], "Customer c: frequency is 0 but recency is 1.0"),
        ([0, 0, 0], [0, 0, 0], [5, 5, 5], "No customer bought more than once"),
        ([0, 2, 1], [0, 3, 1], [5, 5], "T has 2 values but frequency has 3"),
    ],
)
def test_unusable_data_is_an_input_error_naming_the_customer(frequency, recency, T_, message):
    table = {"customer_id": ["a", "b", "c"], "frequency": frequency, "recency": recency, "T": T_}
    if len(T_) != len(frequency):
        with pytest.raises(InputError, match=message):
            BetaGeo().fit(frequency, recency, T_)
        return
    with pytest.raises(InputError, match=message) as caught:
        BetaGeo().fit_summary(pa.table(table))
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, PatronError)


def test_without_ids_the_row_is_named():
    with pytest.raises(InputError, match="Row 1: recency 6.0 is greater than T 5.0") as caught:
        BetaGeo().fit([0, 2], [0, 6], [5, 5])
    assert caught.value.column == "recency" and caught.value.value == 6.0


def test_negative_weights_are_refused():
    with pytest.raises(InputError, match="weights is -1.0"):
        BetaGeo().fit(X, TX, T, weights=[1] * 499 + [-1])


def test_messages_follow_the_language(monkeypatch):
    monkeypatch.setenv("PATRON_LANG", "zh-CN")
    with pytest.raises(InputError, match="没有任何客户购买超过一次"):
        BetaGeo().fit([0, 0], [0, 0], [5, 5])
    with pytest.raises(NotFittedError, match="尚未拟合"):
        BetaGeo().probability_alive(1, 1, 2)


def test_unfitted_model_raises_not_fitted_error_that_is_also_an_attribute_error():
    model = ModifiedBetaGeo()
    with pytest.raises(NotFittedError, match="ModifiedBetaGeo is not fitted yet"):
        model.expected_purchases(10)
    assert not hasattr(model, "params_")
    with pytest.raises(AttributeError):
        model.simulate(10, 5)


def test_a_fit_the_data_cannot_pin_down_raises_convergence_error():
    """Everyone buys steadily up to T: nobody ever seems to leave, so the dropout
    probability runs off to zero instead of settling: its parameters a and b drift apart
    along a ridge, and the error names whichever the flat direction moves most (which one
    depends on where SciPy's line search stops)."""
    rng = np.random.default_rng(0)
    T_ = rng.uniform(10, 50, 500)
    x = rng.poisson(T_ * 0.5)
    with pytest.raises(ConvergenceError, match="BetaGeo did not converge: parameter [ab] ran off"):
        BetaGeo().fit(x, np.where(x > 0, T_, 0), T_)


def test_a_negative_penalizer_is_refused():
    with pytest.raises(InputError, match="penalizer=-1"):
        BetaGeo(penalizer=-1).fit(X, TX, T)


def test_a_penalizer_shrinks_the_parameters():
    plain = BetaGeo().fit(X, TX, T)
    shrunk = BetaGeo(penalizer=0.1).fit(X, TX, T)
    assert sum(v**2 for v in shrunk.params_.values()) < sum(v**2 for v in plain.params_.values())


@pytest.mark.parametrize("rows", [10, 300_000])
def test_compress_sums_the_weights_of_equal_rows(rows):
    """Both paths: sorting for small inputs, hash aggregation for large ones."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, rows).astype(float)
    b = rng.integers(0, 3, rows) / 7
    w = rng.integers(0, 3, rows).astype(float)
    (ua, ub), uw = compress([a, b], w)
    expected = {}
    for key, weight in zip(zip(a.tolist(), b.tolist(), strict=True), w.tolist(), strict=True):
        if weight > 0:
            expected[key] = expected.get(key, 0) + weight
    got = dict(zip(zip(ua.tolist(), ub.tolist(), strict=True), uw.tolist(), strict=True))
    assert got == expected
    assert list(zip(ua, ub, strict=True)) == sorted(zip(ua, ub, strict=True))


@pytest.mark.parametrize("name", ["BetaGeo", "ModifiedBetaGeo"])
def test_predictions_on_distinct_rows_equal_row_by_row(name, monkeypatch):
    import patron.models as models
    import patron.models.histories as histories

    rng = np.random.default_rng(3)
    n = 150_000  # above the size from which the hypergeometric term is shared
    x = rng.integers(0, 20, n).astype(float)
    T = rng.integers(1, 400, n) / 7
    t_x = np.where(x > 0, T * rng.random(n), 0.0)
    model = getattr(models, name)()
    model.params_ = {"r": 0.3, "alpha": 5.0, "a": 0.8, "b": 2.5}
    model.covariance_ = np.eye(4)
    for t in (26.0, rng.random(n) * 52):
        shared = model.conditional_expected_purchases(t, x, t_x, T)
        monkeypatch.setattr(histories, "_DISTINCT_FROM", 10**12)
        plain = model.conditional_expected_purchases(t, x, t_x, T)
        monkeypatch.undo()
        np.testing.assert_array_equal(shared, plain)
