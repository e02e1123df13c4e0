"""The negative binomial (NBD) pieces the purchase models share, from scipy.special.

Written with special functions rather than ``scipy.stats`` because importing
``scipy.stats`` costs about a second, which every ``patron analyze`` would pay.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["nbd_log_pmf", "nbd_at_least", "survival_2f1"]


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


def survival_2f1(A: np.ndarray, B: np.ndarray, C: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``(1-z)^A 2F1(A, B; C; z)``: the term of the BG/NBD family's expected purchases.

    Computed by Euler's transformation, ``(1-z)^(C-B) 2F1(C-A, C-B; C; z)``, which keeps
    2F1 away from z -> 1 with large arguments.  When the dropout is all but the same for
    everyone, a and b run to millions and that form overflows (0 * inf); the direct series,
    which converges fast there, is used for those values instead.

    >>> round(float(survival_2f1(0.5, 2.0, 3.0, 0.4)), 12)  # Euler and direct agree
    0.909944487358
    >>> A, B, C, z = 0.48, 1.1e7, 1.3e7, 0.6  # a ~ 2e6, b ~ 1.1e7: Euler overflows
    >>> round(float(survival_2f1(A, B, C, z)), 6)  # the limit: (1-z)^A (1 - zB/C)^-A
    0.905139
    """
    A, B, C, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (A, B, C, z)))
    with np.errstate(invalid="ignore", over="ignore"):
        value = (1 - z) ** (C - B) * special.hyp2f1(C - A, C - B, C, z)
    bad = ~np.isfinite(value)
    if bad.any():
        value = np.array(value, dtype=np.float64)
        A, B, C, z = A[bad], B[bad], C[bad], z[bad]
        value[bad] = (1 - z) ** A * special.hyp2f1(A, B, C, z)
    return value
