"""Subgroups, leave-one-out and cumulative meta-analysis.

Leave-one-out and cumulative analyses fit all their subsets at once (see
:func:`.estimators.fit_rows`): a few passes over a k × k array, not k separate fits. The
cumulative order is the publication year (ties keep the input order) — how the estimate evolved
as studies appeared. Rows of the Freeman–Tukey transform are back-transformed with the harmonic
mean of all the studies' sizes, as metafor's ``leave1out``/``cumul`` do with
``transf.ipft.hm`` and ``targs = list(ni = dat$ni)``.
Subgroups are pooled separately (each its own tau²) and compared with the between-group Q test
on the transformed scale (df = groups − 1; single-study groups are shown but not tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from services.meta_analysis.estimators import FloatArray, RowFits, fit_rows, normalise_method
from services.meta_analysis.pooling import check_counts, normalise_test, pool
from services.meta_analysis.results import PoolResult, _finite
from services.meta_analysis.studies import Study
from services.meta_analysis.transforms import (
    effect_sizes,
    inverse_pft,
    normalise_transform,
)

MISSING_GROUP = "not reported"


@dataclass(frozen=True)
class BreakdownRow:
    """One subset of a leave-one-out or cumulative analysis (proportions; None if not pooled)."""

    label: str
    k: int
    year: int | None
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    tau2: float | None
    i2: float | None


@dataclass(frozen=True)
class SubgroupResult:
    """Pooled result per group, overall, and the test for subgroup differences."""

    by: str
    groups: dict[str, PoolResult]
    overall: PoolResult
    q_between: float | None
    df_between: int | None
    p_between: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (group results without their study rows)."""
        data: dict[str, Any] = _finite(
            {
                "by": self.by,
                "q_between": self.q_between,
                "df_between": self.df_between,
                "p_between": self.p_between,
                "overall": self.overall.to_dict(with_studies=False),
                "groups": {g: r.to_dict(with_studies=False) for g, r in self.groups.items()},
            }
        )
        return data


def _arrays(studies: Sequence[Study]) -> tuple[list[str], FloatArray, FloatArray]:
    labels = [s.label for s in studies]
    x, n = check_counts([s.events for s in studies], [s.total for s in studies], labels)
    return labels, x, n


def subgroups(studies: Sequence[Study], by: str, **options: Any) -> SubgroupResult:
    """Pool each group of ``studies`` by field ``by`` (``decade`` derives from the year)."""
    keys = [s.value(by) for s in studies]
    names = sorted({MISSING_GROUP if k in (None, "") else str(k) for k in keys})
    groups: dict[str, PoolResult] = {}
    for name in names:
        members = [
            s
            for s, k in zip(studies, keys, strict=True)
            if (MISSING_GROUP if k in (None, "") else str(k)) == name
        ]
        groups[name] = pool(
            [s.events for s in members],
            [s.total for s in members],
            labels=[s.label for s in members],
            **options,
        )
    overall = pool(
        [s.events for s in studies],
        [s.total for s in studies],
        labels=[s.label for s in studies],
        **options,
    )
    tested = [r for r in groups.values() if r.pooled]
    if len(tested) < 2:
        return SubgroupResult(by, groups, overall, None, None, None)
    mu = np.array([r.estimate_t for r in tested], dtype=float)
    w = 1.0 / np.array([r.se_t for r in tested], dtype=float) ** 2
    q = float(np.sum(w * (mu - np.sum(w * mu) / np.sum(w)) ** 2))
    df = len(tested) - 1
    return SubgroupResult(by, groups, overall, q, df, float(stats.chi2.sf(q, df)))


def _rows(
    fit: RowFits,
    labels: list[str],
    years: list[int | None],
    totals_hm: FloatArray,
    transform: str,
    test: str,
    level: float,
) -> list[BreakdownRow]:
    k = fit.k
    knha = test == "knha"
    df = np.maximum(k - 1.0, 1.0)
    crit = (
        stats.t.ppf(0.5 + level / 2, df)
        if knha
        else np.full(k.size, stats.norm.ppf(0.5 + level / 2))
    )
    se = fit.se_knha if knha else fit.se
    values = np.stack([fit.mu, fit.mu - crit * se, fit.mu + crit * se])
    if transform == "logit":
        props = 1.0 / (1.0 + np.exp(-values))
    elif transform == "PAS":
        props = np.sin(np.clip(values, 0.0, np.pi / 2)) ** 2
    elif transform == "PFT":
        props = inverse_pft(values, totals_hm[None, :])
    else:
        props = values
    with np.errstate(divide="ignore", invalid="ignore"):
        i2 = 100.0 * fit.tau2 / (fit.tau2 + fit.s2_typical)
    out = []
    for j, label in enumerate(labels):
        ok = k[j] >= 2
        out.append(
            BreakdownRow(
                label=label,
                k=int(k[j]),
                year=years[j],
                estimate=float(props[0, j]) if ok else None,
                ci_low=float(props[1, j]) if ok else None,
                ci_high=float(props[2, j]) if ok else None,
                tau2=float(fit.tau2[j]) if ok else None,
                i2=float(i2[j]) if ok else None,
            )
        )
    return out


def _subset_fits(
    studies: Sequence[Study], kind: str, *, transform: str, method: str, test: str
) -> tuple[RowFits, FloatArray, str, str]:
    """Fit every subset of ``kind``; leave-one-out starts from the all-studies tau²."""
    transform, method = normalise_transform(transform), normalise_method(method)
    test = normalise_test(test)
    _, x, n = _arrays(studies)
    es = effect_sizes(x, n, transform)
    full = float(fit_rows(es.yi, es.vi, "all", method).tau2[0]) if x.size > 1 else 0.0
    start = np.full(x.size, full) if kind == "loo" else None
    fit = fit_rows(es.yi, es.vi, kind, method, start, center=full)
    if method != "DL" and not bool(np.all(fit.converged)):
        fit = fit_rows(es.yi, es.vi, kind, "DL")
    # As metafor's leave1out()/cumul() with transf.ipft.hm and targs = list(ni = <all n>): every
    # row is back-transformed with the harmonic mean of ALL the studies' sizes.
    totals_hm = np.full(n.size, 1.0 / float(np.mean(1.0 / n)))
    return fit, totals_hm, transform, test


def leave_one_out(
    studies: Sequence[Study],
    *,
    transform: str = "logit",
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> list[BreakdownRow]:
    """Pool without each study in turn; row ``label`` names the study left out."""
    if not studies:
        return []
    fit, hm, tr, te = _subset_fits(studies, "loo", transform=transform, method=method, test=test)
    return _rows(fit, [s.label for s in studies], [s.year for s in studies], hm, tr, te, level)


def publication_order(studies: Sequence[Study]) -> list[Study]:
    """Studies sorted by year (unknown years last), ties in input order."""
    return sorted(studies, key=lambda s: (s.year is None, s.year or 0))


def cumulative(
    studies: Sequence[Study],
    *,
    transform: str = "logit",
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> list[BreakdownRow]:
    """Pool the first 1, 2, …, k studies in publication order; row ``label`` is the study added."""
    ordered = publication_order(studies)
    if not ordered:
        return []
    fit, hm, tr, te = _subset_fits(
        ordered, "cumulative", transform=transform, method=method, test=test
    )
    return _rows(fit, [s.label for s in ordered], [s.year for s in ordered], hm, tr, te, level)


def rows_to_dicts(rows: Sequence[BreakdownRow]) -> list[dict[str, Any]]:
    """JSON-ready list of breakdown rows."""
    return [_finite(asdict(r)) for r in rows]
