"""What every patron model shares: options, fitted attributes, summary-table input.

scikit-learn habits: the constructor only stores options, ``fit`` takes the data and
returns ``self``, and what was learned ends in ``_`` and exists only after a fit.  Asking
an unfitted model for a prediction raises :class:`NotFittedError`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from patron.errors import InputError, NotFittedError
from patron.i18n import _
from patron.models.fitter import MaximumLikelihood, Objective, maximize, one_blas_thread

__all__ = ["CustomerModel", "summary_columns"]


def summary_columns(summary: Any, names: tuple[str, ...]) -> tuple[dict[str, Any], Any, Any]:
    """Pull ``names`` (and ``weights`` and ``customer_id`` if present) out of a table.

    Works for an Arrow table, a pandas or polars DataFrame, and a mapping of columns.
    """
    if type(summary).__module__.split(".")[0] == "ibis":
        summary = summary.to_pyarrow()
    if hasattr(summary, "column_names"):
        found = list(summary.column_names)
    elif hasattr(summary, "columns"):
        found = list(summary.columns)
    else:
        found = list(summary.keys())
    for name in names:
        if name not in found:
            raise InputError(
                _("models.missing_column", column=name, found=", ".join(map(str, found))),
                column=name,
            )
    data = {name: summary[name] for name in names}
    weights = summary["weights"] if "weights" in found else None
    ids = summary["customer_id"] if "customer_id" in found else None
    return data, weights, ids


class CustomerModel:
    """Base of the maximum-likelihood models.

    Parameters
    ----------
    penalizer
        L2 penalty on the parameters (added to the mean negative log-likelihood), for data
        that barely identify the model.  0 gives the plain maximum-likelihood estimate the
        papers report.
    """

    _param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    def __repr__(self) -> str:
        name = type(self).__name__
        if not hasattr(self, "params_"):
            return f"{name}(penalizer={self.penalizer})"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"{name}({shown})"

    def _check_fitted(self) -> tuple[float, ...]:
        if "params_" not in self.__dict__:
            raise NotFittedError(_("models.not_fitted", model=type(self).__name__))
        return tuple(self.params_[name] for name in self._param_names)

    def _check_options(self) -> None:
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise InputError(
                _("models.bad_option", option="penalizer", value=self.penalizer, why=">= 0"),
                column="penalizer",
                value=self.penalizer,
            )

    def _fit_columns(self, data: dict[str, Any], weights: Any, ids: Any):
        """What every ``fit`` does: convert, check and compress, maximise, count."""
        from patron.models.inputs import columns_from

        columns, w = columns_from(data, weights, ids)
        prepared = self._prepare(columns, w)
        starts, curvature = self._warm_start(prepared)
        self._maximize(self._objective(prepared), starts, prepared.total, curvature)
        self.n_customers_ = float(w.sum()) if weights is not None else len(columns)
        return self

    def _warm_start(self, data: Any) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Starting points and, when known, the curvature there (none by default)."""
        return self._starts(data), None

    def _maximize(
        self,
        objective: Objective,
        starts: list[np.ndarray],
        total_weight: float,
        curvature: np.ndarray | None = None,
    ) -> MaximumLikelihood:
        """Run the shared fitter and store its results as the fitted attributes."""
        self._check_options()
        with one_blas_thread():
            found = maximize(
                objective,
                starts,
                names=self._param_names,
                model=type(self).__name__,
                total_weight=total_weight,
                penalizer=self.penalizer,
                curvature=curvature,
            )
        names = self._param_names
        self.params_ = {k: float(v) for k, v in zip(names, found.params, strict=True)}
        self.log_likelihood_ = found.log_likelihood
        self.standard_errors_ = {
            k: float(v) for k, v in zip(names, found.standard_errors, strict=True)
        }
        self.confidence_intervals_ = {
            k: (float(lo), float(hi)) for k, (lo, hi) in zip(names, found.intervals, strict=True)
        }
        self.covariance_ = found.covariance
        self.n_iter_ = found.iterations
        return found
