r"""Pareto/NBD: Schmittlein, Morrison & Colombo (1987), "Counting your customers".

Management Science 33(1), 1-24.  While alive, a customer buys as a Poisson process with
rate :math:`\lambda \sim \mathrm{Gamma}(r, \alpha)`; they die at an unobserved time
:math:`\omega \sim \mathrm{Exponential}(\mu)`, :math:`\mu \sim \mathrm{Gamma}(s, \beta)`,
independently of :math:`\lambda`.  The likelihood and the predictions follow Fader & Hardie
(2005), "A note on deriving the Pareto/NBD model and related expressions"
(brucehardie.com/notes/009, cited as *the note*, by section), and Fader & Hardie (2006),
"Deriving an expression for P(X(t) = x) under the Pareto/NBD model" (notes/012).

The likelihood without a hypergeometric function
------------------------------------------------
Integrating :math:`\lambda` and :math:`\mu` out of the individual likelihood (note, section
3) gives, with :math:`a = r + x`,

.. math:: L = \frac{\Gamma(r+x)\alpha^r\beta^s}{\Gamma(r)}\Big[(\alpha+T)^{-a}(\beta+T)^{-s}
          + s\int_{t_x}^{T}(\alpha+\tau)^{-a}(\beta+\tau)^{-(s+1)}\,d\tau\Big],

the first term "alive at T", the second "died at :math:`\tau` in :math:`(t_x, T]`".  The
note writes the integral with :math:`{}_2F_1`, whose derivatives in its parameters have no
closed form, so an exact gradient needs the integral itself.  Integrating the first term by
parts turns the bracket into two *tail* integrals of positive functions,

.. math:: [\ldots] = s\,F_{a,\,s+1}(t_x) + a\,F_{a+1,\,s}(T), \qquad
          F_{p,q}(t) = \int_t^\infty (\alpha+\tau)^{-p}(\beta+\tau)^{-q}\,d\tau,

which is better two ways.  Nothing is subtracted: the note's two hypergeometric terms
nearly cancel for a recent buyer, these are both positive.  And each tail depends on a
customer only through ``(x, t_x)`` or ``(x, T)``: when recency and ``T`` are whole days,
as summaries are, a million customers have some ten thousand such pairs, and for one
``x`` the tails at successive ``t`` differ by the integral over ``[t_i, t_{i+1}]``, so
every tail is a cumulative sum of short segments of a few quadrature nodes each.

The quadrature runs in :math:`\ell = \log(\min(\alpha,\beta) + \tau)`, where the log-
integrand :math:`\phi(\ell) = (1-e_1)\ell - e_2\log(e^\ell + |\alpha-\beta|)` is concave
(one peak, found in closed form) and analytic in the strip :math:`|\mathrm{Im}\,\ell| <
\pi`, its only singularities at :math:`\log|\alpha-\beta| \pm i\pi`.  Gauss-Legendre on
panels a bounded distance from those points converges geometrically; panels are laid out
uniformly in :math:`\operatorname{asinh}((\ell - \log|\alpha-\beta|)/\pi)`, which is
fine near the singularities and coarse far away, short enough that :math:`\phi` falls by
at most a few units across one, and the range is cut where the integrand has fallen below
:math:`e^{-40}` of its peak.  The result agrees with the note's :math:`{}_2F_1` form to
about 1e-13 relative.  The gradient differentiates under the integral sign with the same
nodes: :math:`\partial_r \log F = -E[\log(\alpha+\tau)]`, :math:`\partial_\alpha \log F =
-p\,E[1/(\alpha+\tau)]` and likewise for :math:`s, \beta`, expectations under the
normalised integrand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from patron.models.fitter import Objective
from patron.models.histories import Histories, HistoryModel, as_float, dot, scalar

__all__ = ["ParetoNBD"]

# Gauss-Legendre rules by panel size: a panel at its size limits (below) needs 8 nodes for
# ~1e-14; one at a fraction q of them converges like (q/6.5)^(2n), so small panels -- the
# common case, a segment between nearby recencies -- take fewer.
_RULES = tuple(
    (limit, nodes, np.log(weights))
    for limit, (nodes, weights) in (
        (1e-3, np.polynomial.legendre.leggauss(2)),
        (0.05, np.polynomial.legendre.leggauss(4)),
        (1.0, np.polynomial.legendre.leggauss(8)),
    )
)
# The integrand is cut where it has fallen below exp(-_CUT) of its peak (4e-18).
_CUT = 40.0
# Panel widths: in asinh((l - center) / pi) when the singularities are at center +- i*pi,
# else in l itself (singularities pi off the real line); either way half a panel is about
# a third of its distance to the nearest singularity.
_PANEL_MAPPED = 0.7
_PANEL_PLAIN = 2.0
# Largest fall of the log-integrand across one panel.
_PANEL_FALL = 3.0
_MAX_PANELS = 4096

_Curve = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _reach(end: np.ndarray, phi: _Curve, slope: _Curve, steepest: np.ndarray) -> np.ndarray:
    """How far from the peak, on one side, the integrand still matters.

    ``end`` is the distance to the end of the range (may be infinite), ``phi`` the log-
    integrand relative to the peak and ``slope`` its derivative, both at a distance ``d``
    from the peak, and ``steepest`` the largest ``|slope|`` on that side (its limit far
    out, by concavity).  Newton on ``phi = -_CUT`` started where even the steepest slope
    cannot have fallen ``_CUT`` overshoots past the root, then walks back towards it: every
    iterate after the first lies beyond the root, so the cut never drops anything that
    matters.
    """
    reach = end.astype(float)
    index = np.arange(len(end))
    cut = ~np.isfinite(end)
    check = ~cut & (end > 0)
    cut[check] = phi(index[check], end[check]) < -_CUT
    if cut.any():
        i = index[cut]
        start = np.minimum(_CUT / steepest[cut], end[cut])
        top = np.minimum(end[cut], start + 1e6)
        d = start
        for _ in range(6):
            d = np.clip(d + (phi(i, d) + _CUT) / -slope(i, d), start, top)
        reach[cut] = d
    return reach


def _integrate(
    mode: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    center: np.ndarray | None,
    phi: _Curve,
    slope: _Curve,
    evaluate: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, list[np.ndarray]]],
    steepest_left: np.ndarray,
    steepest_right: np.ndarray,
) -> tuple[np.ndarray, list[np.ndarray]]:
    r"""Integrals of log-concave :math:`e^{\phi(\ell)}` over ``[lo, hi]``, vectorised.

    Each integral has its peak at ``mode`` (``lo <= mode <= hi``, the ends may be
    infinite).  ``phi(i, d)`` and ``slope(i, d)`` give the log-integrand relative to the
    peak and its derivative at ``mode + d`` for integral ``i``; ``evaluate(i, d)`` gives the
    same log-integrand at the quadrature nodes together with the functions whose
    integrand-weighted means are wanted.  ``center`` is where the integrand's nearest
    singularities sit (at ``center +- i*pi``); panels are then uniform in
    ``asinh((l - center) / pi)``, else uniform in ``l`` itself.

    Returns the log of each integral relative to ``exp(phi(mode))`` and the means.
    """
    n = len(mode)
    right = _reach(hi - mode, phi, slope, steepest_right)
    left = _reach(mode - lo, lambda i, d: phi(i, -d), lambda i, d: -slope(i, -d), steepest_left)
    # The two sides of each peak, [0, right] and [-left, 0], where they are not empty.
    has_right, has_left = np.flatnonzero(right > 0), np.flatnonzero(left > 0)
    owner = np.concatenate([has_right, has_left])
    a = np.concatenate([np.zeros(len(has_right)), -left[has_left]])
    b = np.concatenate([right[has_right], np.zeros(len(has_left))])
    far = np.concatenate([right[has_right], -left[has_left]])
    # |dphi/dl| is largest at the far end of each side (concavity); +1 covers the means'
    # factors 1/(alpha + tau), whose log falls with slope at most 1.
    steep = np.abs(slope(owner, far)) + 1.0
    if center is None:
        ua, ub, stretch, panel = a, b, 1.0, _PANEL_PLAIN
    else:
        shift = (center - mode)[owner]
        ua, ub = np.arcsinh((a - shift) / np.pi), np.arcsinh((b - shift) / np.pi)
        stretch = np.pi * np.cosh(np.maximum(np.abs(ua), np.abs(ub)))
        panel = _PANEL_MAPPED
    width = ub - ua
    need = np.maximum(width / panel, steep * stretch * width / _PANEL_FALL)
    count = np.clip(np.ceil(need), 1, _MAX_PANELS).astype(np.int64)
    # Panel edges are uniform in the mapped variable, nodes linear in l between them.
    side = np.repeat(np.arange(len(owner)), count)
    j = np.arange(len(side)) - np.repeat(np.cumsum(count) - count, count)
    step = width[side] / count[side]
    u_lo = ua[side] + step * j
    if center is None:
        e_lo, e_hi = u_lo, u_lo + step
    else:
        e_lo = shift[side] + np.pi * np.sinh(u_lo)
        e_hi = shift[side] + np.pi * np.sinh(u_lo + step)
    e_lo = np.where(j == 0, a[side], e_lo)
    e_hi = np.where(j == count[side] - 1, b[side], e_hi)
    mid, half = (e_lo + e_hi) / 2, (e_hi - e_lo) / 2
    size = (need / count)[side]
    rule = np.searchsorted([limit for limit, _, _ in _RULES[:-1]], size)
    who = owner[side]
    total = np.zeros(n)
    sums: list[np.ndarray] = []
    for k, (_, nodes, log_weights) in enumerate(_RULES):
        pick = rule == k
        if not pick.any():
            continue
        w = who[pick]
        d = mid[pick][:, None] + half[pick][:, None] * nodes
        values, extras = evaluate(w[:, None], d)
        mass = np.exp(values + np.log(half[pick])[:, None] + log_weights)
        total += np.bincount(w, weights=mass.sum(axis=1), minlength=n)
        part = [np.bincount(w, weights=(mass * g).sum(axis=1), minlength=n) for g in extras]
        sums = part if not sums else [s + q for s, q in zip(sums, part, strict=True)]
    means = [s / total for s in sums]
    return np.log(total), means


def _pairs(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (x, t) sorted by x then t, and for each row the index of its pair."""
    order = np.lexsort((t, x))
    xs, ts = x[order], t[order]
    new = np.empty(len(xs), dtype=bool)
    new[:1] = True
    new[1:] = (xs[1:] != xs[:-1]) | (ts[1:] != ts[:-1])
    index = np.empty(len(xs), dtype=np.int64)
    index[order] = np.cumsum(new) - 1
    return xs[new], ts[new], index


@dataclass(frozen=True)
class _Chains:
    """Distinct (x, t) pairs, each the start of a segment reaching to the next t of its x.

    A chain is the pairs of one ``x``; its last segment reaches to infinity.  The tail
    integral at a pair is the sum of its chain's segments from there on, accumulated over
    ``blocks``: padded matrices, one per range of chain lengths so padding stays under
    half, each row a chain from its last pair back to its first.  A block is its shape,
    the flat positions of its real cells and the pair in each.  ``starts`` is where each
    chain begins and ``chain`` each pair's chain.
    """

    x: np.ndarray
    t: np.ndarray
    t_next: np.ndarray
    blocks: tuple[tuple[tuple[int, int], np.ndarray, np.ndarray], ...]
    starts: np.ndarray
    chain: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, t: np.ndarray) -> tuple[_Chains, np.ndarray]:
        """The chains of the pairs in ``(x, t)`` and, per row, the index of its pair."""
        px, pt, index = _pairs(x, t)
        if len(px) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(px, pt, pt.copy(), (), empty, empty), index
        same = np.zeros(len(px), dtype=bool)
        same[:-1] = px[1:] == px[:-1]
        t_next = np.where(same, np.append(pt[1:], np.inf), np.inf)
        starts = np.flatnonzero(np.append(True, px[1:] != px[:-1]))
        lengths = np.diff(np.append(starts, len(px)))
        group = np.ceil(np.log2(lengths)).astype(np.int64)
        blocks = []
        for g in np.unique(group):
            rows = group == g
            first, length = starts[rows], lengths[rows]
            cols = np.arange(length.max())
            block = (first + length - 1)[:, None] - cols
            cells = np.flatnonzero(cols < length[:, None])
            blocks.append((block.shape, cells, block.ravel()[cells]))
        chain = np.repeat(np.arange(len(starts)), lengths)
        return cls(px, pt, t_next, tuple(blocks), starts, chain), index


def _accumulate(chains: _Chains, logs: np.ndarray) -> np.ndarray:
    """Per pair, the log of the sum of ``exp(logs)`` over its segment and all later ones.

    ``logs`` are shifted so each chain peaks near 0; sums of ``exp`` are then exact to
    rounding unless a term falls below ``exp(-700)``, and the rows where one does are
    summed with ``logaddexp`` instead (slower, never underflows).
    """
    out = np.empty_like(logs)
    q = len(logs)
    for (rows, width), cells, pairs in chains.blocks:
        stacked = np.full((q, rows * width), -np.inf)
        stacked[:, cells] = logs[:, pairs]
        stacked = stacked.reshape(q, rows, width)
        low = stacked < -700  # exp would underflow, and slowly: those rows are redone
        with np.errstate(divide="ignore"):
            acc = np.log(np.cumsum(np.exp(np.where(low, -np.inf, stacked)), axis=2))
        deep = (low & (stacked > -np.inf)).any(axis=(0, 2))
        if deep.any():
            acc[:, deep] = np.logaddexp.accumulate(stacked[:, deep], axis=2)
        out[:, pairs] = acc.reshape(q, -1)[:, cells]
    return out


def _segments(chains: _Chains, r, alpha, s, beta, p_extra, q_extra, means: bool):
    r"""Log of :math:`\int (\alpha+\tau)^{-p}(\beta+\tau)^{-q} d\tau` over each segment.

    With ``p = r + x + p_extra`` and ``q = s + q_extra``; ``means`` adds, per segment, the
    integrand-weighted means of :math:`\log(\alpha+\tau)`, :math:`1/(\alpha+\tau)`,
    :math:`\log(\beta+\tau)`, :math:`1/(\beta+\tau)`: the gradient's ingredients.
    """
    p = r + chains.x + p_extra
    q = np.full_like(p, s + q_extra)
    alpha_small = alpha <= beta
    e_small, e_big = (p, q) if alpha_small else (q, p)
    gap = abs(alpha - beta)
    corner = np.log(gap) if gap > 0 else -np.inf
    low = min(alpha, beta)
    start = np.log(low + chains.t)
    stop = np.log(low + chains.t_next)
    kappa = 1.0 - e_small
    falls = p + q - 1.0  # the slope far out is -(p + q - 1) < 0
    rising = (kappa > 0) & (gap > 0)
    peak = np.full_like(p, -np.inf)
    peak[rising] = corner + np.log(kappa[rising] / falls[rising])
    mode = np.clip(peak, start, stop)
    big0 = np.logaddexp(mode, corner)
    top = kappa * mode - e_big * big0

    def phi(i, d):
        return kappa[i] * d - e_big[i] * (np.logaddexp(mode[i] + d, corner) - big0[i])

    def slope(i, d):
        return kappa[i] - e_big[i] * special.expit(mode[i] + d - corner)

    def evaluate(i, d):
        small = mode[i] + d
        big = np.logaddexp(small, corner)
        values = kappa[i] * d - e_big[i] * (big - big0[i])
        if not means:
            return values, []
        if alpha_small:
            return values, [small, np.exp(-small), big, np.exp(-big)]
        return values, [big, np.exp(-big), small, np.exp(-small)]

    center = np.full_like(p, corner) if gap > 0 else None
    log_rel, found = _integrate(
        mode, start, stop, center, phi, slope, evaluate, np.where(rising, kappa, 1.0), falls
    )
    return top + log_rel, np.array(found)


def _tails(chains: _Chains, r, alpha, s, beta, p_extra, q_extra, means: bool = True):
    r"""Per pair: :math:`\log F_{p,q}(t)` and, with ``means``, the four means over the tail.

    Segments are summed from the chain's end backwards in log space, so tails far below
    their chain's first never underflow; the means are carried as sums of positive and
    negative parts.
    """
    log_s, found = _segments(chains, r, alpha, s, beta, p_extra, q_extra, means)
    if len(log_s) == 0:
        return log_s, found
    # Each chain is shifted by its largest segment first: logs of tails reach -1e9 when
    # r and alpha run off together, and sums and differences of such numbers keep only
    # seven digits.
    shift = np.maximum.reduceat(log_s, chains.starts)[chains.chain]
    log_s = log_s - shift
    if not means:
        return _accumulate(chains, log_s[None])[0] + shift, None
    with np.errstate(divide="ignore"):
        parts = np.vstack(
            [
                log_s[None],
                log_s + np.log(np.maximum(found, 0.0)),
                log_s + np.log(np.maximum(-found[[0, 2]], 0.0)),
            ]
        )
    acc = _accumulate(chains, parts)
    mean = np.exp(acc[1:5] - acc[0])
    mean[[0, 2]] -= np.exp(acc[5:7] - acc[0])
    return acc[0] + shift, mean


def _pnbd_objective(h: Histories) -> Objective:
    r"""Log-likelihood summed over histories, and its gradient in log space.

    Each history's bracket is ``s F(x, t_x) + (r + x) G(x, T)`` (module docstring), and
    its two terms' shares :math:`\pi_1 + \pi_2 = 1` weight their tails' derivatives.
    The gradient is written so that the large terms cancel on paper, not in floating
    point: with :math:`\pi`'s adding to 1, :math:`r\log\alpha` meets the tails'
    :math:`E[\log(\alpha+\tau)]` as :math:`E[\log(\alpha+\tau)] - \log\alpha` and
    :math:`\alpha E[1/(\alpha+\tau)]` enters as :math:`1 - E[\tau/(\alpha+\tau)]`,
    which keeps it exact when the parameters run off together (``r``, ``alpha`` ->
    infinity at a fixed ratio is the Poisson limit).  Per-tail terms are summed with the
    histories' weights folded in first, so the work per history is a handful of array
    operations.
    """
    w = h.weights
    total = float(w.sum())
    dead, dead_of = _Chains.of(h.x, h.t_x)
    alive, alive_of = _Chains.of(h.x, h.T)
    xu, x_of = h.fx.values, h.fx.index
    w_x = np.bincount(x_of, weights=w, minlength=len(xu))
    purchases = dot(w_x, xu)

    def objective(phi: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, s, beta = np.exp(phi)
        log_alpha, log_beta = np.log(alpha), np.log(beta)
        log_f, ef = _tails(dead, r, alpha, s, beta, 0.0, 1.0)
        log_g, eg = _tails(alive, r, alpha, s, beta, 1.0, 0.0)
        died = np.log(s) + log_f[dead_of]
        lives = np.log(r + xu)[x_of] + log_g[alive_of]
        log_b = np.logaddexp(died, lives)
        ll = (
            dot(w_x, special.gammaln(r + xu))
            + total * (r * log_alpha + s * log_beta - special.gammaln(r))
            + dot(w, log_b)
        )
        w1 = np.bincount(dead_of, weights=w * special.expit(died - lives), minlength=len(dead.x))
        w2 = np.bincount(alive_of, weights=w * special.expit(lives - died), minlength=len(alive.x))
        d_r = r * (
            dot(w_x, special.digamma(r + xu) - special.digamma(r))
            - dot(w1, ef[0] - log_alpha)
            - dot(w2, eg[0] - log_alpha - 1.0 / (r + alive.x))
        )
        d_alpha = (
            -purchases
            - w2.sum()
            + dot(w1, (r + dead.x) * (1.0 - alpha * ef[1]))
            + dot(w2, (r + alive.x + 1) * (1.0 - alpha * eg[1]))
        )
        d_s = w1.sum() - s * (dot(w1, ef[2] - log_beta) + dot(w2, eg[2] - log_beta))
        d_beta = -w1.sum() + (s + 1) * dot(w1, 1.0 - beta * ef[3]) + s * dot(w2, 1.0 - beta * eg[3])
        return float(ll), np.array([d_r, d_alpha, d_s, d_beta])

    return objective


def _growth(c: float, z: np.ndarray) -> np.ndarray:
    r""":math:`(1 - e^{-cz}) / c`, and its limit :math:`z` at :math:`c = 0`."""
    if c == 0:
        return z
    return -np.expm1(-c * z) / c


class ParetoNBD(HistoryModel):
    """The Pareto/NBD model of repeat purchasing.

    Four parameters need more data than BG/NBD's to pin down: on a handful of customers
    the death rate's shape ``s`` typically runs off to zero (a :class:`ConvergenceError`).

    Examples
    --------
    The CDNOW sample of Fader, Hardie & Lee (2005), in weeks:

    >>> import patron
    >>> from patron.models import ParetoNBD
    >>> cdnow = patron.summarize(patron.datasets.cdnow(sample=True), as_of="1997-09-30")
    >>> model = ParetoNBD().fit_summary(cdnow)
    >>> {name: round(value, 3) for name, value in model.params_.items()}
    {'r': 0.553, 'alpha': 10.578, 's': 0.606, 'beta': 11.669}
    >>> round(model.probability_alive(frequency=2, recency=30.43, T=38.86), 3)
    0.869
    """

    _param_names = ("r", "alpha", "s", "beta")

    def _objective(self, histories: Histories) -> Objective:
        return _pnbd_objective(histories)

    def _starts(self, histories: Histories) -> list[np.ndarray]:
        w = histories.weights
        rate = np.average(histories.x / np.maximum(histories.T, 1e-9), weights=w)
        span = np.average(histories.T, weights=w)
        return [np.array([1.0, 1.0 / max(rate, 1e-6), 1.0, max(span, 1e-6)]), np.ones(4)]

    def expected_purchases(self, t: Any) -> Any:
        r"""Expected repeat purchases of a new customer in ``(0, t]`` (note, section 4).

        Each customer buys at rate :math:`\lambda` for :math:`\min(\omega, t)`; averaging
        over :math:`\lambda`, :math:`\mu` and :math:`\omega` gives

        .. math:: E[X(t)] = \frac{r\beta}{\alpha(s-1)}
                  \Big[1 - \Big(\frac{\beta}{\beta+t}\Big)^{s-1}\Big],

        whose :math:`s = 1` limit :math:`\frac{r\beta}{\alpha}\log(1 + t/\beta)` is taken
        through ``expm1`` so no value of ``s`` divides by zero.
        """
        r, alpha, s, beta = self._check_fitted()
        (t,) = as_float(t)
        return scalar(r / alpha * beta * _growth(s - 1, np.log1p(t / beta)))

    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> Any:
        r"""Expected purchases in ``(T, T + t]`` given a customer's history (note, section 6).

        Alive at ``T`` with probability :math:`P(\text{alive})`, a customer's posterior
        rates are :math:`\mathrm{Gamma}(r+x, \alpha+T)` and
        :math:`\mathrm{Gamma}(s, \beta+T)`, so the new-customer expectation applies with
        those parameters:

        .. math:: E[Y(t) \mid x, t_x, T] = P(\text{alive} \mid x, t_x, T)\,
                  \frac{(r+x)(\beta+T)}{(\alpha+T)(s-1)}
                  \Big[1 - \Big(\frac{\beta+T}{\beta+T+t}\Big)^{s-1}\Big].
        """
        r, alpha, s, beta = self._check_fitted()
        t, x, t_x, T = as_float(t, frequency, recency, T)
        alive = self._p_alive(r, alpha, s, beta, x, t_x, T)
        rate = (r + x) / (alpha + T) * (beta + T)
        return scalar(alive * rate * _growth(s - 1, np.log1p(t / (beta + T))))

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        r"""P(alive at T | x, t_x, T): the "alive at T" share of the likelihood (note, sec. 5).

        .. math:: P(\Omega > T \mid x, t_x, T) =
                  \frac{(\alpha+T)^{-(r+x)}(\beta+T)^{-s}}
                  {s\,F_{r+x,\,s+1}(t_x) + (r+x)\,F_{r+x+1,\,s}(T)}

        where the denominator is the likelihood's bracket, written as tail integrals
        (module docstring) so that it is a sum of positive terms; it is exactly 1 when
        the last purchase was at ``T``.
        """
        r, alpha, s, beta = self._check_fitted()
        x, t_x, T = as_float(frequency, recency, T)
        return scalar(self._p_alive(r, alpha, s, beta, x, t_x, T))

    @staticmethod
    def _p_alive(r, alpha, s, beta, x, t_x, T) -> np.ndarray:
        shape = x.shape
        x, t_x, T = (np.ravel(v) for v in (x, t_x, T))
        dead, dead_of = _Chains.of(x, t_x)
        alive, alive_of = _Chains.of(x, T)
        log_f, _ = _tails(dead, r, alpha, s, beta, 0.0, 1.0, means=False)
        log_g, _ = _tails(alive, r, alpha, s, beta, 1.0, 0.0, means=False)
        log_b = np.logaddexp(np.log(s) + log_f[dead_of], np.log(r + x) + log_g[alive_of])
        log_a = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        p = np.where(t_x >= T, 1.0, np.minimum(np.exp(log_a - log_b), 1.0))
        return p.reshape(shape)

    def probability_of_purchases(self, t: Any, n: Any) -> Any:
        r"""P(X(t) = n): a new customer makes exactly ``n`` repeat purchases by ``t``.

        Fader & Hardie (2006), sections 3-4: alive throughout, the count is negative
        binomial over ``t``; dead at :math:`\tau < t`, it is negative binomial over
        :math:`\tau`, weighted by the Pareto (Lomax) density of :math:`\tau`:

        .. math:: P(X(t)=n) = \mathrm{NBD}(n; r, \alpha, t)\Big(\frac{\beta}{\beta+t}\Big)^s
                  + \int_0^t \mathrm{NBD}(n; r, \alpha, \tau)\,
                  \frac{s\beta^s}{(\beta+\tau)^{s+1}}\,d\tau,

        with :math:`\mathrm{NBD}(n; r, \alpha, \tau) = \frac{\Gamma(r+n)}{\Gamma(r)\,n!}
        (\frac{\alpha}{\alpha+\tau})^r (\frac{\tau}{\alpha+\tau})^n`.  The integral is
        computed by the module's quadrature in :math:`\log\tau`, where its log-integrand is
        concave with a peak found in closed form, so no hypergeometric function is needed
        and the probabilities over ``n`` sum to 1 to rounding.
        """
        r, alpha, s, beta = self._check_fitted()
        t, n = as_float(t, n)
        shape = t.shape
        t, n = np.ravel(t), np.ravel(n)
        log_c = special.gammaln(r + n) - special.gammaln(r) - special.gammaln(n + 1)
        stay = log_c - r * np.log1p(t / alpha) - s * np.log1p(t / beta)
        stay = stay + special.xlogy(n, t / (alpha + t))
        died = np.full_like(t, -np.inf)
        some = t > 0
        if some.any():
            died[some] = log_c[some] + self._log_died(r, alpha, s, beta, t[some], n[some])
        return scalar((np.exp(stay) + np.exp(died)).reshape(shape))

    @staticmethod
    def _log_died(r, alpha, s, beta, t, n) -> np.ndarray:
        r"""Log of :math:`s\beta^s\alpha^r\int_0^t u^n(\alpha+u)^{-(r+n)}(\beta+u)^{-(s+1)}du`.

        In :math:`\ell = \log u` the log-integrand :math:`(n+1)\ell - (r+n)\log(\alpha +
        e^\ell) - (s+1)\log(\beta + e^\ell)` is concave; its peak solves a quadratic in
        :math:`e^\ell`, taken in the form that does not cancel.
        """
        la, lb = np.log(alpha), np.log(beta)
        k, e1, e2 = n + 1.0, r + n, s + 1.0
        lin = k * (alpha + beta) - e1 * beta - e2 * alpha
        const = k * alpha * beta
        root = np.sqrt(lin**2 + 4 * (r + s) * const)
        with np.errstate(divide="ignore"):
            peak = np.where(lin >= 0, (lin + root) / (2 * (r + s)), 2 * const / (root - lin))
        mode = np.minimum(np.log(peak), np.log(t))
        a0, b0 = np.logaddexp(mode, la), np.logaddexp(mode, lb)

        def phi(i, d):
            at = mode[i] + d
            return (
                k[i] * d
                - e1[i] * (np.logaddexp(at, la) - a0[i])
                - e2 * (np.logaddexp(at, lb) - b0[i])
            )

        def slope(i, d):
            at = mode[i] + d
            return k[i] - e1[i] * special.expit(at - la) - e2 * special.expit(at - lb)

        log_rel, _ = _integrate(
            mode,
            np.full_like(mode, -np.inf),
            np.log(t),
            None,
            phi,
            slope,
            lambda i, d: (phi(i, d), []),
            k,
            np.full_like(mode, r + s),
        )
        top = k * mode - e1 * a0 - e2 * b0
        return np.log(s) + s * lb + r * la + top + log_rel

    def simulate(self, n_customers: int, T: Any, seed: int | None = None):
        """Draw ``n_customers`` histories from the fitted model, observed for ``T`` each.

        A customer buys at rate ``lambda_`` until they die after an exponential lifetime
        with rate ``mu_``, so purchases are observed over ``min(lifetime, T)``.  Given
        ``x`` Poisson events in a window of that length, the last is at ``window *
        Beta(x, 1)`` (the largest of ``x`` uniforms): no event times need be drawn.
        Returns an Arrow table with ``frequency``, ``recency``, ``T``, ``lambda_`` and
        ``mu_``, which :meth:`fit_summary` accepts.
        """
        import pyarrow as pa

        r, alpha, s, beta = self._check_fitted()
        rng = np.random.default_rng(seed)
        lam = rng.gamma(r, 1.0 / alpha, n_customers)
        mu = rng.gamma(s, 1.0 / beta, n_customers)
        T = np.broadcast_to(np.asarray(T, dtype=np.float64), (n_customers,)).copy()
        with np.errstate(divide="ignore"):
            lifetime = rng.standard_exponential(n_customers) / mu
        window = np.minimum(lifetime, T)
        x = rng.poisson(lam * window)
        t_x = np.where(x > 0, window * rng.beta(np.maximum(x, 1), 1.0), 0.0)
        return pa.table(
            {"frequency": x.astype(np.float64), "recency": t_x, "T": T, "lambda_": lam, "mu_": mu}
        )
