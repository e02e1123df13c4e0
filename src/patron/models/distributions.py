"""The negative binomial (NBD) pieces the purchase models share, from scipy.special.

Written with special functions rather than ``scipy.stats`` because importing
``scipy.stats`` costs about a second, which every ``patron analyze`` would pay.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["nbd_log_pmf", "nbd_at_least"]


def nbd_log_pmf(n: np.ndarray, r: float, p: np.ndarray) -> np.ndarray:
    """Log P(N = n) for N ~ NBD(r, p): ``Gamma(r+n) / (Gamma(r) n!) p^r (1-p)^n``.

    >>> round(float(np.exp(nbd_log_pmf(np.array(2.0), 1.0, np.array(0.5)))), 12)
    0.125
    """
    return (
        special.gammaln(r + n)
        - special.gammaln(r)
        - special.gammaln(n + 1)
        + r * np.log(p)
        + special.xlog1py(n, -p)
    )


def nbd_at_least(n: np.ndarray, r: float, p: np.ndarray) -> np.ndarray:
    """P(N >= n) = I_{1-p}(n, r) (regularised incomplete beta); 1 for n <= 0.

    >>> round(float(nbd_at_least(np.array(1.0), 1.0, np.array(0.5))), 12)
    0.5
    """
    n, p = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(p, dtype=float))
    return np.where(n > 0, special.betainc(np.maximum(n, 1e-300), r, 1 - p), 1.0)
