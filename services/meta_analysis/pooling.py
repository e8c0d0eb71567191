"""Random-effects (and common-effect) pooling of proportions, matching metafor's ``rma.uni``.

``pool(events, totals, ...)`` transforms each study (see :mod:`.transforms`), estimates tau² (see
:mod:`.estimators`), and gives the mean with its confidence interval (normal, or Knapp–Hartung with
t on k − 1 df), the prediction interval as metafor's ``predict.rma`` (se² + tau², same critical
value as the CI), Cochran's Q with its p-value, and I² / H² from tau² and the "typical" within-study
variance as metafor prints them. Everything is back-transformed to proportions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from scipy import special, stats

from services.meta_analysis.errors import InvalidStudyData, UnknownOption
from services.meta_analysis.estimators import FloatArray, RowFits, fit_rows, normalise_method
from services.meta_analysis.likelihood import loglik
from services.meta_analysis.results import BaseFields, PoolResult, StudyRow
from services.meta_analysis.transforms import (
    EffectSizes,
    back_transform,
    effect_sizes,
    normalise_transform,
)

logger = logging.getLogger(__name__)
TESTS: tuple[str, ...] = ("z", "knha")


def normalise_test(name: str) -> str:
    """Return ``z`` or ``knha`` (``hksj`` accepted as an alias of ``knha``)."""
    lowered = name.lower()
    lowered = "knha" if lowered == "hksj" else lowered
    if lowered not in TESTS:
        raise UnknownOption("test", name, TESTS)
    return lowered


def check_counts(
    events: Sequence[float | None], totals: Sequence[float | None], labels: Sequence[str]
) -> tuple[FloatArray, FloatArray]:
    """Validate counts (finite whole numbers, 0 ≤ events ≤ total, total > 0) and return arrays.

    Raises :class:`InvalidStudyData` naming the first offending study and field.
    """
    if len(events) != len(totals) or len(labels) != len(events):
        raise ValueError("events, totals and labels must have the same length")
    x = np.array([np.nan if e is None else e for e in events], dtype=float)
    n = np.array([np.nan if t is None else t for t in totals], dtype=float)
    bad = ~np.isfinite(x) | ~np.isfinite(n) | (x != np.round(x)) | (n != np.round(n))
    bad |= (n <= 0) | (x < 0) | (x > n)
    if bad.any():
        _raise_first(int(np.flatnonzero(bad)[0]), labels, x, n)
    return x, n


def _raise_first(i: int, labels: Sequence[str], x: FloatArray, n: FloatArray) -> None:
    label = labels[i]
    for name, value in (("events", x[i]), ("total", n[i])):
        if not math.isfinite(value):
            raise InvalidStudyData(label, name, "missing or not a number")
        if value != round(value):
            raise InvalidStudyData(label, name, f"{value:g} is not a whole number")
    if n[i] <= 0:
        raise InvalidStudyData(label, "total", f"must be positive, got {n[i]:g}")
    if x[i] < 0:
        raise InvalidStudyData(label, "events", f"must not be negative, got {x[i]:g}")
    raise InvalidStudyData(label, "events", f"{x[i]:g} events exceed the total {n[i]:g}")


def _labels(labels: Sequence[str] | None, k: int) -> list[str]:
    return [f"study {i + 1}" for i in range(k)] if labels is None else [str(s) for s in labels]


def _fit_one(yi: FloatArray, vi: FloatArray, method: str, notes: list[str]) -> tuple[RowFits, str]:
    fit = fit_rows(yi, vi, "all", method)
    if method != "DL" and not (bool(fit.converged[0]) and math.isfinite(float(fit.tau2[0]))):
        logger.warning("%s did not converge; falling back to DL", method)
        notes.append(f"{method} did not converge; DerSimonian–Laird used instead")
        return replace(fit_rows(yi, vi, "all", "DL"), converged=np.zeros(1, dtype=bool)), "DL"
    return fit, method


def _study_rows(
    labels: list[str],
    x: FloatArray,
    n: FloatArray,
    es_yi: FloatArray,
    es_vi: FloatArray,
    corrected: np.ndarray,
    weights: tuple[FloatArray | None, FloatArray | None],
    level: float,
) -> tuple[StudyRow, ...]:
    alpha = 1.0 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(x > 0, special.betaincinv(x, n - x + 1, alpha / 2), 0.0)
        high = np.where(x < n, special.betaincinv(x + 1, n - x, 1 - alpha / 2), 1.0)
    w_re, w_fe = weights
    none = [None] * x.size
    columns = zip(
        labels,
        x.astype(int).tolist(),
        n.astype(int).tolist(),
        (x / n).tolist(),
        low.tolist(),
        high.tolist(),
        es_yi.tolist(),
        es_vi.tolist(),
        none if w_re is None else w_re.tolist(),
        none if w_fe is None else w_fe.tolist(),
        corrected.tolist(),
        strict=True,
    )
    return tuple(StudyRow(*values) for values in columns)


def pool(
    events: Sequence[float | None],
    totals: Sequence[float | None],
    *,
    labels: Sequence[str] | None = None,
    transform: str = "logit",
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> PoolResult:
    """Pool proportions ``events/totals`` with a random-effects model (plus the common effect).

    Raises :class:`InvalidStudyData` for impossible counts and :class:`UnknownOption` for an
    unknown transform, method or test. With fewer than two studies the result has
    ``pooled=False`` and a note; a non-converging iterative estimator falls back to DL (noted).
    """
    transform = normalise_transform(transform)
    method, test = normalise_method(method), normalise_test(test)
    names = _labels(labels, len(events))
    x, n = check_counts(events, totals, names)
    es = effect_sizes(x, n, transform)
    k = int(x.size)
    base: BaseFields = {
        "k": k,
        "transform": transform,
        "method": method,
        "test": test,
        "level": level,
        "events": int(x.sum()),
        "total": int(n.sum()),
    }
    if k < 2:
        rows = _study_rows(names, x, n, es.yi, es.vi, es.corrected, (None, None), level)
        why = "no studies" if k == 0 else "only one study"
        return PoolResult(
            pooled=False, notes=(f"cannot pool: {why} (need at least 2)",), studies=rows, **base
        )
    notes = correction_notes(es.corrected, names, transform)
    fit, used = _fit_one(es.yi, es.vi, method, notes)
    base["method"] = used
    return _assemble(fit, es, x, n, names, notes, base)


def correction_notes(corrected: np.ndarray, labels: list[str], transform: str) -> list[str]:
    """Notes about continuity corrections and the PFT back-transformation."""
    notes: list[str] = []
    fixed = [labels[i] for i in np.flatnonzero(corrected)]
    if fixed:
        notes.append(
            f"continuity correction 0.5 added to events and non-events of {len(fixed)} "
            f"stud{'y' if len(fixed) == 1 else 'ies'} with 0 or all events ({transform}): "
            + "; ".join(fixed)
        )
    if transform == "PFT":
        notes.append(
            "PFT back-transformed with the harmonic mean of the totals (Miller 1978); "
            "it can mislead when study sizes differ (Schwarzer et al. 2019)"
        )
    return notes


def _assemble(
    fit: RowFits,
    es: EffectSizes,
    x: FloatArray,
    n: FloatArray,
    names: list[str],
    notes: list[str],
    base: BaseFields,
) -> PoolResult:
    level = base["level"]
    k = base["k"]
    tau2 = float(fit.tau2[0])
    mu = float(fit.mu[0])
    if base["test"] == "knha":
        se, crit = float(fit.se_knha[0]), float(stats.t.ppf(0.5 + level / 2, k - 1))
    else:
        se, crit = float(fit.se[0]), float(stats.norm.ppf(0.5 + level / 2))
    se_pi = math.sqrt(se**2 + tau2)
    mu_fe, se_fe = float(fit.mu_fe[0]), float(fit.se_fe[0])
    w_re = 1.0 / (es.vi + tau2)
    w_fe = 1.0 / es.vi
    rows = _study_rows(
        names,
        x,
        n,
        es.yi,
        es.vi,
        es.corrected,
        (100 * w_re / w_re.sum(), 100 * w_fe / w_fe.sum()),
        level,
    )
    return summarise(
        mu=mu,
        se=se,
        crit=crit,
        se_pi=se_pi,
        mu_fe=mu_fe,
        se_fe=se_fe,
        tau2=tau2,
        s2=float(fit.s2_typical[0]),
        q=float(fit.q[0]),
        transform=es.transform,
        n=n,
        notes=notes,
        rows=rows,
        base=base,
        fit_info=(loglik(es.yi, es.vi, tau2, base["method"]), bool(fit.converged[0])),
    )


def summarise(
    *,
    mu: float,
    se: float,
    crit: float,
    se_pi: float,
    mu_fe: float,
    se_fe: float,
    tau2: float,
    s2: float,
    q: float,
    transform: str,
    n: FloatArray,
    notes: list[str],
    rows: tuple[StudyRow, ...],
    base: BaseFields,
    fit_info: tuple[float, bool],
) -> PoolResult:
    """The pooled result from a model's estimates on the transformed scale (shared with the
    GLMM): CI with ``crit``, prediction interval with ``se_pi``, the common effect with z,
    back-transformed; Q, I² and H² from τ² and the typical within-study variance ``s2``;
    ``fit_info`` is (log-likelihood, converged)."""
    k, level = base["k"], base["level"]
    z = float(stats.norm.ppf(0.5 + level / 2))
    t_vals = np.array(
        [
            mu,
            mu - crit * se,
            mu + crit * se,
            mu - crit * se_pi,
            mu + crit * se_pi,
            mu_fe,
            mu_fe - z * se_fe,
            mu_fe + z * se_fe,
        ]
    )
    p = back_transform(t_vals, transform, n)
    if transform == "PR" and (p.min() < 0 or p.max() > 1):
        notes.append("raw proportions (PR): interval limits outside 0–1 are shown as computed")
    return PoolResult(
        pooled=True,
        estimate=float(p[0]),
        ci_low=float(p[1]),
        ci_high=float(p[2]),
        pi_low=float(p[3]),
        pi_high=float(p[4]),
        common_estimate=float(p[5]),
        common_ci_low=float(p[6]),
        common_ci_high=float(p[7]),
        estimate_t=mu,
        se_t=se,
        ci_low_t=float(t_vals[1]),
        ci_high_t=float(t_vals[2]),
        pi_low_t=float(t_vals[3]),
        pi_high_t=float(t_vals[4]),
        common_estimate_t=mu_fe,
        common_se_t=se_fe,
        tau2=tau2,
        tau=math.sqrt(tau2),
        q=q,
        q_df=k - 1,
        q_p=float(stats.chi2.sf(q, k - 1)),
        i2=100.0 * tau2 / (tau2 + s2),
        h2=(tau2 + s2) / s2,
        loglik=fit_info[0],
        converged=fit_info[1],
        notes=tuple(notes),
        studies=rows,
        **base,
    )
