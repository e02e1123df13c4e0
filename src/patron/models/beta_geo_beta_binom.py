r"""BG/BB: Fader, Hardie & Shang (2010), the beta-geometric/beta-Bernoulli model.

"Customer-base analysis in a discrete-time noncontractual setting", Marketing Science 29(6),
1086-1108.  Some businesses give customers a fixed calendar of chances to buy -- an annual
fund drive, a yearly conference, a weekly show -- so what there is to know about a customer
is *whether* they bought at each of ``n`` opportunities, not when.  While alive, a customer
buys at each opportunity with probability :math:`p \sim \mathrm{Beta}(\alpha, \beta)`; at the
start of each opportunity an alive customer dies with probability
:math:`\theta \sim \mathrm{Beta}(\gamma, \delta)`.  As in BG/NBD, ``(x, t_x, n)`` are
sufficient: the number of repeat purchases, the opportunity of the last one and the number
of opportunities observed.  Equation numbers below are the paper's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from patron.errors import InputError
from patron.i18n import _
from patron.models.base import CustomerModel, summary_columns
from patron.models.fitter import Objective
from patron.models.histories import Histories, as_float, scalar
from patron.models.inputs import Columns, check_histories

__all__ = ["BetaGeoBetaBinom"]

# Below this distance from gamma = 1 the closed forms' delta / (gamma - 1) is replaced by its
# limit (a digamma difference), off by ~1e-7 relative at most -- no worse than the
# cancellation in the closed form itself that close to 1.
_GAMMA_ONE = 1e-7


def _layout(t_x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The death opportunities ``i = 0 .. n - t_x - 1`` of the likelihood's sum, one row each.

    A customer silent since ``t_x`` may have died at any of the ``n - t_x`` opportunities
    after it; rows have different lengths, so they are padded to the longest and ``valid``
    says which cells are real.  ``n`` is small in practice (6 in the donations data).
    """
    gaps = n - t_x
    width = int(np.max(gaps)) if len(gaps) else 0
    i = np.arange(width, dtype=np.float64)[None, :]
    valid = i <= (gaps - 1)[:, None]
    return np.where(valid, i, 0.0), valid


def _terms(params, x, t_x, n, i, valid) -> np.ndarray:
    """Log of each term of the likelihood, before dividing by ``B(a, b) B(g, d)``.

    Column 0 is "alive through all ``n`` opportunities"; column ``1 + i`` is "alive through
    opportunity ``t_x + i``, dead at the start of the next".  Padding cells are ``-inf``.
    """
    alpha, beta, gamma, delta = params
    alive = special.betaln(alpha + x, beta + n - x) + special.betaln(gamma, delta + n)
    xc, txc = x[:, None], t_x[:, None]
    died = special.betaln(alpha + xc, beta + txc - xc + i) + special.betaln(
        gamma + 1, delta + txc + i
    )
    return np.column_stack([alive, np.where(valid, died, -np.inf)])


def _log_sum(terms: np.ndarray) -> np.ndarray:
    top = np.max(terms, axis=1)  # finite: column 0 always is
    return top + np.log(np.sum(np.exp(terms - top[:, None]), axis=1))


def _log_likelihood(params, x, t_x, n) -> np.ndarray:
    """Per-history log-likelihood (the paper's likelihood, Section 3), any shape."""
    alpha, beta, gamma, delta = params
    x, t_x, n = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(x, t_x, n))
    shape = x.shape
    # Evaluate each distinct history once: the sum's width is set by the longest gap.
    rows, inverse = np.unique(
        np.column_stack([x.ravel(), t_x.ravel(), n.ravel()]), axis=0, return_inverse=True
    )
    ux, ut, un = rows.T
    i, valid = _layout(ut, un)
    ll = _log_sum(_terms(params, ux, ut, un, i, valid))
    ll -= special.betaln(alpha, beta) + special.betaln(gamma, delta)
    return ll[inverse.ravel()].reshape(shape)


def _bgbb_objective(h: Histories) -> Objective:
    """Weighted log-likelihood summed over distinct histories, and its gradient in log space."""
    x, t_x, n, w = h.x, h.t_x, h.T, h.weights
    i, valid = _layout(t_x, n)
    full = np.column_stack([np.ones(len(x), dtype=bool), valid])
    xc, txc = x[:, None], t_x[:, None]

    def objective(phi: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(phi)
        alpha, beta, gamma, delta = theta
        terms = _terms(theta, x, t_x, n, i, valid)
        log_sum = _log_sum(terms)
        share = np.where(full, np.exp(terms - log_sum[:, None]), 0.0)
        ll = log_sum - special.betaln(alpha, beta) - special.betaln(gamma, delta)
        dg = special.digamma
        # d/d(param) of each term's log, alive column first, then the death columns.
        d_alpha = np.column_stack(
            [dg(alpha + x) - dg(alpha + beta + n), dg(alpha + xc) - dg(alpha + beta + txc + i)]
        )
        d_beta = np.column_stack(
            [
                dg(beta + n - x) - dg(alpha + beta + n),
                dg(beta + txc - xc + i) - dg(alpha + beta + txc + i),
            ]
        )
        d_gamma = np.column_stack(
            [dg(gamma) - dg(gamma + delta + n), dg(gamma + 1) - dg(gamma + delta + 1 + txc + i)]
        )
        d_delta = np.column_stack(
            [
                dg(delta + n) - dg(gamma + delta + n),
                dg(delta + txc + i) - dg(gamma + delta + 1 + txc + i),
            ]
        )
        grads = [
            np.sum(share * np.where(full, d, 0.0), axis=1)
            for d in (d_alpha, d_beta, d_gamma, d_delta)
        ]
        grads[0] -= dg(alpha) - dg(alpha + beta)
        grads[1] -= dg(beta) - dg(alpha + beta)
        grads[2] -= dg(gamma) - dg(gamma + delta)
        grads[3] -= dg(delta) - dg(gamma + delta)
        gradient = np.array([w @ g for g in grads]) * theta
        return float(w @ ll), gradient

    return objective


def _alive_sum(gamma: float, delta: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Sum over opportunities ``t = a+1 .. b`` of P(alive at t) for a new customer.

    With :math:`S(t) = B(\gamma, \delta+t)/B(\gamma, \delta)` the sum telescopes to
    :math:`S(a)\frac{\delta+a}{\gamma-1}\big[1 - \frac{\Gamma(1+\delta+b)\Gamma(\gamma+\delta+a)}
    {\Gamma(\gamma+\delta+b)\Gamma(1+\delta+a)}\big]` -- the bracket of the paper's eqs. 8 and
    13.  Written with ``expm1`` it stays accurate as the bracket and ``gamma - 1`` both vanish;
    at ``gamma = 1`` it is the limit ``(delta + a) S(a) [psi(1+delta+b) - psi(1+delta+a)]``.
    """
    log_s_a = special.betaln(gamma, delta + a) - special.betaln(gamma, delta)
    lg = special.gammaln
    diff = (lg(1 + delta + b) - lg(gamma + delta + b)) - (lg(1 + delta + a) - lg(gamma + delta + a))
    near_one = abs(gamma - 1) < _GAMMA_ONE
    if near_one:
        ratio = special.digamma(1 + delta + b) - special.digamma(1 + delta + a)
    else:
        ratio = -np.expm1(diff) / (gamma - 1)
    return np.where(b > a, np.exp(log_s_a) * (delta + a) * ratio, 0.0)


class BetaGeoBetaBinom(CustomerModel):
    """The BG/BB model of repeat transactions at discrete opportunities.

    Fitted on ``frequency`` (repeat transactions ``x`` in ``n`` opportunities after the
    first), ``recency`` (the opportunity ``t_x`` of the last one, 0 if none) and
    ``n_periods`` (``n``).  Integer ``weights`` count customers sharing a history, which is
    how such data usually arrive: the donations data of the paper are 22 rows for 11,104
    people.

    Examples
    --------
    >>> from patron.datasets import donations
    >>> from patron.models import BetaGeoBetaBinom
    >>> model = BetaGeoBetaBinom().fit_summary(donations())
    >>> {k: round(v, 3) for k, v in model.params_.items()}
    {'alpha': 1.204, 'beta': 0.75, 'gamma': 0.657, 'delta': 2.783}
    >>> round(model.probability_alive(6, 6, 6), 2)
    0.93
    """

    _param_names = ("alpha", "beta", "gamma", "delta")

    def fit(
        self,
        frequency: Any,
        recency: Any,
        n_periods: Any,
        weights: Any = None,
        *,
        ids: Any = None,
    ):
        """Fit by maximum likelihood.

        Parameters
        ----------
        frequency, recency, n_periods
            Per customer: repeat transactions ``x``, the opportunity ``t_x`` of the last
            one (0 if none) and the number of opportunities ``n`` observed after the first
            transaction.  All whole numbers with ``x <= t_x <= n``.
        weights
            Optional count of customers with each history (integer weights fit exactly as
            repeated rows would).
        ids
            Optional customer ids, used only to name a customer in error messages.

        Returns
        -------
        self
        """
        data = {"frequency": frequency, "recency": recency, "n_periods": n_periods}
        return self._fit_columns(data, weights, ids)

    def fit_summary(self, summary: Any):
        """Fit on a table with ``frequency``, ``recency`` and ``n_periods`` columns.

        ``periods`` is accepted for ``n_periods``, as the donations data name it; a
        ``weights`` column is used when present, ``customer_id`` names customers in errors.
        """
        try:
            data, weights, ids = summary_columns(summary, ("frequency", "recency", "n_periods"))
        except InputError as missing:
            try:
                data, weights, ids = summary_columns(summary, ("frequency", "recency", "periods"))
            except InputError:
                raise missing from None
            data["n_periods"] = data.pop("periods")
        return self.fit(**data, weights=weights, ids=ids)

    def _prepare(self, columns: Columns, weights: np.ndarray) -> Histories:
        """Check the columns and compress them to distinct histories.

        Beyond the checks every history passes, a discrete history cannot hold more
        transactions than opportunities: ``x <= n``, and ``x <= t_x`` since all ``x`` fall at
        or before the last one.
        """
        check_histories(columns, type(self).__name__, end="n_periods")
        x, t_x, n = columns["frequency"], columns["recency"], columns["n_periods"]
        for limit in (n, t_x):
            bad = np.flatnonzero(x > limit)
            if len(bad):
                row = int(bad[0])
                raise InputError(
                    _(
                        "models.too_many_purchases",
                        who=columns.who(row),
                        frequency=x[row],
                        periods=limit[row],
                    ),
                    column="frequency",
                    value=x[row],
                )
        # Rows of zero weight are no customers: what is left must still be fittable.
        if not np.any(weights > 0):
            raise InputError(_("models.empty"))
        if not np.any((x > 0) & (weights > 0)):
            raise InputError(_("models.no_repeat", model=type(self).__name__))
        return Histories.of(x, t_x, n, weights)

    def _objective(self, histories: Histories) -> Objective:
        return _bgbb_objective(histories)

    def _starts(self, histories: Histories) -> list[np.ndarray]:
        # The mean purchase rate while observed gives alpha / (alpha + beta) a sensible start;
        # (1, 1, 1, 1) is the fallback.
        rate = np.average(histories.x / np.maximum(histories.T, 1.0), weights=histories.weights)
        rate = min(max(rate, 0.05), 0.95)
        return [np.array([rate, 1.0 - rate, 1.0, 3.0]), np.ones(4)]

    def expected_purchases(self, n: Any) -> Any:
        r"""Expected transactions of a new customer in the first ``n`` opportunities (eq. 8).

        .. math:: E[X(n)] = \frac{\alpha}{\alpha+\beta}\,\frac{\delta}{\gamma-1}\Big[1 -
                  \frac{\Gamma(\gamma+\delta)}{\Gamma(1+\delta)}
                  \frac{\Gamma(1+\delta+n)}{\Gamma(\gamma+\delta+n)}\Big]

        Evaluated without the removable singularity at :math:`\gamma = 1`.
        """
        alpha, beta, gamma, delta = self._check_fitted()
        (n,) = as_float(n)
        value = alpha / (alpha + beta) * _alive_sum(gamma, delta, np.zeros_like(n), n)
        return scalar(np.asarray(value))

    def conditional_expected_purchases(
        self, n_star: Any, frequency: Any, recency: Any, n_periods: Any
    ) -> Any:
        r"""Expected transactions in the next ``n_star`` opportunities, given a history (eq. 13).

        .. math:: E[X(n, n+n^*) \mid x, t_x, n] = \frac{1}{L(\alpha,\beta,\gamma,\delta \mid
                  x, t_x, n)}\,\frac{B(\alpha+x+1, \beta+n-x)}{B(\alpha,\beta)}\,
                  \frac{\delta}{\gamma-1}\,\frac{\Gamma(\gamma+\delta)}{\Gamma(1+\delta)}
                  \Big[\frac{\Gamma(1+\delta+n)}{\Gamma(\gamma+\delta+n)} -
                  \frac{\Gamma(1+\delta+n+n^*)}{\Gamma(\gamma+\delta+n+n^*)}\Big]
        """
        params = self._check_fitted()
        alpha, beta, gamma, delta = params
        n_star, x, t_x, n = as_float(n_star, frequency, recency, n_periods)
        log_l = _log_likelihood(params, x, t_x, n)
        log_buy = special.betaln(alpha + x + 1, beta + n - x) - special.betaln(alpha, beta)
        value = np.exp(log_buy - log_l) * _alive_sum(gamma, delta, n, n + n_star)
        return scalar(np.asarray(value))

    def probability_alive(self, frequency: Any, recency: Any, n_periods: Any) -> Any:
        r"""P(alive at opportunity ``n + 1`` | x, t_x, n) (eq. 11).

        Alive at ``n + 1`` means having survived all ``n`` opportunities observed and the
        start of the next: the chance the customer can still make the next transaction.

        .. math:: P(\text{alive at } n+1 \mid x, t_x, n) =
                  \frac{B(\alpha+x, \beta+n-x)}{B(\alpha,\beta)}\,
                  \frac{B(\gamma, \delta+n+1)}{B(\gamma,\delta)}
                  \Big/ L(\alpha,\beta,\gamma,\delta \mid x, t_x, n)
        """
        params = self._check_fitted()
        alpha, beta, gamma, delta = params
        x, t_x, n = as_float(frequency, recency, n_periods)
        log_alive = (
            special.betaln(alpha + x, beta + n - x)
            - special.betaln(alpha, beta)
            + special.betaln(gamma, delta + n + 1)
            - special.betaln(gamma, delta)
        )
        value = np.minimum(np.exp(log_alive - _log_likelihood(params, x, t_x, n)), 1.0)
        return scalar(value)

    def probability_of_purchases(self, n: Any, x: Any) -> Any:
        r"""P(X(n) = x): a new customer makes ``x`` transactions in ``n`` opportunities (eq. 7).

        .. math:: P(X(n)=x) = \binom{n}{x}\frac{B(\alpha+x, \beta+n-x)}{B(\alpha,\beta)}
                  \frac{B(\gamma, \delta+n)}{B(\gamma,\delta)} + \sum_{i=x}^{n-1}\binom{i}{x}
                  \frac{B(\alpha+x, \beta+i-x)}{B(\alpha,\beta)}
                  \frac{B(\gamma+1, \delta+i)}{B(\gamma,\delta)}

        Zero outside ``0 <= x <= n``.
        """
        alpha, beta, gamma, delta = self._check_fitted()
        n, x = as_float(n, x)
        shape = n.shape
        pairs, inverse = np.unique(
            np.column_stack([n.ravel(), x.ravel()]), axis=0, return_inverse=True
        )
        un, ux = pairs.T
        possible = (ux >= 0) & (ux <= un)
        un, ux = np.where(possible, un, 0.0), np.where(possible, ux, 0.0)
        log_b = special.betaln(alpha, beta) + special.betaln(gamma, delta)

        def log_choose(top, k):
            return special.gammaln(top + 1) - special.gammaln(k + 1) - special.gammaln(top - k + 1)

        alive = (
            log_choose(un, ux)
            + special.betaln(alpha + ux, beta + un - ux)
            + special.betaln(gamma, delta + un)
            - log_b
        )
        width = int(np.max(un)) if len(un) else 0
        i = np.arange(width, dtype=np.float64)[None, :]
        valid = (i >= ux[:, None]) & (i <= un[:, None] - 1)
        i = np.where(valid, i, ux[:, None])
        died = (
            log_choose(i, ux[:, None])
            + special.betaln(alpha + ux[:, None], beta + i - ux[:, None])
            + special.betaln(gamma + 1, delta + i)
            - log_b
        )
        value = np.exp(alive) + np.sum(np.where(valid, np.exp(died), 0.0), axis=1)
        value = np.where(possible, value, 0.0)
        return scalar(value[inverse.ravel()].reshape(shape))

    def simulate(self, n_customers: int, n_periods: Any, seed: int | None = None):
        """Draw ``n_customers`` histories from the fitted model over ``n_periods`` opportunities.

        Returns an Arrow table with ``frequency``, ``recency`` and ``n_periods`` (and the
        drawn ``p_`` and ``theta_``), which :meth:`fit_summary` accepts.  ``n_periods`` is
        one number or one per customer.
        """
        import pyarrow as pa

        alpha, beta, gamma, delta = self._check_fitted()
        rng = np.random.default_rng(seed)
        n = np.broadcast_to(np.asarray(n_periods, dtype=np.float64), (n_customers,)).copy()
        p = rng.beta(alpha, beta, n_customers)
        theta = rng.beta(gamma, delta, n_customers)
        # Opportunities survived: alive at t with probability (1 - theta)^t, by inversion of
        # the geometric distribution (theta may be drawn as exactly 0 or 1).
        u = 1.0 - rng.random(n_customers)
        with np.errstate(divide="ignore", invalid="ignore"):
            lived = np.floor(np.log(u) / np.log1p(-theta))
        lived = np.minimum(np.nan_to_num(lived, nan=np.inf), n)
        x = np.zeros(n_customers)
        t_x = np.zeros(n_customers)
        for t in range(1, int(n.max(initial=0)) + 1):
            bought = (t <= lived) & (rng.random(n_customers) < p)
            x += bought
            t_x = np.where(bought, t, t_x)
        return pa.table({"frequency": x, "recency": t_x, "n_periods": n, "p_": p, "theta_": theta})
