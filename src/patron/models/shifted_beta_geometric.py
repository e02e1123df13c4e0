r"""sBG: Fader & Hardie (2007), "How to project customer retention".

Journal of Interactive Marketing 21(1), 76-90.  In a contractual business (subscriptions,
memberships, annual policies) the firm sees every cancellation, so what there is to model is
how many of a cohort are still there at each renewal.  Each customer renews at the end of
each period with a fixed probability :math:`1 - \theta`, and :math:`\theta` varies across
customers as :math:`\mathrm{Beta}(\alpha, \beta)`: the lifetime is then shifted-geometric
given :math:`\theta` and shifted-beta-geometric for a random customer.  Heterogeneity is the
point -- the flighty leave first, so the retention rate of a cohort *rises* with tenure,
which a curve fitted to the aggregate retention rates cannot know and projects wrongly.

Lifetime values follow Fader & Hardie (2010), "Customer-base valuation in a contractual
setting: the perils of ignoring heterogeneity", Marketing Science 29(1), 85-93.  Equation
numbers below are those papers'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from patron.errors import InputError
from patron.i18n import _
from patron.models.base import CustomerModel
from patron.models.fitter import Objective
from patron.models.histories import as_float, scalar
from patron.models.inputs import as_column, compress

__all__ = ["ShiftedBetaGeometric"]


@dataclass(frozen=True)
class Cohorts:
    """Pooled survival data: how many were lost in each period, how many outlasted each end.

    Customers lost in period ``t`` (``t >= 1``) contribute ``P(T = t)``; those still active
    at the end of a cohort's observation, after ``t`` periods, contribute ``S(t)``
    (right-censored).  Cohorts that share a period share a row.
    """

    lost_t: np.ndarray
    lost: np.ndarray
    kept_t: np.ndarray
    kept: np.ndarray
    n_cohorts: int

    @property
    def total(self) -> float:
        """The number of customers in all cohorts together."""
        return float(self.lost.sum() + self.kept.sum())


def _series(survivors: Any) -> list[tuple[Any, Any]]:
    """One ``(label, series)`` per cohort, from one series, a list of them, or a mapping.

    A table (Arrow, pandas, polars) is a mapping of its columns: one cohort per column.
    """
    if isinstance(survivors, Mapping):
        return list(survivors.items())
    if hasattr(survivors, "column_names"):
        return [(name, survivors[name]) for name in survivors.column_names]
    if type(survivors).__module__.split(".")[0] in ("pandas", "polars") and hasattr(
        survivors, "columns"
    ):
        return [(name, survivors[name]) for name in survivors.columns]
    if isinstance(survivors, np.ndarray) and survivors.ndim == 2:
        return list(enumerate(survivors))
    if isinstance(survivors, list | tuple) and survivors and np.ndim(survivors[0]) > 0:
        return list(enumerate(survivors))
    return [(0, survivors)]


def _check_series(label: Any, values: np.ndarray) -> None:
    """A survivor series must be whole, non-negative counts that never rise."""
    if len(values) < 2:
        raise InputError(_("models.survivors_short", cohort=label, n=len(values)))
    who = _("models.row", row=label)
    for problem, bad in (
        ("models.not_finite", ~np.isfinite(values)),
        ("models.negative", values < 0),
        ("models.not_whole", values != np.round(values)),
    ):
        where = np.flatnonzero(bad)
        if len(where):
            period = int(where[0])
            column = f"survivors[{period}]"
            raise InputError(
                _(problem, who=who, column=column, value=values[period]),
                column=column,
                value=values[period],
            )
    rises = np.flatnonzero(np.diff(values) > 0)
    if len(rises):
        period = int(rises[0]) + 1
        raise InputError(
            _(
                "models.survivors_increase",
                cohort=label,
                after=int(values[period]),
                period=period,
                before=int(values[period - 1]),
                previous=period - 1,
            ),
            column=f"survivors[{period}]",
            value=values[period],
        )


def _sbg_objective(c: Cohorts) -> Objective:
    """Log-likelihood (paper eq. B3) summed over cohorts, and its gradient in log space."""
    lost_t, lost, kept_t, kept = c.lost_t, c.lost, c.kept_t, c.kept
    dg = special.digamma

    def objective(phi: np.ndarray) -> tuple[float, np.ndarray]:
        alpha, beta = np.exp(phi)
        log_b = special.betaln(alpha, beta)
        ll_lost = special.betaln(alpha + 1, beta + lost_t - 1) - log_b
        ll_kept = special.betaln(alpha, beta + kept_t) - log_b
        ab = dg(alpha + beta)
        # psi(alpha + 1) - psi(alpha) = 1 / alpha, exactly.
        d_alpha_lost = 1.0 / alpha - dg(alpha + beta + lost_t) + ab
        d_beta_lost = dg(beta + lost_t - 1) - dg(alpha + beta + lost_t) - dg(beta) + ab
        d_alpha_kept = ab - dg(alpha + beta + kept_t)
        d_beta_kept = dg(beta + kept_t) - dg(alpha + beta + kept_t) - dg(beta) + ab
        value = lost @ ll_lost + kept @ ll_kept
        gradient = np.array(
            [
                lost @ d_alpha_lost + kept @ d_alpha_kept,
                lost @ d_beta_lost + kept @ d_beta_kept,
            ]
        )
        return float(value), gradient * np.array([alpha, beta])

    return objective


def _pool(periods: list[np.ndarray], counts: list[np.ndarray]):
    """Sum the counts of all cohorts per period (no rows when every count is zero)."""
    periods, counts = np.concatenate(periods), np.concatenate(counts)
    if not np.any(counts > 0):
        return [np.empty(0)], np.empty(0)
    return compress([periods], counts)


def _at_least(name: str, values: np.ndarray, low: float) -> None:
    """Predictions outside the model's domain are a mistake to report, not a NaN to return."""
    bad = np.flatnonzero(~(values >= low))
    if len(bad):
        value = values.flat[bad[0]]
        raise InputError(
            _("models.bad_option", option=name, value=float(value), why=f">= {low:g}"),
            column=name,
            value=value,
        )


class ShiftedBetaGeometric(CustomerModel):
    """The shifted-beta-geometric model of contract renewal.

    Fitted on survivor counts: for each cohort, the number of customers still active at the
    start of each period, beginning with the cohort size.  Several cohorts are pooled into
    one ``alpha``, ``beta``; each may be observed for a different number of periods.

    Examples
    --------
    >>> from patron.models import ShiftedBetaGeometric
    >>> high_end = [1000, 869, 743, 653, 593, 551, 517, 491]
    >>> model = ShiftedBetaGeometric().fit(high_end)
    >>> round(model.params_["alpha"], 3), round(model.params_["beta"], 3)
    (0.668, 3.806)
    >>> round(1000 * model.survival(12))
    378
    """

    _param_names = ("alpha", "beta")

    def fit(self, survivors: Any):
        """Fit by maximum likelihood.

        Parameters
        ----------
        survivors
            The number of customers still active at the start of each period, beginning
            with the cohort size (``[1000, 631, 468, ...]``); or, for several cohorts, a list
            of such series, a mapping of cohort name to series or a table with one column
            per cohort.  Counts are whole and never rise.

        Returns
        -------
        self
        """
        cohorts = self._prepare(survivors)
        self._maximize(self._objective(cohorts), self._starts(cohorts), cohorts.total)
        self.n_customers_ = cohorts.total
        self.n_cohorts_ = cohorts.n_cohorts
        return self

    def _prepare(self, survivors: Any) -> Cohorts:
        """Check each cohort's series and pool the losses and survivors by period."""
        lost_t, lost, kept_t, kept = [], [], [], []
        series = _series(survivors)
        for label, values in series:
            values = as_column(values, "survivors")
            _check_series(label, values)
            periods = np.arange(1, len(values), dtype=np.float64)
            lost_t.append(periods)
            lost.append(values[:-1] - values[1:])
            kept_t.append(periods[-1:])
            kept.append(values[-1:])
        if not series or sum(k[0] for k in kept) + sum(k.sum() for k in lost) == 0:
            raise InputError(_("models.empty"))
        (lost_t,), lost = _pool(lost_t, lost)
        (kept_t,), kept = _pool(kept_t, kept)
        return Cohorts(lost_t, lost, kept_t, kept, len(series))

    def _objective(self, cohorts: Cohorts) -> Objective:
        return _sbg_objective(cohorts)

    def _starts(self, cohorts: Cohorts) -> list[np.ndarray]:
        # alpha / (alpha + beta) is the expected churn in period 1; start there with a
        # moderate alpha + beta, and fall back to (1, 1).
        first = cohorts.lost[cohorts.lost_t == 1].sum() / cohorts.total
        first = min(max(first, 0.05), 0.95)
        return [np.array([2 * first, 2 * (1 - first)]), np.ones(2)]

    def survival(self, t: Any) -> Any:
        r"""S(t): the share of a new cohort still active after ``t`` periods (``t >= 0``).

        The beta mixture of the individual :math:`(1-\theta)^t`; the product of the
        retention rates of eq. 8 up to ``t``.

        .. math:: S(t \mid \alpha, \beta) = \frac{B(\alpha, \beta + t)}{B(\alpha, \beta)}
        """
        alpha, beta = self._check_fitted()
        (t,) = as_float(t)
        _at_least("t", t, 0)
        return scalar(np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta)))

    def retention(self, t: Any) -> Any:
        r"""r_t: the share of those active in period ``t - 1`` who renew into period ``t`` (eq. 8).

        Rises with ``t`` towards 1 -- the cohort sorts itself -- which is why the aggregate
        retention rate of a young cohort understates its future.

        .. math:: r_t = \frac{S(t)}{S(t-1)} = \frac{\beta + t - 1}{\alpha + \beta + t - 1},
                  \quad t \ge 1
        """
        alpha, beta = self._check_fitted()
        (t,) = as_float(t)
        _at_least("t", t, 1)
        return scalar((beta + t - 1) / (alpha + beta + t - 1))

    def churn_probability(self, t: Any) -> Any:
        r"""P(T = t): the share of a new cohort lost in period ``t`` (``t >= 1``).

        The unconditional counterpart of ``1 - retention(t)``; the paper computes it by the
        recursion of eq. 7, :math:`P(T=1) = \alpha/(\alpha+\beta)`,
        :math:`P(T=t) = \frac{\beta+t-2}{\alpha+\beta+t-1} P(T=t-1)`, whose closed form is

        .. math:: P(T = t \mid \alpha, \beta) = \frac{B(\alpha + 1, \beta + t - 1)}
                  {B(\alpha, \beta)}
        """
        alpha, beta = self._check_fitted()
        (t,) = as_float(t)
        _at_least("t", t, 1)
        log_p = special.betaln(alpha + 1, beta + t - 1) - special.betaln(alpha, beta)
        return scalar(np.exp(log_p))

    def expected_remaining_lifetime(self, n_renewals: Any, discount_rate: Any) -> Any:
        r"""DERL: discounted expected residual lifetime of a customer with ``n_renewals`` renewals.

        Fader & Hardie (2010), eq. 6.  Stands at the end of the customer's current period,
        just before the next renewal decision, and counts the periods still to be paid for,
        each discounted at ``discount_rate`` per period, the next one undiscounted.  Multiply
        by the margin per period for the residual lifetime value.  With ``n - 1`` renewals:

        .. math:: \mathrm{DERL}(d \mid \alpha, \beta, n-1 \text{ renewals}) =
                  \frac{\beta + n - 1}{\alpha + \beta + n - 1}\,
                  {}_2F_1\Big(1, \beta + n; \alpha + \beta + n; \frac{1}{1+d}\Big)

        Infinite when ``discount_rate`` is 0 and ``alpha <= 1`` (the undiscounted lifetime has
        no mean then).
        """
        alpha, beta = self._check_fitted()
        k, d = as_float(n_renewals, discount_rate)
        _at_least("n_renewals", k, 0)
        _at_least("discount_rate", d, 0)
        value = (
            (beta + k)
            / (alpha + beta + k)
            * special.hyp2f1(1.0, beta + k + 1, alpha + beta + k + 1, 1.0 / (1.0 + d))
        )
        return scalar(np.asarray(value))

    def expected_lifetime(self, discount_rate: Any) -> Any:
        r"""DEL: discounted expected lifetime of a customer just acquired (Fader & Hardie 2010).

        The periods a new customer will pay for, the first (acquisition) period undiscounted;
        times the margin per period it is the expected lifetime value of a new customer.

        .. math:: \mathrm{DEL}(d \mid \alpha, \beta) = \sum_{t=0}^{\infty}
                  \frac{S(t)}{(1+d)^t} = {}_2F_1\Big(1, \beta; \alpha + \beta; \frac{1}{1+d}\Big)
        """
        alpha, beta = self._check_fitted()
        (d,) = as_float(discount_rate)
        _at_least("discount_rate", d, 0)
        return scalar(np.asarray(special.hyp2f1(1.0, beta, alpha + beta, 1.0 / (1.0 + d))))

    def simulate(self, n_customers: int, n_periods: int, seed: int | None = None) -> np.ndarray:
        """Draw one cohort of ``n_customers`` and count its survivors over ``n_periods``.

        Returns the survivor series (length ``n_periods + 1``, starting with
        ``n_customers``) that :meth:`fit` accepts.
        """
        alpha, beta = self._check_fitted()
        rng = np.random.default_rng(seed)
        theta = rng.beta(alpha, beta, n_customers)
        # Periods survived by inversion of the shifted geometric: P(T > k) = (1 - theta)^k.
        # theta may be drawn as exactly 0 (never leaves) or 1 (leaves after one period).
        u = 1.0 - rng.random(n_customers)
        with np.errstate(divide="ignore", invalid="ignore"):
            lifetime = np.floor(np.log(u) / np.log1p(-theta)) + 1
        lifetime = np.nan_to_num(lifetime, nan=np.inf)
        ends = np.minimum(lifetime, n_periods + 1).astype(np.int64)
        lost = np.bincount(ends, minlength=n_periods + 2)
        return n_customers - np.cumsum(lost)[: n_periods + 1]
