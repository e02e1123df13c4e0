r"""MBG/NBD: Batislam, Denizel & Filiztekin (2007), IJRM 24(3).

"Empirical validation and comparison of models for customer base analysis", International
Journal of Research in Marketing 24(3), 201-209.

BG/NBD lets a customer leave only after a *repeat* purchase, so a one-time buyer is
"alive" for ever (P(alive) = 1 however long ago they bought).  MBG/NBD also lets them leave
right after the first purchase, with the same :math:`p \sim \mathrm{Beta}(a, b)`: one-time
buyers' P(alive) then decays with time, which is why patron's lifecycle stages use it.
Everything else is BG/NBD; the formulas are those of the paper (as lifetimes'
``ModifiedBetaGeoFitter`` implements them) with ``b + x`` in place of ``b + x - 1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from patron.models.beta_geo import BetaGeo, beta_geo_objective
from patron.models.distributions import nbd_at_least, nbd_log_pmf, survival_2f1
from patron.models.fitter import Objective
from patron.models.histories import Histories, as_float, on_distinct, scalar

__all__ = ["ModifiedBetaGeo"]


class ModifiedBetaGeo(BetaGeo):
    """The MBG/NBD model of repeat purchasing.

    Examples
    --------
    >>> import patron
    >>> s = patron.summarize(patron.datasets.cdnow(), as_of="1997-09-30")
    >>> model = ModifiedBetaGeo().fit_summary(s)
    >>> model
    ModifiedBetaGeo(r=0.5248, alpha=6.183, a=0.8914, b=1.614)
    >>> [round(model.probability_alive(0, 0, T), 2) for T in (10, 39, 78)]
    [0.52, 0.39, 0.32]
    """

    def _objective(self, histories: Histories) -> Objective:
        return beta_geo_objective(histories, k=1)

    def expected_purchases(self, t: Any) -> Any:
        r"""Expected repeat purchases of a new customer in ``(0, t]`` (Batislam et al. eq. 8).

        .. math:: E[X(t)] = \frac{b}{a-1}\Big[1 - \big(\tfrac{\alpha}{\alpha+t}\big)^r
                  {}_2F_1\big(r, b+1; a+b; \tfrac{t}{\alpha+t}\big)\Big]
        """
        r, alpha, a, b = self._check_fitted()
        (t,) = as_float(t)
        tail = survival_2f1(r, b + 1, a + b, t / (alpha + t))
        return scalar(b / (a - 1) * (1 - tail))

    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> Any:
        r"""Expected purchases in ``(T, T + t]`` given a history (Batislam et al. eq. 9).

        .. math:: E[Y(t) \mid x, t_x, T] = \frac{\frac{a+b+x}{a-1}\Big[1 -
                  \big(\tfrac{\alpha+T}{\alpha+T+t}\big)^{r+x}
                  {}_2F_1\big(r+x, b+x+1; a+b+x; \tfrac{t}{\alpha+T+t}\big)\Big]}
                  {1 + \frac{a}{b+x}\big(\tfrac{\alpha+T}{\alpha+t_x}\big)^{r+x}}
        """
        r, alpha, a, b = self._check_fitted()
        t, x, t_x, T = as_float(t, frequency, recency, T)

        def tail(x, T, t):  # ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; z)
            return survival_2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))

        c = a + b + x
        value = (c / (a - 1)) * (1 - on_distinct(tail, x, T, t))
        value *= self._p_alive(r, alpha, a, b, x, t_x, T)
        return scalar(value)

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        r"""P(alive at T | x, t_x, T) (Batislam et al. eq. 10), which decays for x = 0 too.

        .. math:: P(\tau > T \mid x, t_x, T) = \Big[1 + \frac{a}{b+x}
                  \big(\tfrac{\alpha+T}{\alpha+t_x}\big)^{r+x}\Big]^{-1}
        """
        r, alpha, a, b = self._check_fitted()
        x, t_x, T = as_float(frequency, recency, T)
        return scalar(self._p_alive(r, alpha, a, b, x, t_x, T))

    @staticmethod
    def _p_alive(r, alpha, a, b, x, t_x, T) -> np.ndarray:
        log_odds = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return special.expit(-log_odds)

    def probability_of_purchases(self, t: Any, n: Any) -> Any:
        r"""P(X(t) = n) for a new customer.

        Derived as BG/NBD's eq. 8 is, with the extra chance to leave at time 0: ``n``
        purchases happen either while still alive after all of them, or as the last ones
        before leaving.

        .. math:: P(X(t)=x) = \frac{B(a, b+x+1)}{B(a,b)}\,\mathrm{NBD}(x; r, \alpha, t)
                  + \frac{B(a+1, b+x)}{B(a,b)}
                  \Big[1 - \sum_{j=0}^{x-1}\mathrm{NBD}(j; r, \alpha, t)\Big]
        """
        r, alpha, a, b = self._check_fitted()
        t, n = as_float(t, n)
        p = alpha / (alpha + t)
        log_b = special.betaln(a, b)
        stay = np.exp(special.betaln(a, b + n + 1) - log_b + nbd_log_pmf(n, r, p))
        left = np.exp(special.betaln(a + 1, b + n) - log_b) * nbd_at_least(n, r, p)
        return scalar(stay + left)

    @staticmethod
    def _purchases_before_leaving(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
        """A first chance to leave at time 0, then one after each repeat purchase."""
        return rng.geometric(p) - 1
