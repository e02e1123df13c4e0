"""Maximum likelihood in log-parameter space, shared by every model.

Each model hands over a pure function ``log-parameters -> (log-likelihood, gradient)``
summed over weighted distinct histories.  Working with ``log(theta)`` keeps every
parameter positive without bounds games and makes the problem better scaled; the analytic
gradient lets L-BFGS take few, exact steps (no autograd, no finite-difference gradients).

Uncertainty comes from the observed information: the Hessian of the log-likelihood at the
optimum, obtained by central differences of the analytic gradient in log space.  Standard
errors of ``theta`` follow by the delta method (``se(theta) = theta * se(log theta)``);
confidence intervals are Wald intervals on the log scale, ``theta * exp(+-z se(log theta))``,
so they never cross zero.

A fit that stops short -- the optimizer gives up, a parameter runs off towards zero or
infinity (or its standard error says it could be anywhere), or the point found is not a
maximum -- raises :class:`ConvergenceError` with the
reason; it never hands back parameters nobody should use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import optimize, special

from patron.errors import ConvergenceError
from patron.i18n import _

__all__ = ["Objective", "MaximumLikelihood", "maximize", "hessian", "one_blas_thread"]

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]

# log-parameters beyond this are treated as "ran off": exp(18) ~ 6.6e7, exp(-18) ~ 1.5e-8.
_LOG_BOUND = 18.0
# A standard error of log(theta) above this means the 95% interval spans a factor of more
# than e^40: the optimizer stopped on a plateau where a parameter drifts off, not at a
# point the data pin down.  Real fits show 0.01-0.5.
_LOOSE = 10.0
# Along a direction where the likelihood is flat, a log-parameter beyond this (a factor of
# e^10 ~ 22,000 from 1) has drifted off rather than stopped where the data put it.
_DRIFTED = 10.0
# Converged when no component of the mean log-likelihood's gradient exceeds this.
_GTOL = 1e-9


@dataclass(frozen=True)
class MaximumLikelihood:
    """The optimum: parameters, log-likelihood and their uncertainty."""

    params: np.ndarray
    log_likelihood: float
    covariance: np.ndarray
    standard_errors: np.ndarray
    intervals: np.ndarray  # shape (k, 2)
    iterations: int
    hessian: np.ndarray  # of the log-likelihood in log-parameter space


def maximize(
    objective: Objective,
    starts: Sequence[np.ndarray],
    *,
    names: Sequence[str],
    model: str,
    total_weight: float,
    penalizer: float = 0.0,
    level: float = 0.95,
    curvature: np.ndarray | None = None,
) -> MaximumLikelihood:
    """Maximise ``objective`` from each start in turn; keep the first clean optimum.

    ``penalizer`` adds ``penalizer * sum(theta**2)`` to the mean negative log-likelihood,
    as lifetimes' ``penalizer_coef`` does, to keep estimates finite on data that barely
    identify them.  The returned log-likelihood is the unpenalised one.

    ``curvature``, the Hessian of the mean negative log-likelihood near the first start
    (from a fit on a sample of the data), lets a quasi-Newton polish that begins with it
    finish in a handful of steps on the full data; L-BFGS-B takes over if it stalls.
    """
    scale = 1.0 / total_weight

    def negative(phi: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = objective(phi)
        theta = np.exp(phi)
        value = -value * scale + penalizer * np.sum(theta**2)
        gradient = -gradient * scale + penalizer * 2.0 * theta**2
        if not np.isfinite(value):
            return np.inf, np.zeros_like(phi)
        return value, gradient

    failure = ""
    for n, start in enumerate(starts):
        phi = np.log(np.asarray(start, dtype=float))
        polished = curvature is not None and n == 0 and _polish(negative, phi, curvature)
        if polished:
            phi, iterations = polished
        else:
            result = optimize.minimize(
                negative,
                phi,
                jac=True,
                method="L-BFGS-B",
                bounds=[(-_LOG_BOUND - 2, _LOG_BOUND + 2)] * len(names),
                options={"maxiter": 2000, "ftol": 1e-15, "gtol": _GTOL, "maxcor": 20},
            )
            phi, iterations = result.x, result.nit
            if not result.success and np.max(np.abs(result.jac)) > 1e-5:
                failure = _("models.no_convergence", model=model, message=result.message)
                continue
        off = np.flatnonzero(np.abs(phi) > _LOG_BOUND)
        if len(off):
            j = off[0]
            failure = _("models.at_bound", model=model, name=names[j], value=np.exp(phi[j]))
            continue
        curve = hessian(objective, phi)
        try:
            covariance_phi = np.linalg.inv(-curve)
        except np.linalg.LinAlgError:
            covariance_phi = None
        values, vectors = np.linalg.eigh(-curve)
        if covariance_phi is None or np.any(values <= 0):
            failure = _flat(model, names, phi, vectors[:, 0])
            continue
        theta = np.exp(phi)
        se_phi = np.sqrt(np.diag(covariance_phi))
        loose = np.flatnonzero(se_phi > _LOOSE)
        if len(loose):
            j = loose[0]
            failure = _("models.at_bound", model=model, name=names[j], value=theta[j])
            continue
        z = special.ndtri(0.5 + level / 2)
        return MaximumLikelihood(
            params=theta,
            log_likelihood=float(objective(phi)[0]),
            covariance=covariance_phi * np.outer(theta, theta),
            standard_errors=theta * se_phi,
            intervals=np.column_stack([theta * np.exp(-z * se_phi), theta * np.exp(z * se_phi)]),
            iterations=int(iterations),
            hessian=curve,
        )
    raise ConvergenceError(failure)


def _flat(model: str, names: Sequence[str], phi: np.ndarray, flattest: np.ndarray) -> str:
    """Why a fit whose likelihood is flat in some direction failed, as plainly as it can.

    Where the optimizer stops on such a plateau depends on its version's line search
    (SciPy 1.17 stopped a dropout parameter at e^-15.6 that earlier releases took past the
    bound), so the parameter is named by the flattest direction (``flattest``, the
    eigenvector of the curvature's least eigenvalue), not by how far it got: the one that
    direction moves most, when it has drifted off.
    """
    j = int(np.argmax(np.abs(flattest)))
    if abs(phi[j]) > _DRIFTED:
        return _("models.at_bound", model=model, name=names[j], value=np.exp(phi[j]))
    return _("models.not_maximum", model=model)


def one_blas_thread():
    """Keep BLAS to one thread while fitting.

    A fit makes thousands of tiny BLAS calls (L-BFGS-B's updates on 4-vectors); OpenBLAS
    wakes its thread pool for each, which on 2 cores cost more than the likelihood itself
    (measured: a 1M-customer BG/NBD fit took 0.40 s, 0.25 s with one thread).
    """
    return _threadpools().limit(limits=1, user_api="blas")


@cache
def _threadpools():
    """One controller per process: finding the loaded BLAS libraries takes ~15 ms."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _polish(
    negative: Objective, phi: np.ndarray, curvature: np.ndarray, max_iter: int = 50
) -> tuple[np.ndarray, int] | None:
    """Quasi-Newton (BFGS updates) from a good start and Hessian; None if it stalls."""
    inverse_ok = np.all(np.linalg.eigvalsh(curvature) > 0)
    if not inverse_ok:
        return None
    approx = curvature.copy()
    value, gradient = negative(phi)
    for iteration in range(max_iter):
        if np.max(np.abs(gradient)) < _GTOL:
            return phi, iteration
        step = -np.linalg.solve(approx, gradient)
        slope = gradient @ step
        if not slope < 0:
            return None
        length = 1.0
        while True:
            trial_value, trial_gradient = negative(phi + length * step)
            if np.isfinite(trial_value) and trial_value <= value + 1e-4 * length * slope:
                break
            length /= 2
            if length < 1e-6:
                return None
        s, y = length * step, trial_gradient - gradient
        phi, value, gradient = phi + s, trial_value, trial_gradient
        if y @ s > 0:
            hs = approx @ s
            approx = approx - np.outer(hs, hs) / (s @ hs) + np.outer(y, y) / (y @ s)
    return None


def hessian(objective: Objective, phi: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Central differences of the analytic gradient, symmetrised."""
    k = len(phi)
    hessian = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step
        hessian[:, j] = (objective(phi + e)[1] - objective(phi - e)[1]) / (2 * step)
    return (hessian + hessian.T) / 2
