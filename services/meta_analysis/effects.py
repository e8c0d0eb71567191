"""Random-effects pooling of generic effect sizes (e.g. log odds ratios) with the engine.

A study reports a ratio and its confidence interval; :func:`log_ratio` turns that into
``yi = log(ratio)`` and ``vi = ((log(high) − log(low)) / (2·z))²``. :func:`pool_effects` pools
``yi``/``vi`` with the same estimators as the proportions (:func:`.estimators.fit_rows`), Wald
interval, back on the ratio scale by ``exp``. Checked against ``rma(yi, sei = …)`` in
``tests/reference/metafor_bias.R``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from services.meta_analysis.errors import InvalidStudyData
from services.meta_analysis.estimators import fit_rows, normalise_method


@dataclass(frozen=True)
class EffectPool:
    """Pooled log ratio (``mu``, ``se``, CI) with tau², I², Q; ``ratio`` fields are exp()."""

    k: int
    method: str
    mu: float
    se: float
    ci_low: float
    ci_high: float
    tau2: float
    i2: float
    q: float

    @property
    def ratio(self) -> tuple[float, float, float]:
        """(estimate, low, high) on the ratio scale."""
        return math.exp(self.mu), math.exp(self.ci_low), math.exp(self.ci_high)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the ratio-scale estimate and interval."""
        data = asdict(self)
        data["ratio"], data["ratio_ci_low"], data["ratio_ci_high"] = self.ratio
        return data


def log_ratio(label: str, value: float, low: float, high: float) -> tuple[float, float]:
    """(log ratio, its variance) from a ratio and its 95% CI; InvalidStudyData when impossible."""
    if not (value > 0 and low > 0 and high > 0):
        raise InvalidStudyData(label, "ratio", "a ratio and its CI must be positive")
    if not low <= value <= high or low == high:
        raise InvalidStudyData(label, "ratio", f"{value:g} is not inside its CI {low:g}–{high:g}")
    se = (math.log(high) - math.log(low)) / (2 * float(stats.norm.ppf(0.975)))
    return math.log(value), se * se


def pool_effects(
    yi: Sequence[float], vi: Sequence[float], *, method: str = "REML", level: float = 0.95
) -> EffectPool:
    """Random-effects pooling of ``yi`` with variances ``vi`` (k ≥ 2; ValueError otherwise)."""
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if y.size < 2:
        raise ValueError("pooling needs at least two effect sizes")
    method = normalise_method(method)
    fit = fit_rows(y, v, "all", method)
    mu, se, tau2 = float(fit.mu[0]), float(fit.se[0]), float(fit.tau2[0])
    crit = float(stats.norm.ppf(0.5 + level / 2))
    s2 = float(fit.s2_typical[0])
    return EffectPool(
        k=int(y.size),
        method=method,
        mu=mu,
        se=se,
        ci_low=mu - crit * se,
        ci_high=mu + crit * se,
        tau2=tau2,
        i2=100.0 * tau2 / (tau2 + s2),
        q=float(fit.q[0]),
    )
