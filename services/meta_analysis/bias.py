"""Small-study effects: Egger's regression test and the funnel plot's data, as metafor does them.

:func:`egger_test` is metafor's ``regtest(res)`` with its defaults (``model = "rma"``,
``predictor = "sei"``): the random-effects model refitted with each study's standard error as
the moderator (REML, z test), the test of the moderator's coefficient, and the "limit estimate"
(the intercept: the effect of a study with a standard error of 0) with its confidence
interval (fitted by :func:`.regression.fit_design`). :func:`funnel_data` is what ``funnel(res)`` plots: each study's effect (x) against its
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
from services.meta_analysis.regression import fit_design

MIN_STUDIES = 10


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


def egger_test(
    yi: Sequence[float], vi: Sequence[float], *, level: float = 0.95
) -> EggerResult:
    """Egger's regression test as ``regtest(rma(yi, vi))``; needs ≥ :data:`MIN_STUDIES` studies."""
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if y.size < MIN_STUDIES:
        raise MetaAnalysisError(
            f"Egger's test needs at least {MIN_STUDIES} studies, got {y.size}"
        )
    design = np.column_stack([np.ones(y.size), np.sqrt(v)])
    fit = fit_design(y, v, design, ("intrcpt", "sei"), method="REML", test="z", level=level)
    intercept, slope = fit["coefficients"]
    return EggerResult(
        k=int(y.size),
        z=slope.statistic,
        p=slope.p,
        slope=slope.estimate,
        slope_se=slope.se,
        limit_estimate=intercept.estimate,
        limit_ci_low=intercept.ci_low,
        limit_ci_high=intercept.ci_high,
        tau2=float(fit["tau2"]),
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
