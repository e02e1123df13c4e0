"""Purchase histories (x, t_x, T) and the base of the models fitted on them.

BG/NBD, MBG/NBD and Pareto/NBD all see a customer as ``x`` repeat purchases, the last at
``t_x``, observed for ``T`` time units since the first.  :class:`Histories` holds the
distinct histories with their counts and, per column, the distinct values and where each
row finds its value: the special functions (``gammaln(r + x)``, ``log(alpha + T)``) are
then evaluated once per distinct value, which on real data is a few hundred numbers even
for millions of customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from patron.models.base import CustomerModel, summary_columns
from patron.models.fitter import Objective
from patron.models.inputs import Columns, check_histories, compress

__all__ = ["Histories", "HistoryModel", "Factor", "as_float", "dot", "scalar"]


@dataclass(frozen=True)
class Factor:
    """Distinct values of one column and, for each row, the index of its value."""

    values: np.ndarray
    index: np.ndarray

    @classmethod
    def of(cls, column: np.ndarray) -> Factor:
        """Factor one column."""
        values, index = np.unique(column, return_inverse=True)
        return cls(values, index)

    def weights(self, row_weights: np.ndarray) -> np.ndarray:
        """The summed row weight of each distinct value."""
        return np.bincount(self.index, row_weights, minlength=len(self.values))

    def __call__(self, per_value: np.ndarray) -> np.ndarray:
        """Spread a per-value result back to rows."""
        return per_value[self.index]


@dataclass(frozen=True)
class Histories:
    """Distinct (x, t_x, T) with weights, factored per column."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weights: np.ndarray
    fx: Factor
    ft_x: Factor
    fT: Factor

    @classmethod
    def of(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray) -> Histories:
        """Compress weighted rows to distinct histories and factor their columns."""
        (x, t_x, T), weights = compress([x, t_x, T], weights)
        return cls(x, t_x, T, weights, Factor.of(x), Factor.of(t_x), Factor.of(T))

    @property
    def total(self) -> float:
        """The number of customers (the summed weights)."""
        return float(self.weights.sum())


# Fits on more distinct histories than this start from a fit on a sample of this size.
_SAMPLE_FROM = 50_000
_SAMPLE = 20_000


class HistoryModel(CustomerModel):
    """A model of repeat purchases fitted on (frequency, recency, T)."""

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None, *, ids: Any = None):
        """Fit by maximum likelihood.

        Parameters
        ----------
        frequency, recency, T
            Per customer: repeat purchases ``x``, time of the last one ``t_x`` and the time
            observed ``T``, both counted from the first purchase in one time unit.
        weights
            Optional count of customers with each history (integer weights fit exactly as
            repeated rows would).
        ids
            Optional customer ids, used only to name a customer in error messages.

        Returns
        -------
        self
        """
        return self._fit_columns({"frequency": frequency, "recency": recency, "T": T}, weights, ids)

    def _warm_start(self, histories: Histories) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Starts for the fit, and the curvature there when a sample fit found them.

        With many distinct histories, a fit on a seeded sample of them lands near the
        optimum in a few milliseconds; the full fit then only polishes (a handful of
        likelihood evaluations instead of twenty or more).  Any failure on the sample
        just leaves the usual starts.
        """
        from patron.errors import PatronError
        from patron.models.fitter import maximize, one_blas_thread

        starts = self._starts(histories)
        if len(histories.weights) <= _SAMPLE_FROM:
            return starts, None
        pick = np.random.default_rng(0).choice(len(histories.weights), _SAMPLE, replace=False)
        pick.sort()
        sample = Histories.of(
            histories.x[pick], histories.t_x[pick], histories.T[pick], histories.weights[pick]
        )
        objective = self._objective(sample)
        try:
            with one_blas_thread():
                found = maximize(
                    objective,
                    starts,
                    names=self._param_names,
                    model=type(self).__name__,
                    total_weight=sample.total,
                    penalizer=self.penalizer,
                )
        except PatronError:
            return starts, None
        return [found.params, *starts], -found.hessian / sample.total

    def _prepare(self, columns: Columns, weights: np.ndarray) -> Histories:
        """Check the columns and compress them to distinct histories."""
        check_histories(columns, type(self).__name__, weights=weights)
        return Histories.of(columns["frequency"], columns["recency"], columns["T"], weights)

    def fit_summary(self, summary: Any):
        """Fit on a table with ``frequency``, ``recency`` and ``T`` columns.

        The table is what :func:`patron.summarize` returns (an Arrow table), or a pandas /
        polars DataFrame; a ``weights`` column is used when present, ``customer_id`` names
        customers in error messages.
        """
        data, weights, ids = summary_columns(summary, ("frequency", "recency", "T"))
        return self.fit(**data, weights=weights, ids=ids)

    def _objective(self, histories: Histories) -> Objective:
        raise NotImplementedError

    def _starts(self, histories: Histories) -> list[np.ndarray]:
        raise NotImplementedError


# From this many values, a formula of few columns is evaluated once per distinct row.
_DISTINCT_FROM = 100_000


def on_distinct(function: Any, *columns: np.ndarray) -> np.ndarray:
    """``function(*columns)``, evaluated once per distinct row of ``columns``.

    The costly part of a prediction often depends on fewer columns than the history: BG/NBD's
    hypergeometric term depends on (x, T, t) but not t_x, and 3M customers of a shop share
    a few tens of thousands of (x, T) pairs.  Small inputs are evaluated as they are.
    """
    from patron.models.inputs import factorize_rows

    shape = np.broadcast(*columns).shape
    if int(np.prod(shape)) < _DISTINCT_FROM:
        return function(*columns)
    # A column broadcast from one value (strides all 0) is passed on as that value.
    varying = [c.ndim > 0 and any(c.strides) for c in map(np.asarray, columns)]
    flat = [np.ravel(np.broadcast_to(c, shape)) for c, v in zip(columns, varying, strict=True) if v]
    unique, index = factorize_rows(flat)
    values = iter(unique)
    args = [
        next(values) if v else np.asarray(c).ravel()[0]
        for c, v in zip(columns, varying, strict=True)
    ]
    return np.asarray(function(*args))[index].reshape(shape)


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``a @ b`` without BLAS, whose threads cost milliseconds a call on a busy machine.

    The likelihoods sum long weighted columns dozens of times a fit; measured on a loaded
    2-core machine, ``@`` on 250k values took 5-12 ms where this takes 0.2 ms.
    """
    return float(np.multiply(a, b).sum())


def scalar(values: np.ndarray) -> Any:
    """A prediction as the caller gave it: a Python float for scalar input, else the array."""
    return values.item() if values.ndim == 0 else values


def as_float(*values: Any) -> list[np.ndarray]:
    """Broadcast prediction inputs to float arrays of one shape."""
    return list(np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values)))
