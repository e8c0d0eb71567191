"""Between-study variance estimators for the random-effects model, fitted on many subsets at once.

Subsets (``kind``): ``all`` (one row: every study), ``loo`` (row j leaves study j out) and
``cumulative`` (row j holds studies 0..j). Every estimator works on all rows together: the sums
Σ wⁿ yᵇ (w = 1/(v + tau²_row)) of all rows come from one matrix product per pass, leave-one-out
subtracts each row's own study, the cumulative rows keep the lower triangle, and sums at tau² = 0
are running totals (O(k)). y is centred first, which keeps the expanded sums accurate.

- ``DL`` DerSimonian–Laird (closed form, truncated at 0).
- ``PM`` Paule–Mandel: the generalised Q equals k − 1.
- ``ML`` / ``REML``: the global maximum of the (restricted) log-likelihood on [0, ∞): a profile
  grid brackets it (see :mod:`.likelihood`), then the score's root in that bracket.

The iterative estimators solve their equation by a safeguarded Newton method (a bracket is kept;
bisection or doubling when a step leaves it) to 1e-12 relative; rows that do not converge are
flagged in ``converged`` (the caller falls back to DL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from services.meta_analysis.errors import UnknownOption
from services.meta_analysis.likelihood import brackets, profile_on_grid, tau2_grid

FloatArray = NDArray[np.float64]
ESTIMATORS: tuple[str, ...] = ("REML", "DL", "PM", "ML")
SUBSETS: tuple[str, ...] = ("all", "loo", "cumulative")
_MAX_ITER = 200
_RTOL = 1e-12
_CHUNK_ELEMENTS = 1_000_000
_TERMS = 40
_BINOM = np.array(
    [[math.comb(n + m - 1, m) for m in range(_TERMS)] for n in (1, 2, 3)], dtype=float
)


def normalise_method(name: str) -> str:
    """Return the canonical estimator name (case-insensitive)."""
    upper = name.upper()
    if upper not in ESTIMATORS:
        raise UnknownOption("method", name, ESTIMATORS)
    return upper


@dataclass(frozen=True)
class RowFits:
    """Random-effects fits of each subset: arrays with one entry per row."""

    k: FloatArray
    tau2: FloatArray
    mu: FloatArray
    se: FloatArray
    se_knha: FloatArray
    q: FloatArray
    mu_fe: FloatArray
    se_fe: FloatArray
    s2_typical: FloatArray
    converged: NDArray[np.bool_]


class _Subsets:
    """Sums Σ wⁿ yᵇ over the studies of each row, for one tau² per row.

    Leave-one-out and cumulative rows whose tau² is near ``center`` use the power series of
    1/(v + t) around it (|t − center| · max w ≤ 0.3, 40 terms: error below 1e-18 relative);
    other rows are summed exactly, in chunks.
    """

    def __init__(self, y: FloatArray, v: FloatArray, kind: str, center: float) -> None:
        self.kind, self.y, self.v, self.center = kind, y, v, center
        self.n_rows = 1 if kind == "all" else y.size
        self.rows = np.arange(self.n_rows)
        self.powers = np.stack([np.ones(y.size), y, y * y], axis=1)
        self.k = {
            "all": np.full(1, float(y.size)),
            "loo": np.full(y.size, y.size - 1.0),
            "cumulative": self.rows + 1.0,
        }[kind]
        if kind != "all":
            w0 = 1.0 / (v + center)
            self.wmax = float(w0.max())
            scaled = (w0 / self.wmax)[:, None] ** np.arange(1, 4 + _TERMS)[None, :]
            moments = scaled[:, :, None] * self.powers[:, None, :]  # (k, p, b)
            self.moments = np.cumsum(moments, axis=0) if kind == "cumulative" else moments.sum(0)

    def sums(self, t: FloatArray, sel: NDArray[np.intp]) -> FloatArray:
        """Array (rows, 3, 3): [n-1, b] = Σ wⁿ yᵇ for n = 1..3, b = 0..2, rows ``sel``."""
        out = np.empty((sel.size, 3, 3))
        near = np.zeros(sel.size, dtype=bool)
        if self.kind != "all":
            rho = (t - self.center) * self.wmax
            near = np.abs(rho) <= 0.3
            if near.any():
                out[near] = self._series(rho[near], sel[near])
        far = np.flatnonzero(~near)
        step = max(1, _CHUNK_ELEMENTS // max(1, self.y.size))
        for first in range(0, far.size, step):
            part = far[first : first + step]
            out[part] = self._exact(t[part], sel[part])
        if self.kind == "loo":
            own = 1.0 / (self.v[sel] + t)
            own_n = np.stack([own, own**2, own**3], axis=1)
            out -= own_n[:, :, None] * self.powers[sel][:, None, :]
        return out

    def _series(self, rho: FloatArray, sel: NDArray[np.intp]) -> FloatArray:
        m = np.arange(_TERMS)
        alt = (-rho)[:, None] ** m[None, :]  # (rows, m)
        moments = self.moments[sel] if self.kind == "cumulative" else self.moments[None]
        out = np.empty((sel.size, 3, 3))
        for n in (1, 2, 3):
            coef = alt * _BINOM[n - 1][None, :]  # C(n+m-1, m) (-rho)^m
            block = moments[:, n - 1 : n - 1 + _TERMS, :]
            out[:, n - 1, :] = (
                np.einsum("rm,rmb->rb", coef, np.broadcast_to(block, (sel.size, *block.shape[1:])))
                * self.wmax**n
            )
        return out

    def _exact(self, t: FloatArray, sel: NDArray[np.intp]) -> FloatArray:
        width = int(sel.max()) + 1 if self.kind == "cumulative" else self.y.size
        w = 1.0 / (self.v[None, :width] + t[:, None])
        if self.kind == "cumulative":
            w *= np.arange(width)[None, :] <= sel[:, None]
        out = np.empty((sel.size, 3, 3))
        wn = w
        for n in range(3):
            out[:, n, :] = wn @ self.powers[:width]
            if n < 2:
                wn = wn * w
        return out

    def fixed_sums(self) -> FloatArray:
        """Σ wⁿ yᵇ at tau² = 0 for every row, by running totals: (rows, 3, 3)."""
        w = 1.0 / self.v
        terms = np.stack([(w**n)[:, None] * self.powers for n in (1, 2, 3)], axis=1)
        if self.kind == "cumulative":
            return np.asarray(np.cumsum(terms, axis=0), dtype=float)
        total = terms.sum(axis=0)[None]
        if self.kind == "loo":
            return np.asarray(total - terms, dtype=float)
        return np.asarray(total, dtype=float)


def _score(method: str, s: FloatArray, k: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Estimating equation f (decreasing at its root), f', and a scale for f's rounding error."""
    a0, a1, a2 = s[:, 0, 0], s[:, 0, 1], s[:, 0, 2]
    b0, b1, b2 = s[:, 1, 0], s[:, 1, 1], s[:, 1, 2]
    mu = a1 / a0
    w2r2 = b2 - 2.0 * mu * b1 + mu * mu * b0
    if method == "PM":
        return a2 - mu * a1 - (k - 1.0), -w2r2, a2 + k
    c0, c1, c2 = s[:, 2, 0], s[:, 2, 1], s[:, 2, 2]
    w3r2 = c2 - 2.0 * mu * c1 + mu * mu * c0
    w2r = b1 - mu * b0
    value = w2r2 - a0
    slope = -2.0 * w3r2 + 2.0 * w2r * w2r / a0 + b0
    if method == "REML":
        value = value + b0 / a0
        slope = slope - 2.0 * c0 / a0 + (b0 / a0) ** 2
    return value, slope, b2 + a0


def _dl(fixed: FloatArray, k: FloatArray) -> FloatArray:
    a0, a1, a2, b0 = fixed[:, 0, 0], fixed[:, 0, 1], fixed[:, 0, 2], fixed[:, 1, 0]
    q = a2 - a1 * a1 / a0
    c = a0 - b0 / a0
    with np.errstate(divide="ignore", invalid="ignore"):
        tau2 = np.where(c > 0, (q - (k - 1.0)) / c, 0.0)
    return np.asarray(np.maximum(tau2, 0.0), dtype=float)


def _solve(
    sub: _Subsets,
    method: str,
    start: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    active: NDArray[np.intp],
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Safeguarded Newton on the rows ``active``: the root of f in (lo, hi), f(lo) > 0 > f(hi).

    ``hi`` may be infinite (doubling until f < 0). Other rows keep ``start``.
    """
    n = start.size
    t = np.asarray(start, dtype=float).copy()
    lo, hi = lo.copy(), hi.copy()
    converged = np.ones(n, dtype=bool)
    for _ in range(_MAX_ITER):
        if active.size == 0:
            break
        ta = t[active]
        val, slope, scale = _score(method, sub.sums(ta, active), sub.k[active])
        positive = val > 0
        lo[active] = np.where(positive, ta, lo[active])
        hi[active] = np.where(positive, hi[active], ta)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = ta - val / slope
        flat = np.abs(val) <= 64 * np.finfo(float).eps * np.abs(scale)
        close = (
            np.isfinite(step) & (slope < 0) & (np.abs(step - ta) <= _RTOL * np.maximum(ta, 1e-8))
        )
        width = hi[active] - lo[active]
        narrow = np.isfinite(width) & (width <= _RTOL * np.maximum(hi[active], 1e-8))
        done = flat | close | narrow
        bad = ~np.isfinite(step) | (step <= lo[active]) | (step >= hi[active]) | (slope >= 0)
        fallback = np.where(
            np.isfinite(hi[active]), 0.5 * (lo[active] + hi[active]), 2.0 * np.maximum(ta, 1e-4)
        )
        new = np.where(bad, fallback, step)
        t[active] = np.where(done, np.where(close, np.maximum(step, 0.0), ta), new)
        active = active[~done]
    converged[active] = False
    return t, converged


def _likelihood_search(
    sub: _Subsets, y: FloatArray, v: FloatArray, method: str
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Global maximum of the (restricted) likelihood on [0, ∞) for every row (see
    :mod:`.likelihood`): grid bracket, then safeguarded Newton inside the bracket."""
    grid = tau2_grid(y, v)
    if grid.size == 1:
        return np.zeros(sub.n_rows), np.ones(sub.n_rows, dtype=bool)
    ll, score = profile_on_grid(y, v, grid, sub.kind, method, sub.k)
    start, lo, hi, found = brackets(grid, ll, score)
    # Start inside the bracket at the expansion centre when it lies there (leave-one-out and
    # cumulative rows of a large k sit near the all-studies maximum): the cheap series sums.
    inside = found & (lo <= sub.center) & (sub.center <= hi)
    start = np.where(inside, sub.center, start)
    single = sub.k < 2  # one study: tau² is 0 (not estimable), not a search failure
    start, found = np.where(single, 0.0, start), found | single
    active = np.flatnonzero(found & ~single & (hi > lo))
    tau2, converged = _solve(sub, method, start, lo, hi, active)
    converged &= found
    return tau2, converged


def _summaries(
    sub: _Subsets, tau2: FloatArray, fixed: FloatArray, ok: NDArray[np.bool_]
) -> RowFits:
    k = sub.k
    s = sub.sums(tau2, np.arange(tau2.size))
    a0, a1, a2 = s[:, 0, 0], s[:, 0, 1], s[:, 0, 2]
    f0, f1, f2, g0 = fixed[:, 0, 0], fixed[:, 0, 1], fixed[:, 0, 2], fixed[:, 1, 0]
    mu, mu_fe = a1 / a0, f1 / f0
    rss = np.maximum(a2 - mu * a1, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = (k - 1.0) * f0 / (f0 * f0 - g0)
        se_knha = np.sqrt(rss / (k - 1.0) / a0)
    return RowFits(
        k=k,
        tau2=tau2,
        mu=mu,
        se=np.sqrt(1.0 / a0),
        se_knha=se_knha,
        q=np.maximum(f2 - f1 * mu_fe, 0.0),
        mu_fe=mu_fe,
        se_fe=np.sqrt(1.0 / f0),
        s2_typical=s2,
        converged=ok,
    )


def fit_rows(
    y: FloatArray,
    v: FloatArray,
    kind: str,
    method: str,
    start: FloatArray | None = None,
    center: float | None = None,
) -> RowFits:
    """Fit the random-effects model with ``method`` on every subset of ``kind`` (see module doc).

    ``start`` gives starting values of tau² per row (default: DL); ``center`` the tau² around
    which leave-one-out/cumulative sums are expanded (default: the all-studies estimate).
    """
    method = normalise_method(method)
    if kind not in SUBSETS:
        raise UnknownOption("subsets", kind, SUBSETS)
    w = 1.0 / v
    centre = float(np.sum(w * y) / np.sum(w))
    yc = np.asarray(y, dtype=float) - centre
    if center is None:
        center = 0.0 if kind == "all" else float(fit_rows(y, v, "all", method).tau2[0])
    sub = _Subsets(yc, v, kind, center)
    fixed = sub.fixed_sums()
    dl = _dl(fixed, sub.k)
    if method == "DL":
        tau2, ok = dl, np.ones(dl.size, dtype=bool)
    elif method == "PM":
        f0 = _score(method, fixed, sub.k)[0]
        first = np.maximum(dl if start is None else start, 0.0)
        active = np.flatnonzero(f0 > 0)
        first = np.where(f0 > 0, first, 0.0)
        infinite = np.full(dl.size, np.inf)
        tau2, ok = _solve(sub, method, first, np.zeros(dl.size), infinite, active)
    else:
        tau2, ok = _likelihood_search(sub, yc, v, method)
    fits = _summaries(sub, tau2, fixed, ok)
    return replace(fits, mu=fits.mu + centre, mu_fe=fits.mu_fe + centre)
