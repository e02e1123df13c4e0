r"""Gamma-Gamma: Fader & Hardie (2013), "The Gamma-Gamma model of monetary value".

Technical note, http://www.brucehardie.com/notes/025/; the spend sub-model of Fader, Hardie
& Lee (2005), "RFM and CLV: using iso-value curves for customer base analysis", Journal of
Marketing Research 42(4), 415-430, after Colombo & Jiang (1999).

A customer's transactions are worth :math:`z_i \sim \mathrm{Gamma}(p, \nu)` (shape ``p``,
rate ``nu``), and ``nu`` varies across customers as :math:`\mathrm{Gamma}(q, \gamma)` (shape
``q``, rate ``gamma``), so a customer's mean transaction value is
:math:`\zeta = p / \nu`.  What is observed is :math:`m_x`, the mean value of the ``x``
*repeat* transactions; the first purchase is left out because it is often unlike the rest
(sign-up offers, a starter basket), which is why customers with ``x = 0`` carry no
information here.  The model assumes spend is independent of how often and how long a
customer buys, so it pairs with any of the purchase-count models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from patron.errors import InputError
from patron.i18n import _
from patron.models.base import CustomerModel, summary_columns
from patron.models.fitter import Objective
from patron.models.histories import Factor, as_float, dot, scalar
from patron.models.inputs import (
    Columns,
    _to_list,
    as_column,
    check_counts,
    compress,
)

__all__ = ["GammaGamma"]


@dataclass(frozen=True)
class Spends:
    """Distinct (x, m_x) with weights; ``x`` factored, since it takes few values."""

    x: np.ndarray
    m: np.ndarray
    weights: np.ndarray
    fx: Factor

    @classmethod
    def of(cls, x: np.ndarray, m: np.ndarray, weights: np.ndarray) -> Spends:
        """Compress weighted rows to distinct (x, m_x) and factor ``x``."""
        (x, m), weights = compress([x, m], weights)
        return cls(x, m, weights, Factor.of(x))

    @property
    def total(self) -> float:
        """The number of customers (the summed weights)."""
        return float(self.weights.sum())


def _gamma_gamma_objective(data: Spends) -> Objective:
    r"""The log-likelihood of the observed mean spends and its gradient in log space.

    Each customer contributes the log of the marginal density of :math:`m_x`
    (Fader & Hardie 2013):

    .. math:: f(m_x \mid p, q, \gamma, x) = \frac{\Gamma(px+q)}{\Gamma(px)\,\Gamma(q)}
              \frac{\gamma^q\, m_x^{px-1}\, x^{px}}{(\gamma + m_x x)^{px+q}}

    The :math:`x^{px}` factor is the Jacobian of :math:`m_x = \frac1x\sum z_i`; without it
    the maximiser is the same but the value is not a log-density, so log-likelihoods could
    not be compared with other spend models or with R's CLVTools.
    """
    x, m, w = data.x, data.m, data.weights
    xu, wu = data.fx.values, data.fx.weights(w)
    total = float(w.sum())
    mx = m * x
    wx = w * x
    # (px - 1) log m + px log x = p x log(m x) - log m: two sums fixed by the data.
    sum_x_log_mx = dot(wx, np.log(mx))
    sum_log_m = dot(w, np.log(m))

    def objective(phi: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, gamma = np.exp(phi)
        log_gamma_mx = np.log(gamma + mx)
        # Terms in x alone are evaluated once per distinct x, weighted by its customers.
        pxu = p * xu
        lg = dot(wu, special.gammaln(pxu + q) - special.gammaln(pxu))
        dg_pxq = special.digamma(pxu + q)
        sum_x_log_gm = dot(wx, log_gamma_mx)
        sum_log_gm = dot(w, log_gamma_mx)
        ll = lg + total * (q * np.log(gamma) - special.gammaln(q))
        ll += p * sum_x_log_mx - sum_log_m - p * sum_x_log_gm - q * sum_log_gm
        d_p = dot(wu * xu, dg_pxq - special.digamma(pxu)) + sum_x_log_mx - sum_x_log_gm
        d_q = dot(wu, dg_pxq) + total * (np.log(gamma) - special.digamma(q)) - sum_log_gm
        d_gamma = total * q / gamma - dot(p * wx + q * w, 1.0 / (gamma + mx))
        return float(ll), np.array([d_p, d_q, d_gamma]) * np.exp(phi)

    return objective


class GammaGamma(CustomerModel):
    r"""The Gamma-Gamma model of the mean spend per transaction.

    Fit it on *repeat* customers only: :meth:`fit` refuses a row with ``frequency`` 0
    (there is no repeat spend to average), while :meth:`fit_summary` keeps the rows with
    ``frequency > 0`` of a :func:`patron.summarize` table by itself.  Predictions
    (:meth:`conditional_expected_spend`) are then made for every customer, including the
    one-time buyers, who get the population mean.

    Parameters
    ----------
    penalizer
        L2 penalty on the parameters; see :class:`~patron.models.base.CustomerModel`.

    Examples
    --------
    The CDNOW sample of the papers, calibration period to 1997-09-30 (946 repeat
    customers); the estimates are those printed by Fader & Hardie (2013):

    >>> import patron
    >>> from patron.models import GammaGamma
    >>> summary = patron.summarize(patron.datasets.cdnow(sample=True), as_of="1997-09-30")
    >>> model = GammaGamma().fit_summary(summary)
    >>> model
    GammaGamma(p=6.25, q=3.744, gamma=15.44)
    >>> round(model.expected_spend(), 2)
    35.17
    >>> model.conditional_expected_spend([0, 2], [0.0, 22.345]).round(2)
    array([35.17, 24.65])
    """

    _param_names = ("p", "q", "gamma")

    def fit(self, frequency: Any, monetary_value: Any, weights: Any = None, *, ids: Any = None):
        """Fit by maximum likelihood.

        Parameters
        ----------
        frequency
            Per customer, the number of repeat transactions ``x`` (a whole number >= 1).
        monetary_value
            Per customer, the mean value ``m_x`` of those ``x`` repeat transactions (> 0),
            as :func:`patron.summarize` computes it.
        weights
            Optional count of customers with each (frequency, monetary_value) (integer
            weights fit exactly as repeated rows would).
        ids
            Optional customer ids, used only to name a customer in error messages.

        Returns
        -------
        self

        Raises
        ------
        InputError
            A row has ``frequency`` 0 or a ``monetary_value`` that is not positive: the
            model describes the mean of repeat transactions, which such a row does not
            have.  The message names the customer.
        """
        data = {"frequency": frequency, "monetary_value": monetary_value}
        return self._fit_columns(data, weights, ids)

    def _prepare(self, columns: Columns, weights: np.ndarray) -> Spends:
        """Check the columns and compress them to distinct (x, m_x)."""
        x, m = columns["frequency"], columns["monetary_value"]
        check_counts(columns, {"frequency": x}, whole=True)
        # A frequency-0 row has no repeat spend to average: it belongs out of the fit.
        bad = np.flatnonzero(x == 0)
        if len(bad):
            row = int(bad[0])
            raise InputError(
                _("models.frequency_zero_spend", who=columns.who(row)),
                column="frequency",
                value=x[row],
            )
        bad = np.flatnonzero(~np.isfinite(m))
        if len(bad):
            row = int(bad[0])
            raise InputError(
                _("models.not_finite", who=columns.who(row), column="monetary_value", value=m[row]),
                column="monetary_value",
                value=m[row],
            )
        bad = np.flatnonzero(m <= 0)
        if len(bad):
            row = int(bad[0])
            raise InputError(
                _("models.spend_not_positive", who=columns.who(row), value=m[row]),
                column="monetary_value",
                value=m[row],
            )
        if not np.any(weights > 0):
            raise InputError(_("models.no_positive_spend", model=type(self).__name__))
        return Spends.of(x, m, weights)

    def fit_summary(self, summary: Any):
        """Fit on the repeat customers of a table with ``frequency`` and ``monetary_value``.

        The table is what :func:`patron.summarize` returns (an Arrow table), or a pandas /
        polars DataFrame; a ``weights`` column is used when present, ``customer_id`` names
        customers in error messages.  Rows with ``frequency`` 0 are left out here (they
        have no repeat spend; predict for them with :meth:`conditional_expected_spend`),
        so a whole summary can be passed as it is.
        """
        data, weights, ids = summary_columns(summary, ("frequency", "monetary_value"))
        x = as_column(data["frequency"], "frequency")
        # NaN != 0, so a missing frequency stays in and is reported by fit().
        keep = x != 0
        if not keep.any():
            raise InputError(_("models.no_positive_spend", model=type(self).__name__))
        m = as_column(data["monetary_value"], "monetary_value")
        if len(m) == len(x):
            m = m[keep]
        if weights is not None:
            weights = as_column(weights, "weights")
            if len(weights) == len(x):
                weights = weights[keep]
        if ids is not None:
            ids = np.asarray(_to_list(ids), dtype=object)
            ids = ids[keep] if len(ids) == len(x) else None
        return self.fit(x[keep], m, weights, ids=ids)

    def _objective(self, data: Spends) -> Objective:
        return _gamma_gamma_objective(data)

    def _starts(self, data: Spends) -> list[np.ndarray]:
        # Moments: the between-customer CV^2 of zeta = p/nu is 1/(q-2), and its mean is
        # p*gamma/(q-1); the within-customer part is unknown, so p starts at a middling 4.
        mean = np.average(data.m, weights=data.weights)
        var = np.average((data.m - mean) ** 2, weights=data.weights)
        q = 2.0 + min(max(mean**2 / max(var, 1e-300), 0.5), 50.0)
        p = 4.0
        return [np.array([p, q, mean * (q - 1) / p]), np.array([1.0, 3.0, 2.0 * mean])]

    def expected_spend(self) -> float:
        r"""The population mean spend per transaction, for a customer not yet seen repeat.

        .. math:: E(Z) = E\Big(\frac{p}{\nu}\Big) = \frac{p\gamma}{q-1}

        Returns
        -------
        float
            ``inf`` when ``q <= 1``: the mean of :math:`1/\nu` then diverges, so the
            population has no finite mean spend (a tail that heavy is a property of the
            data, and a finite number here would be made up).
        """
        p, q, gamma = self._check_fitted()
        return float(p * gamma / (q - 1)) if q > 1 else float("inf")

    def conditional_expected_spend(self, frequency: Any, monetary_value: Any) -> Any:
        r"""A customer's expected mean spend per transaction, given what they have spent.

        The posterior of :math:`\nu` is :math:`\mathrm{Gamma}(q + px, \gamma + m_x x)`, so
        the expectation is a weighted average of the population mean and the customer's
        own mean, the weight on their own growing with the number of repeat purchases
        (Fader, Hardie & Lee 2005; Fader & Hardie 2013):

        .. math:: E(Z \mid p, q, \gamma, m_x, x) = \frac{q-1}{px+q-1}\,\frac{p\gamma}{q-1}
                  + \frac{px}{px+q-1}\, m_x

        For ``frequency`` 0 it is :meth:`expected_spend`, whatever ``monetary_value`` is.

        Parameters
        ----------
        frequency, monetary_value
            Per customer, repeat transactions ``x`` and their mean value ``m_x``
            (broadcast against each other).
        """
        p, q, gamma = self._check_fitted()
        x, m = as_float(frequency, monetary_value)
        m = np.where(x > 0, m, 0.0)
        # (p*gamma + p*x*m) / (p*x + q - 1): the same weighted average without the 0/0
        # at q = 1; the denominator is positive for every x > 0 the fit allows.
        with np.errstate(divide="ignore"):
            value = np.where(x > 0, p * (gamma + x * m) / (p * x + q - 1), self.expected_spend())
        return scalar(value)

    def simulate(self, n_customers: int, frequency: Any, seed: int | None = None):
        r"""Draw ``n_customers`` repeat customers' mean spends from the fitted model.

        Each customer draws :math:`\nu \sim \mathrm{Gamma}(q, \gamma)`; the mean of ``x``
        transactions :math:`z_i \sim \mathrm{Gamma}(p, \nu)` is
        :math:`\mathrm{Gamma}(px, x\nu)`, so no single transaction need be drawn.

        Parameters
        ----------
        n_customers
            How many customers.
        frequency
            Repeat transactions per customer: one number or one per customer (>= 1).
        seed
            Seed for :func:`numpy.random.default_rng`.

        Returns
        -------
        pyarrow.Table
            ``frequency`` and ``monetary_value`` (which :meth:`fit_summary` accepts) and
            the drawn ``nu_``.
        """
        import pyarrow as pa

        p, q, gamma = self._check_fitted()
        rng = np.random.default_rng(seed)
        x = np.broadcast_to(np.asarray(frequency, dtype=np.float64), (n_customers,)).copy()
        nu = rng.gamma(q, 1.0 / gamma, n_customers)
        m = rng.gamma(p * x, 1.0 / (x * nu))
        return pa.table({"frequency": x, "monetary_value": m, "nu_": nu})
