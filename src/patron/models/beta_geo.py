r"""BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way".

Marketing Science 24(2), 275-284.  While alive, a customer buys as a Poisson process with
rate :math:`\lambda \sim \mathrm{Gamma}(r, \alpha)`; after each repeat purchase they leave
for good with probability :math:`p \sim \mathrm{Beta}(a, b)`.  Equation numbers below are
the paper's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from patron.models.distributions import nbd_at_least, nbd_log_pmf, survival_2f1
from patron.models.fitter import Objective
from patron.models.histories import Histories, HistoryModel, as_float, dot, on_distinct, scalar

__all__ = ["BetaGeo"]


def beta_geo_objective(h: Histories, k: int = 0) -> Objective:
    """Log-likelihood (paper eq. 6) summed over histories, and its gradient in log space.

    With ``d = A4 - A3`` (leaving after the last purchase vs. alive at T), each history adds
    ``A1 + A2 + A3 + log(1 + e^d)``; ``d = -inf`` without a repeat purchase.  Terms that
    depend on one column only are summed per distinct value, weighted by that value's count.

    ``k = 1`` gives MBG/NBD (Batislam et al. 2007), where a customer may also leave right
    after the first purchase: ``b + x`` replaces ``b + x - 1`` and every history, repeat or
    not, has the "left after the last purchase" term.
    """
    x, w = h.x, h.weights
    xu = h.fx.values
    repeat_u = xu > 0 if k == 0 else np.ones(len(xu), dtype=bool)
    weight_x = h.fx.weights(w)
    total = w.sum()

    def objective(phi: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(phi)
        log_alpha_T = h.fT(np.log(alpha + h.fT.values))
        log_alpha_tx = h.ft_x(np.log(alpha + h.ft_x.values))
        b_x1 = np.where(repeat_u, b + xu - 1 + k, 1.0)
        rx = r + x
        gap = log_alpha_T - log_alpha_tx
        d = np.log(a) - h.fx(np.where(repeat_u, np.log(b_x1), np.inf)) + rx * gap
        w4 = special.expit(d)  # share of "left after the last purchase"
        ww4 = w * w4
        per_x = special.gammaln(r + xu) + special.gammaln(b + xu + k)
        per_x -= special.gammaln(a + b + xu + k)
        constant = -special.gammaln(r) + r * np.log(alpha) + special.gammaln(a + b)
        constant -= special.gammaln(b)
        ll = weight_x @ per_x + total * constant
        ll += dot(w, np.logaddexp(0.0, d) - rx * log_alpha_T)
        dg_abx = weight_x @ special.digamma(a + b + xu + k)
        d_r = (
            weight_x @ special.digamma(r + xu)
            + total * (np.log(alpha) - special.digamma(r))
            - dot(w, log_alpha_T)
            + dot(ww4, gap)
        )
        inv_T = h.fT(1.0 / (alpha + h.fT.values))
        inv_tx = h.ft_x(1.0 / (alpha + h.ft_x.values))
        d_alpha = total * r / alpha - dot(w, rx * inv_T) - dot(ww4, rx * (inv_tx - inv_T))
        d_a = total * special.digamma(a + b) - dg_abx + ww4.sum() / a
        d_b = (
            total * (special.digamma(a + b) - special.digamma(b))
            + weight_x @ special.digamma(b + xu + k)
            - dg_abx
            - dot(ww4, h.fx(np.where(repeat_u, 1.0 / b_x1, 0.0)))
        )
        gradient = np.array([d_r, d_alpha, d_a, d_b]) * np.exp(phi)
        return float(ll), gradient

    return objective


class BetaGeo(HistoryModel):
    """The BG/NBD model of repeat purchasing.

    Examples
    --------
    The CDNOW sample and calibration period of the paper:

    >>> import patron
    >>> s = patron.summarize(patron.datasets.cdnow(), as_of="1997-09-30")
    >>> model = BetaGeo().fit_summary(s)
    >>> model
    BetaGeo(r=0.2426, alpha=4.414, a=0.7929, b=2.426)
    >>> round(model.conditional_expected_purchases(39, 2, 30.43, 38.86), 3)
    1.226
    """

    _param_names = ("r", "alpha", "a", "b")

    def _objective(self, histories: Histories) -> Objective:
        return beta_geo_objective(histories)

    def _starts(self, histories: Histories) -> list[np.ndarray]:
        rate = np.average(histories.x / np.maximum(histories.T, 1e-9), weights=histories.weights)
        return [np.array([1.0, 1.0 / max(rate, 1e-6), 1.0, 3.0]), np.ones(4)]

    def expected_purchases(self, t: Any) -> Any:
        r"""Expected repeat purchases of a new customer in ``(0, t]`` (paper eq. 7).

        .. math:: E[X(t)] = \frac{a+b-1}{a-1}\Big[1 - \big(\tfrac{\alpha}{\alpha+t}\big)^r
                  {}_2F_1\big(r, b; a+b-1; \tfrac{t}{\alpha+t}\big)\Big]
        """
        r, alpha, a, b = self._check_fitted()
        (t,) = as_float(t)
        tail = survival_2f1(r, b, a + b - 1, t / (alpha + t))
        return scalar((a + b - 1) / (a - 1) * (1 - tail))

    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> Any:
        r"""Expected purchases in ``(T, T + t]`` given a customer's history (paper eq. 10).

        .. math:: E[Y(t) \mid x, t_x, T] = \frac{\frac{a+b+x-1}{a-1}\Big[1 -
                  \big(\tfrac{\alpha+T}{\alpha+T+t}\big)^{r+x}
                  {}_2F_1\big(r+x, b+x; a+b+x-1; \tfrac{t}{\alpha+T+t}\big)\Big]}
                  {1 + \delta_{x>0}\,\frac{a}{b+x-1}\big(\tfrac{\alpha+T}{\alpha+t_x}\big)^{r+x}}
        """
        r, alpha, a, b = self._check_fitted()
        t, x, t_x, T = as_float(t, frequency, recency, T)

        def tail(x, T, t):  # ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; c; z)
            return survival_2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))

        c = a + b + x - 1
        value = (c / (a - 1)) * (1 - on_distinct(tail, x, T, t))
        value *= self._p_alive(r, alpha, a, b, x, t_x, T)
        return scalar(value)

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        r"""P(alive at T | x, t_x, T): the denominator of paper eq. 10 (FHL 2008 note, eq. 1).

        .. math:: P(\tau > T \mid x, t_x, T) = \Big[1 + \delta_{x>0}\,\frac{a}{b+x-1}
                  \big(\tfrac{\alpha+T}{\alpha+t_x}\big)^{r+x}\Big]^{-1}
        """
        r, alpha, a, b = self._check_fitted()
        x, t_x, T = as_float(frequency, recency, T)
        return scalar(self._p_alive(r, alpha, a, b, x, t_x, T))

    @staticmethod
    def _p_alive(r, alpha, a, b, x, t_x, T) -> np.ndarray:
        log_odds = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-300))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
        return np.where(x > 0, special.expit(-log_odds), 1.0)

    def probability_of_purchases(self, t: Any, n: Any) -> Any:
        r"""P(X(t) = n): a new customer makes exactly ``n`` repeat purchases by ``t`` (eq. 8).

        .. math:: P(X(t)=x) = \frac{B(a, b+x)}{B(a,b)}\,\mathrm{NBD}(x; r, \alpha, t)
                  + \delta_{x>0}\frac{B(a+1, b+x-1)}{B(a,b)}
                  \Big[1 - \sum_{j=0}^{x-1}\mathrm{NBD}(j; r, \alpha, t)\Big]
        """
        r, alpha, a, b = self._check_fitted()
        t, n = as_float(t, n)
        p = alpha / (alpha + t)
        log_b = special.betaln(a, b)
        stay = np.exp(special.betaln(a, b + n) - log_b + nbd_log_pmf(n, r, p))
        left = np.exp(special.betaln(a + 1, np.maximum(b + n - 1, 1e-300)) - log_b)
        left = np.where(n > 0, left * nbd_at_least(n, r, p), 0.0)
        return scalar(stay + left)

    def simulate(self, n_customers: int, T: Any, seed: int | None = None):
        """Draw ``n_customers`` histories from the fitted model, observed for ``T`` each.

        Returns an Arrow table with ``frequency``, ``recency`` and ``T`` (and the drawn
        ``lambda_`` and ``p_``), which :meth:`fit_summary` accepts.
        """
        r, alpha, a, b = self._check_fitted()
        rng = np.random.default_rng(seed)
        lam = rng.gamma(r, 1.0 / alpha, n_customers)
        p = rng.beta(a, b, n_customers)
        before_leaving = self._purchases_before_leaving(rng, p)
        return purchases_table(rng, lam, before_leaving, T, {"lambda_": lam, "p_": p})

    @staticmethod
    def _purchases_before_leaving(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
        """Repeat purchases made before leaving: leave after each with probability p."""
        return rng.geometric(p)


def purchases_table(rng, lam, limit, T, extra: dict[str, np.ndarray]):
    """Histories of Poisson(lam) buyers observed for T who stop after ``limit`` purchases.

    Given n Poisson events in (0, T] their times are n sorted uniforms, so the time of the
    k-th is ``T * Beta(k, n - k + 1)``: no event times need be drawn.
    """
    import pyarrow as pa

    n_customers = len(lam)
    T = np.broadcast_to(np.asarray(T, dtype=np.float64), (n_customers,)).copy()
    events = rng.poisson(lam * T)
    x = np.minimum(events, limit)
    k = np.maximum(x, 1)
    t_x = np.where(x > 0, T * rng.beta(k, np.maximum(events - x, 0) + 1), 0.0)
    return pa.table({"frequency": x.astype(np.float64), "recency": t_x, "T": T, **extra})
