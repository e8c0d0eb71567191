"""Small-study effects: Egger's regression test and the funnel plot's data, as metafor does them.

:func:`egger_test` is metafor's ``regtest(res)`` with its defaults (``model = "rma"``,
``predictor = "sei"``): the random-effects model refitted with each study's standard error as
the moderator (REML, z test), the test of the moderator's coefficient, and the "limit estimate"
(the intercept: the effect of a study with a standard error of 0) with its confidence
interval. :func:`funnel_data` is what ``funnel(res)`` plots: each study's effect (x) against its
standard error (y), with the pooled estimate as the reference line and the pseudo-confidence
region reference ± z·se. Both work on the transformed scale (logit for proportions).

GRADE asks for a funnel plot and a test only with at least :data:`MIN_STUDIES` studies (fewer
give the test too little power); :func:`egger_test` refuses fewer with
:class:`~services.meta_analysis.errors.MetaAnalysisError`. For proportions a small-study
effect is not necessarily publication bias (Hunter et al. 2014): the caller says so.

Checked against ``tests/reference/metafor_bias.R`` (golden values in ``metafor_bias.json``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from services.meta_analysis.errors import MetaAnalysisError
from services.meta_analysis.estimators import FloatArray

MIN_STUDIES = 10
_MAX_ITER = 1000
_TOL = 1e-12


@dataclass(frozen=True)
class MixedFit:
    """A random-effects meta-regression fitted by REML: coefficients, their SEs, tau²."""

    beta: tuple[float, ...]
    se: tuple[float, ...]
    tau2: float


@dataclass(frozen=True)
class EggerResult:
    """Egger's test: z and p of the standard-error coefficient, and the limit estimate."""

    k: int
    z: float
    p: float
    slope: float
    slope_se: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    tau2: float

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready dict (transformed scale)."""
        return asdict(self)


@dataclass(frozen=True)
class FunnelData:
    """The points of a funnel plot and its reference line and pseudo-confidence region."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    labels: tuple[str, ...]
    refline: float
    z: float

    def region(self) -> list[tuple[float, float]]:
        """The triangle (x, se) of refline ± z·se from se = 0 to the largest se."""
        top = max(self.y, default=0.0)
        return [
            (self.refline - self.z * top, top),
            (self.refline, 0.0),
            (self.refline + self.z * top, top),
        ]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict with the region."""
        data = asdict(self)
        data["region"] = [list(point) for point in self.region()]
        return data


def fit_reml(yi: FloatArray, vi: FloatArray, design: FloatArray) -> MixedFit:
    """REML fit of ``yi = design · beta + u + e`` (u ~ N(0, tau²), e ~ N(0, vi)).

    Fisher scoring on tau² from the Hedges (HE) starting value, truncated at 0, to 1e-12 — the
    algorithm metafor's ``rma(method = "REML")`` uses. Raises MetaAnalysisError when it does not
    converge or the design has fewer studies than coefficients + 1.
    """
    k, p = design.shape
    if k <= p:
        raise MetaAnalysisError(f"need more than {p} studies for this model, got {k}")
    tau2 = _he_start(yi, vi, design)
    for _ in range(_MAX_ITER):
        proj = _projection(vi, tau2, design)
        py = proj @ yi
        step = (float(py @ py) - float(np.trace(proj))) / float(np.sum(proj * proj.T))
        new = max(0.0, tau2 + step)
        if abs(new - tau2) <= _TOL * max(1.0, tau2):
            tau2 = new
            break
        tau2 = new
    else:
        raise MetaAnalysisError("REML did not converge for the meta-regression")
    weights = 1.0 / (vi + tau2)
    cov = np.linalg.inv(design.T @ (design * weights[:, None]))
    beta = cov @ (design.T @ (weights * yi))
    return MixedFit(
        tuple(float(b) for b in beta),
        tuple(math.sqrt(float(c)) for c in np.diag(cov)),
        float(tau2),
    )


def _projection(vi: FloatArray, tau2: float, design: FloatArray) -> FloatArray:
    weights = 1.0 / (vi + tau2)
    wx = design * weights[:, None]
    inner = np.linalg.inv(design.T @ wx)
    result: FloatArray = np.diag(weights) - wx @ inner @ wx.T
    return result


def _he_start(yi: FloatArray, vi: FloatArray, design: FloatArray) -> float:
    k, p = design.shape
    hat = design @ np.linalg.pinv(design)
    resid = yi - hat @ yi
    return float(max(0.0, (float(resid @ resid) - float(np.trace((np.eye(k) - hat) * vi))) / (k - p)))


def egger_test(
    yi: Sequence[float], vi: Sequence[float], *, level: float = 0.95
) -> EggerResult:
    """Egger's regression test as ``regtest(rma(yi, vi))``; needs ≥ :data:`MIN_STUDIES` studies."""
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if y.size < MIN_STUDIES:
        raise MetaAnalysisError(
            f"Egger's test needs at least {MIN_STUDIES} studies, got {y.size}"
        )
    sei = np.sqrt(v)
    fit = fit_reml(y, v, np.column_stack([np.ones(y.size), sei]))
    z = fit.beta[1] / fit.se[1]
    crit = float(stats.norm.ppf(0.5 + level / 2))
    return EggerResult(
        k=int(y.size),
        z=z,
        p=float(2 * stats.norm.sf(abs(z))),
        slope=fit.beta[1],
        slope_se=fit.se[1],
        limit_estimate=fit.beta[0],
        limit_ci_low=fit.beta[0] - crit * fit.se[0],
        limit_ci_high=fit.beta[0] + crit * fit.se[0],
        tau2=fit.tau2,
    )


def funnel_data(
    yi: Sequence[float],
    vi: Sequence[float],
    refline: float,
    *,
    labels: Sequence[str] | None = None,
    level: float = 0.95,
) -> FunnelData:
    """The funnel plot of ``funnel(res)``: (yi, sqrt(vi)) per study, the pooled ``refline``."""
    names = tuple(labels) if labels is not None else tuple(f"study {i + 1}" for i in range(len(yi)))
    return FunnelData(
        x=tuple(float(y) for y in yi),
        y=tuple(math.sqrt(float(v)) for v in vi),
        labels=names,
        refline=float(refline),
        z=float(stats.norm.ppf(0.5 + level / 2)),
    )
