"""Result types of the engine: plain frozen dataclasses that turn into JSON-ready dicts.

Proportions are on the 0–1 scale; ``*_t`` fields are on the transformed scale (what metafor prints
before ``transf=``). A result that could not be pooled has ``pooled = False``, ``None`` in every
numeric field (never NaN) and a note saying why.

``loglik`` is metafor's ``logLik()`` of the fit (restricted for REML; ML for ML, DL, PM and the
GLMM, whose value includes the binomial coefficients as lme4's); ``converged`` says whether the
requested estimator's search converged (False when the engine fell back to DL, which a note
says); ``degenerate`` marks a GLMM whose likelihood has no finite maximum (not pooled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict


@dataclass(frozen=True)
class StudyRow:
    """One study as it enters a pooling: proportion with an exact (Clopper–Pearson) CI, weights."""

    label: str
    events: int
    total: int
    proportion: float
    ci_low: float
    ci_high: float
    yi: float
    vi: float
    weight_random: float | None
    weight_common: float | None
    corrected: bool
    year: int | None = None
    group: str | None = None


class BaseFields(TypedDict):
    """The fields every :class:`PoolResult` has, pooled or not."""

    k: int
    transform: str
    method: str
    test: str
    level: float
    events: int
    total: int


@dataclass(frozen=True)
class PoolResult:
    """Random- and common-effect pooled proportion of one set of studies, with heterogeneity."""

    pooled: bool
    k: int
    transform: str
    method: str
    test: str
    level: float
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    pi_low: float | None = None
    pi_high: float | None = None
    common_estimate: float | None = None
    common_ci_low: float | None = None
    common_ci_high: float | None = None
    estimate_t: float | None = None
    se_t: float | None = None
    ci_low_t: float | None = None
    ci_high_t: float | None = None
    pi_low_t: float | None = None
    pi_high_t: float | None = None
    common_estimate_t: float | None = None
    common_se_t: float | None = None
    tau2: float | None = None
    tau: float | None = None
    q: float | None = None
    q_df: int | None = None
    q_p: float | None = None
    i2: float | None = None
    h2: float | None = None
    loglik: float | None = None
    converged: bool | None = None
    degenerate: bool = False
    events: int = 0
    total: int = 0
    notes: tuple[str, ...] = ()
    studies: tuple[StudyRow, ...] = field(default=(), repr=False)

    @property
    def heterogeneity_class(self) -> str | None:
        """Band of I²: low (<30), moderate (<50), substantial (<75), considerable (≥75)."""
        return heterogeneity_class(self.i2)

    def to_dict(self, *, with_studies: bool = True) -> dict[str, Any]:
        """JSON-ready dict; ``heterogeneity_class`` added, studies optional."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "studies"}
        if with_studies:  # shallow: StudyRow holds only scalars (asdict's deep copy is slow)
            names = [f.name for f in fields(StudyRow)]
            data["studies"] = [{n: getattr(row, n) for n in names} for row in self.studies]
        data["notes"] = list(self.notes)
        data["heterogeneity_class"] = self.heterogeneity_class
        clean: dict[str, Any] = _finite(data)
        return clean


def heterogeneity_class(i2: float | None) -> str | None:
    """Map I² (percent) to the Cochrane Handbook's overlapping bands, taking the upper cut."""
    if i2 is None:
        return None
    if i2 < 30:
        return "low"
    if i2 < 50:
        return "moderate"
    if i2 < 75:
        return "substantial"
    return "considerable"


def _finite(value: Any) -> Any:
    """Replace non-finite floats by None, recursively, so JSON output never holds NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
