"""Mixed-effects meta-regression of proportions: one moderator, as metafor's ``rma(yi, vi, mods=)``.

A continuous moderator ``x`` fits ``yi = b0 + b1·x + u + e``; a categorical one fits
``mods = ~ factor(g)`` (dummy columns against a reference level, the first in sorted order unless
one is named). Every model has one residual τ², estimated on the whole design:

- ``REML`` / ``ML``: the global maximum of the (restricted) log-likelihood on [0, ∞) — a log-spaced
  profile brackets every interior maximum, each is refined with Brent's method on the score, and
  the best of them and τ² = 0 wins (the likelihood of a small or dominated set can have its
  maximum far inside while the score at 0 points the other way).
- ``DL``: (QE − (k − p)) / tr(P) with P from the inverse-variance weights, truncated at 0.
- ``PM``: the generalised Q equals k − p (0 when Q(0) is already below it).

The test of moderators QM is Wald χ² on the non-intercept coefficients (``test="z"``), or F with
(m, k − p) df after scaling by the Knapp–Hartung factor (``test="knha"``). QE is the test of
residual heterogeneity, I² and H² use metafor's typical variance (k − p)/tr(P), and R² is the share
of the intercept-only τ² (same estimator) that the moderator accounts for, as metafor's default.

Studies without a value of the moderator are left out (named in ``notes``).
Raises :class:`~.errors.MetaAnalysisError` when the model cannot be fitted (k ≤ p, one level).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats

from services.meta_analysis.errors import MetaAnalysisError
from services.meta_analysis.estimators import FloatArray, normalise_method
from services.meta_analysis.pooling import check_counts, normalise_test
from services.meta_analysis.results import _finite
from services.meta_analysis.studies import Study
from services.meta_analysis.transforms import effect_sizes, normalise_transform

_GRID = np.logspace(-8, 4, 97)
_XTOL = 1e-15


@dataclass(frozen=True)
class Coefficient:
    """One coefficient of the model on the transformed scale."""

    name: str
    estimate: float
    se: float
    statistic: float
    p: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class RegressionResult:
    """A fitted mixed-effects model with one moderator (continuous or categorical)."""

    moderator: str
    kind: str
    k: int
    transform: str
    method: str
    test: str
    level: float
    coefficients: list[Coefficient]
    qm: float
    qm_df: tuple[int, int | None]
    qm_p: float
    qe: float
    qe_df: int
    qe_p: float
    tau2: float
    i2: float
    h2: float
    r2: float | None
    loglik: float
    levels: list[str] = field(default_factory=list)
    x: list[float] = field(default_factory=list)
    yi: list[float] = field(default_factory=list)
    vi: list[float] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the model's tests and coefficients (not the per-study data)."""
        data: dict[str, Any] = _finite(
            {
                "moderator": self.moderator,
                "kind": self.kind,
                "k": self.k,
                "transform": self.transform,
                "method": self.method,
                "test": self.test,
                "level": self.level,
                "levels": self.levels,
                "coefficients": [c.__dict__ for c in self.coefficients],
                "qm": self.qm,
                "qm_df": list(self.qm_df),
                "qm_p": self.qm_p,
                "qe": self.qe,
                "qe_df": self.qe_df,
                "qe_p": self.qe_p,
                "tau2": self.tau2,
                "i2": self.i2,
                "h2": self.h2,
                "r2": self.r2,
                "loglik": self.loglik,
                "notes": list(self.notes),
            }
        )
        return data


@dataclass(frozen=True)
class _Parts:
    """The weighted least-squares quantities of the model at one τ²."""

    beta: FloatArray
    inv: FloatArray
    rss: float
    tr_p: float
    ypy2: float
    sum_log_v: float
    logdet: float


def _parts(y: FloatArray, v: FloatArray, x: FloatArray, tau2: float) -> _Parts:
    w = 1.0 / (v + tau2)
    xtwx = x.T @ (w[:, None] * x)
    inv: FloatArray = np.asarray(np.linalg.inv(xtwx), dtype=np.float64)
    beta = inv @ (x.T @ (w * y))
    r = y - x @ beta
    tr_p = float(np.sum(w) - np.trace(inv @ (x.T @ ((w**2)[:, None] * x))))
    _sign, logdet = np.linalg.slogdet(xtwx)
    return _Parts(
        beta=beta,
        inv=inv,
        rss=float(np.sum(w * r**2)),
        tr_p=tr_p,
        ypy2=float(np.sum((w * r) ** 2)),
        sum_log_v=float(np.sum(np.log(v + tau2))),
        logdet=float(logdet),
    )


def _loglik(y: FloatArray, v: FloatArray, x: FloatArray, tau2: float, reml: bool) -> float:
    k, p = int(x.shape[0]), int(x.shape[1])
    parts = _parts(y, v, x, tau2)
    if not reml:
        return -0.5 * (k * math.log(2 * math.pi) + parts.sum_log_v + parts.rss)
    _, logdet_xx = np.linalg.slogdet(x.T @ x)
    return -0.5 * (
        (k - p) * math.log(2 * math.pi)
        - float(logdet_xx)
        + parts.sum_log_v
        + parts.logdet
        + parts.rss
    )


def _score(y: FloatArray, v: FloatArray, x: FloatArray, tau2: float, reml: bool) -> float:
    parts = _parts(y, v, x, tau2)
    trace = parts.tr_p if reml else float(np.sum(1.0 / (v + tau2)))
    return 0.5 * (parts.ypy2 - trace)


def _likelihood_tau2(y: FloatArray, v: FloatArray, x: FloatArray, reml: bool) -> float:
    """The τ² ≥ 0 of the global maximum of the (restricted) likelihood."""
    scale = float(np.var(y)) + float(np.mean(v))
    grid = np.concatenate([[0.0], _GRID * max(scale, 1e-12)])
    scores = np.array([_score(y, v, x, float(t), reml) for t in grid])
    while scores[-1] > 0 and grid[-1] < 1e12 * max(scale, 1.0):
        grid = np.append(grid, grid[-1] * 4.0)
        scores = np.append(scores, _score(y, v, x, float(grid[-1]), reml))
    candidates = [0.0]
    for i in np.flatnonzero((scores[:-1] > 0) & (scores[1:] <= 0)):
        lo, hi = float(grid[i]), float(grid[i + 1])
        candidates.append(
            float(
                optimize.brentq(lambda t: _score(y, v, x, t, reml), lo, hi, xtol=_XTOL, rtol=1e-15)
            )
        )
    values = [_loglik(y, v, x, t, reml) for t in candidates]
    return candidates[int(np.argmax(values))]


def _pm_tau2(y: FloatArray, v: FloatArray, x: FloatArray) -> float:
    k, p = int(x.shape[0]), int(x.shape[1])

    def excess(t: float) -> float:
        return _parts(y, v, x, t).rss - (k - p)

    if excess(0.0) <= 0:
        return 0.0
    hi = max(float(np.var(y)), 1e-4)
    while excess(hi) > 0:
        hi *= 4.0
    return float(optimize.brentq(excess, 0.0, hi, xtol=_XTOL, rtol=1e-15))


def _tau2(y: FloatArray, v: FloatArray, x: FloatArray, method: str) -> float:
    k, p = int(x.shape[0]), int(x.shape[1])
    if method in ("REML", "ML"):
        return _likelihood_tau2(y, v, x, reml=method == "REML")
    if method == "PM":
        return _pm_tau2(y, v, x)
    fixed = _parts(y, v, x, 0.0)
    return max(0.0, (fixed.rss - (k - p)) / fixed.tr_p)


def fit_design(
    y: FloatArray,
    v: FloatArray,
    x: FloatArray,
    names: Sequence[str],
    *,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> dict[str, Any]:
    """Fit ``y ~ x`` (x includes the intercept column) and return the model's figures."""
    k, p = int(x.shape[0]), int(x.shape[1])
    if k <= p:
        raise MetaAnalysisError(f"cannot fit the moderator model: {k} studies for {p} coefficients")
    tau2 = _tau2(y, v, x, method)
    parts = _parts(y, v, x, tau2)
    vb = parts.inv
    if test == "knha":
        vb = vb * (parts.rss / (k - p))
    se = np.sqrt(np.diag(vb))
    statistic = parts.beta / se
    m = p - 1
    btt = slice(1, p)
    qm = float(parts.beta[btt] @ np.linalg.solve(vb[btt, btt], parts.beta[btt]))
    if test == "knha":
        qm /= m
        qm_df: tuple[int, int | None] = (m, k - p)
        qm_p = float(stats.f.sf(qm, m, k - p))
        pvals = 2 * stats.t.sf(np.abs(statistic), k - p)
        crit = float(stats.t.ppf(0.5 + level / 2, k - p))
    else:
        qm_df = (m, None)
        qm_p = float(stats.chi2.sf(qm, m))
        pvals = 2 * stats.norm.sf(np.abs(statistic))
        crit = float(stats.norm.ppf(0.5 + level / 2))
    fixed = _parts(y, v, x, 0.0)
    qe = max(0.0, fixed.rss)
    typical = (k - p) / fixed.tr_p
    coefficients = [
        Coefficient(
            name, float(b), float(s), float(z), float(pv), float(b - crit * s), float(b + crit * s)
        )
        for name, b, s, z, pv in zip(names, parts.beta, se, statistic, pvals, strict=True)
    ]
    return {
        "coefficients": coefficients,
        "qm": qm,
        "qm_df": qm_df,
        "qm_p": qm_p,
        "qe": qe,
        "qe_df": k - p,
        "qe_p": float(stats.chi2.sf(qe, k - p)),
        "tau2": tau2,
        "i2": 100.0 * tau2 / (typical + tau2),
        "h2": tau2 / typical + 1.0,
        "loglik": _loglik(y, v, x, tau2, reml=method == "REML"),
    }


def r_squared(y: FloatArray, v: FloatArray, tau2: float, method: str) -> float:
    """metafor's default R²: the share of the intercept-only τ² explained (0 when it is 0)."""
    tau2_re = _tau2(y, v, np.ones((y.size, 1)), method)
    if tau2_re == 0.0:
        return 0.0
    return max(0.0, 100.0 * (tau2_re - tau2) / tau2_re)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _design(
    values: Sequence[Any], kind: str, moderator: str, reference: str | None
) -> tuple[FloatArray, list[str], list[str]]:
    k = len(values)
    if kind == "continuous":
        column = np.array([_number(v) for v in values], dtype=float)
        return np.column_stack([np.ones(k), column]), ["intercept", moderator], []
    levels = sorted({str(v) for v in values})
    if reference is not None:
        if reference not in levels:
            raise MetaAnalysisError(
                f"reference level {reference!r} of {moderator!r} is not among {levels}"
            )
        levels.remove(reference)
        levels.insert(0, reference)
    if len(levels) < 2:
        raise MetaAnalysisError(
            f"cannot test {moderator!r}: every study with a value has the same one ({levels})"
        )
    dummies = [[1.0 if str(v) == level else 0.0 for level in levels[1:]] for v in values]
    x = np.column_stack([np.ones(k), np.array(dummies, dtype=float)])
    return x, ["intercept", *(f"{moderator}={level}" for level in levels[1:])], levels


def meta_regression(
    studies: Sequence[Study],
    moderator: str,
    *,
    kind: str | None = None,
    reference: str | None = None,
    transform: str = "logit",
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    values: Sequence[Any] | None = None,
) -> RegressionResult:
    """Fit the mixed-effects model of ``studies`` on ``moderator`` (see the module docstring).

    ``kind`` is ``continuous``, ``categorical`` or None (continuous when every value present is a
    number). ``values`` overrides ``Study.value(moderator)`` (one per study, None when missing).
    """
    transform = normalise_transform(transform)
    method, test = normalise_method(method), normalise_test(test)
    raw = list(values) if values is not None else [s.value(moderator) for s in studies]
    present = [i for i, v in enumerate(raw) if v not in (None, "")]
    if kind is None:
        kind = "continuous" if all(_number(raw[i]) is not None for i in present) else "categorical"
    if kind == "continuous":
        present = [i for i in present if _number(raw[i]) is not None]
    if kind not in ("continuous", "categorical"):
        raise MetaAnalysisError(f"moderator kind {kind!r}: use continuous or categorical")
    left_out = [studies[i].label for i in range(len(studies)) if i not in set(present)]
    chosen = [studies[i] for i in present]
    labels = [s.label for s in chosen]
    xs, ns = check_counts([s.events for s in chosen], [s.total for s in chosen], labels)
    es = effect_sizes(xs, ns, transform)
    design, names, levels = _design([raw[i] for i in present], kind, moderator, reference)
    fit = fit_design(es.yi, es.vi, design, names, method=method, test=test, level=level)
    notes = []
    if left_out:
        notes.append(f"{len(left_out)} studies without {moderator} left out: {', '.join(left_out)}")
    return RegressionResult(
        moderator=moderator,
        kind=kind,
        k=len(chosen),
        transform=transform,
        method=method,
        test=test,
        level=level,
        r2=r_squared(es.yi, es.vi, fit["tau2"], method),
        levels=levels,
        x=[float(v) for v in design[:, 1]] if kind == "continuous" else [],
        yi=[float(v) for v in es.yi],
        vi=[float(v) for v in es.vi],
        totals=[float(v) for v in ns],
        labels=labels,
        notes=tuple(notes),
        **fit,
    )
