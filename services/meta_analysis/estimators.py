"""Between-study variance estimators for the random-effects model, fitted on many subsets at once.

A *subset* is a row of a 0/1 mask over the k studies (one row for an ordinary fit; k rows for
leave-one-out or a cumulative analysis). All estimators work on every row together with numpy, so
leave-one-out and cumulative analyses cost a few passes over a k × k array instead of k Python fits.

- ``DL`` DerSimonian–Laird (closed form, truncated at 0).
- ``PM`` Paule–Mandel: the generalised Q equals k − 1.
- ``ML`` / ``REML``: zero of the score of the (restricted) log-likelihood.

The iterative estimators solve their estimating equation with a safeguarded Newton method (a
bracket is kept and bisection used when a Newton step leaves it) to a relative tolerance of 1e-12;
a row that does not converge is reported through ``converged`` (the caller falls back to DL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.meta_analysis.errors import UnknownOption

FloatArray = NDArray[np.float64]
ESTIMATORS: tuple[str, ...] = ("REML", "DL", "PM", "ML")
_MAX_ITER = 200
_RTOL = 1e-12
_CHUNK_ELEMENTS = 1_000_000


def normalise_method(name: str) -> str:
    """Return the canonical estimator name (case-insensitive)."""
    upper = name.upper()
    if upper not in ESTIMATORS:
        raise UnknownOption("method", name, ESTIMATORS)
    return upper


@dataclass(frozen=True)
class RowFits:
    """Random-effects fits of each subset: arrays with one entry per row of the mask."""

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


def _score(
    method: str, y: FloatArray, v: FloatArray, m: FloatArray
) -> Callable[[FloatArray, NDArray[np.intp]], tuple[FloatArray, FloatArray]]:
    """Estimating equation f(t) (decreasing at its root) and f'(t) for the rows ``idx``."""

    def f(t: FloatArray, idx: NDArray[np.intp]) -> tuple[FloatArray, FloatArray]:
        mm = m[idx]
        w = mm / (v[None, :] + t[:, None])
        sw = w.sum(axis=1)
        mu = (w * y[None, :]).sum(axis=1) / sw
        r = y[None, :] - mu[:, None]
        w2 = w * w
        w2r = w2 * r
        s_w2r2 = (w2r * r).sum(axis=1)
        if method == "PM":
            k = mm.sum(axis=1)
            return (w * r * r).sum(axis=1) - (k - 1.0), -s_w2r2
        s_w2 = w2.sum(axis=1)
        s_w3r2 = (w2r * r * w).sum(axis=1)
        s_w2r = w2r.sum(axis=1)
        value = s_w2r2 - sw
        slope = -2.0 * s_w3r2 + 2.0 * s_w2r**2 / sw + s_w2
        if method == "REML":
            s_w3 = (w2 * w).sum(axis=1)
            value = value + s_w2 / sw
            slope = slope - 2.0 * s_w3 / sw + (s_w2 / sw) ** 2
        return value, slope

    return f


def _solve(
    f: Callable[[FloatArray, NDArray[np.intp]], tuple[FloatArray, FloatArray]],
    start: FloatArray,
    upper: FloatArray,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Safeguarded Newton on every row: root of f in [0, ∞), or 0 when f(0) ≤ 0."""
    rows = np.arange(start.size)
    t = np.zeros(start.size)
    converged = np.ones(start.size, dtype=bool)
    f0, _ = f(np.zeros(start.size), rows)
    active = rows[f0 > 0]
    lo = np.zeros(start.size)
    hi = upper.copy()
    for _ in range(60):  # widen the bracket until f(hi) < 0
        fh, _ = f(hi[active], active)
        grow = active[fh > 0]
        if grow.size == 0:
            break
        lo[grow] = hi[grow]
        hi[grow] *= 4.0
    t[active] = np.clip(start[active], lo[active], hi[active])
    for _ in range(_MAX_ITER):
        if active.size == 0:
            break
        ta = t[active]
        val, slope = f(ta, active)
        positive = val > 0
        lo[active] = np.where(positive, ta, lo[active])
        hi[active] = np.where(positive, hi[active], ta)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = ta - val / slope
        tiny = _RTOL * np.maximum(ta, 1e-8)
        done = (val == 0) | (np.isfinite(step) & (slope < 0) & (np.abs(step - ta) <= tiny))
        bad = ~np.isfinite(step) | (step <= lo[active]) | (step >= hi[active]) | (slope >= 0)
        new = np.where(done, np.maximum(step, 0.0), step)
        new = np.where(bad & ~done, 0.5 * (lo[active] + hi[active]), new)
        t[active] = new
        active = active[~done]
    converged[active] = False
    return t, converged


def _dl(y: FloatArray, v: FloatArray, m: FloatArray) -> FloatArray:
    w = m / v[None, :]
    sw = w.sum(axis=1)
    mu = (w * y[None, :]).sum(axis=1) / sw
    q = (w * (y[None, :] - mu[:, None]) ** 2).sum(axis=1)
    c = sw - (w * w).sum(axis=1) / sw
    k = m.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau2 = np.where(c > 0, (q - (k - 1.0)) / c, 0.0)
    return np.asarray(np.maximum(tau2, 0.0), dtype=float)


def _tau2_rows(
    method: str, y: FloatArray, v: FloatArray, m: FloatArray, start: FloatArray | None
) -> tuple[FloatArray, NDArray[np.bool_]]:
    dl = _dl(y, v, m)
    if method == "DL":
        return dl, np.ones(dl.size, dtype=bool)
    k = m.sum(axis=1)
    ybar = (m * y[None, :]).sum(axis=1) / k
    spread = (m * (y[None, :] - ybar[:, None]) ** 2).sum(axis=1)
    upper = np.maximum(np.maximum(spread / np.maximum(k - 1.0, 1.0), v.max()), 1e-8)
    initial = dl if start is None else start
    return _solve(_score(method, y, v, m), initial, upper)


def _summaries(
    y: FloatArray, v: FloatArray, m: FloatArray, tau2: FloatArray, converged: NDArray[np.bool_]
) -> RowFits:
    k = m.sum(axis=1)
    w = m / (v[None, :] + tau2[:, None])
    sw = w.sum(axis=1)
    mu = (w * y[None, :]).sum(axis=1) / sw
    rss = (w * (y[None, :] - mu[:, None]) ** 2).sum(axis=1)
    w0 = m / v[None, :]
    sw0 = w0.sum(axis=1)
    mu_fe = (w0 * y[None, :]).sum(axis=1) / sw0
    q = (w0 * (y[None, :] - mu_fe[:, None]) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = (k - 1.0) * sw0 / (sw0**2 - (w0 * w0).sum(axis=1))
        se_knha = np.sqrt(rss / (k - 1.0) / sw)
    return RowFits(
        k=k,
        tau2=tau2,
        mu=mu,
        se=np.sqrt(1.0 / sw),
        se_knha=se_knha,
        q=q,
        mu_fe=mu_fe,
        se_fe=np.sqrt(1.0 / sw0),
        s2_typical=s2,
        converged=converged,
    )


def fit_rows(
    y: FloatArray, v: FloatArray, mask: FloatArray, method: str, start: FloatArray | None = None
) -> RowFits:
    """Fit the random-effects model on every row of ``mask`` (rows × k, 0/1) with ``method``.

    ``start`` gives starting values of tau² per row (e.g. the full-data estimate for
    leave-one-out). Rows are processed in chunks to bound memory. Rows that did not converge keep
    their last iterate and are flagged in ``converged``.
    """
    method = normalise_method(method)
    step = max(1, _CHUNK_ELEMENTS // max(1, y.size))
    parts: list[RowFits] = []
    for first in range(0, mask.shape[0], step):
        m = mask[first : first + step]
        s = None if start is None else start[first : first + step]
        tau2, ok = _tau2_rows(method, y, v, m, s)
        parts.append(_summaries(y, v, m, tau2, ok))
    fields = RowFits.__dataclass_fields__
    joined = {name: np.concatenate([getattr(p, name) for p in parts]) for name in fields}
    return RowFits(**joined)
