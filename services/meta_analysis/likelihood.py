"""Profile log-likelihood of tau² for ML and REML, and the grid that brackets its global maximum.

The (restricted) log-likelihood of the random-effects model need not be unimodal in tau²: with
one dominant study or few studies it can fall from tau² = 0 before it rises to a much higher
interior maximum (the score at 0 is negative, yet 0 is only a local maximum). A root-finder
started at 0 or at a moment estimate then stops at the wrong place. So the search first scans
the profile on a grid over [0, T], log-spaced from far below the smallest sampling variance to
T, where T is a bound beyond which the score is negative for every subset (see
:func:`tau2_grid`), picks the best grid point of every subset, and hands the solver the grid cell
beside it in which the score changes sign from + to − (a local maximum at least as high as the
best grid point). The grid costs O(G·k) for all leave-one-out or cumulative rows together.

Log-likelihoods are metafor's ``fit.stats`` (``logLik()``): ML
−k/2·log 2π − ½Σlog(vᵢ+τ²) − ½Σwᵢ(yᵢ−μ̂)², REML adds ½·log 2π + ½·log k − ½·log Σwᵢ.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
_PER_DECADE = 10
_BELOW_MIN_V = 1e-7
_CHUNK_CELLS = 1_000_000


def tau2_grid(y: FloatArray, v: FloatArray) -> FloatArray:
    """0 and a log-spaced grid up to T = 2R + √(2R·max v), R = (max y − min y)².

    Beyond T the ML and REML scores are negative for any subset of the studies: with
    |yᵢ − μ̂| ≤ √R, Σw²r² ≤ kR/τ⁴ while Σw − Σw²/Σw ≥ (k − 1)/(τ² + max v). Empty (only 0)
    when every y is equal, where the maximum is at 0.
    """
    span = float(np.max(y) - np.min(y)) ** 2
    if span <= 0.0:
        return np.zeros(1)
    top = 2.0 * span + math.sqrt(2.0 * span * float(np.max(v)))
    low = min(float(np.min(v)) * _BELOW_MIN_V, top * 1e-12)
    count = math.ceil(math.log10(top / low) * _PER_DECADE) + 1
    return np.concatenate([[0.0], np.logspace(math.log10(low), math.log10(top), count)])


def _row_sums(matrix: FloatArray, kind: str) -> FloatArray:
    """Sum (G, k) per-study terms into (G, rows) subset totals."""
    if kind == "all":
        return np.asarray(matrix.sum(axis=1, keepdims=True), dtype=float)
    if kind == "cumulative":
        return np.asarray(np.cumsum(matrix, axis=1), dtype=float)
    return np.asarray(matrix.sum(axis=1, keepdims=True) - matrix, dtype=float)


def profile_on_grid(
    y: FloatArray, v: FloatArray, grid: FloatArray, kind: str, method: str, k: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Log-likelihood (without constants) and score sign proxy on ``grid`` for every row.

    Returns (ll, score), each (G, rows); ``score`` is 2·d ll / d tau² up to a positive factor.
    The grid is processed in chunks of about a million (grid point, study) cells.
    """
    step = max(1, _CHUNK_CELLS // max(1, y.size))
    parts = [
        _profile_chunk(y, v, grid[i : i + step], kind, method) for i in range(0, grid.size, step)
    ]
    ll = np.concatenate([p[0] for p in parts])
    score = np.concatenate([p[1] for p in parts])
    ll = np.where(k[None, :] >= 2, ll, 0.0)
    return np.asarray(ll, dtype=float), np.asarray(score, dtype=float)


def _profile_chunk(
    y: FloatArray, v: FloatArray, grid: FloatArray, kind: str, method: str
) -> tuple[FloatArray, FloatArray]:
    vt = v[None, :] + grid[:, None]
    w = 1.0 / vt
    w2 = w * w
    powers = np.stack([np.ones_like(y), y, y * y], axis=1)  # (k, 3)
    if kind == "all":  # matrix-vector products: no (G, k) temporaries beyond w, w², log
        a = (w @ powers)[:, :, None]
        b = (w2 @ powers)[:, :, None]
        logs = np.log(vt).sum(axis=1, keepdims=True)
        a0, a1, a2, b0, b1, b2 = a[:, 0], a[:, 1], a[:, 2], b[:, 0], b[:, 1], b[:, 2]
    else:
        a0, a1, a2 = (_row_sums(w * powers[:, j], kind) for j in range(3))
        b0, b1, b2 = (_row_sums(w2 * powers[:, j], kind) for j in range(3))
        logs = _row_sums(np.log(vt), kind)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = a1 / a0
        rss = np.maximum(a2 - mu * a1, 0.0)
        ll = -0.5 * logs - 0.5 * rss
        score = b2 - 2.0 * mu * b1 + mu * mu * b0 - a0
        if method == "REML":
            ll = ll - 0.5 * np.log(a0)
            score = score + b0 / a0
    return np.asarray(ll, dtype=float), np.asarray(score, dtype=float)


def brackets(
    grid: FloatArray, ll: FloatArray, score: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]:
    """Per row: (start, lo, hi, found) around the best grid point.

    ``lo``/``hi`` enclose a + → − sign change of the score next to the best point, so the
    root in between is a local maximum at least as high as the grid's best; rows whose best is
    tau² = 0 with a non-positive score there get start = lo = hi = 0. ``found`` is False where
    the cell beside the best point shows no sign change (two stationary points within one cell).
    """
    rows = np.arange(ll.shape[1])
    best = np.argmax(ll, axis=0)
    last = grid.size - 1
    f_best = score[best, rows]
    up = np.minimum(best + 1, last)
    down = np.maximum(best - 1, 0)
    rising = f_best > 0
    lo = np.where(rising, grid[best], grid[down])
    hi = np.where(rising, grid[up], grid[best])
    f_lo = np.where(rising, f_best, score[down, rows])
    f_hi = np.where(rising, score[up, rows], f_best)
    at_zero = (best == 0) & (f_best <= 0)
    exact = f_best == 0
    found = at_zero | exact | ((f_lo > 0) & (f_hi < 0) & (hi > lo))
    start = np.where(at_zero, 0.0, grid[best])
    lo = np.where(at_zero | exact, start, lo)
    hi = np.where(at_zero | exact, start, hi)
    return start, lo, hi, found


def loglik(y: FloatArray, v: FloatArray, tau2: float, method: str) -> float:
    """metafor's log-likelihood at ``tau2``: restricted for REML, ML otherwise (as ``logLik``)."""
    k = y.size
    vt = v + tau2
    w = 1.0 / vt
    mu = float(np.sum(w * y) / np.sum(w))
    value = -0.5 * k * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(vt)))
    value -= 0.5 * float(np.sum(w * (y - mu) ** 2))
    if method == "REML":
        value += 0.5 * math.log(2 * math.pi) + 0.5 * math.log(k) - 0.5 * math.log(float(w.sum()))
    return value
