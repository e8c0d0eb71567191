"""One recompute, pure: audit → leave out impossible rows → pool (→ subgroups), as one bundle.

:func:`analyse` is what the CLI (``pool``, ``estimates``) and :mod:`.store` call. Its
``to_dict()`` is the documented ``--json`` output:

- ``result``: the pooled result (``estimate``, ``ci_low``, ``ci_high``, ``pi_low``, ``pi_high``,
  ``common_estimate``…, transformed-scale ``*_t`` fields, ``tau2``, ``tau``, ``q``, ``q_df``,
  ``q_p``, ``i2``, ``h2``, ``heterogeneity_class``, ``loglik`` (metafor's ``logLik()``),
  ``converged`` (the requested estimator's search converged), ``degenerate`` (a GLMM without a
  finite maximum), ``k``, ``events``, ``total``, ``method``,
  ``transform``, ``test``, ``level``, ``pooled``, ``notes``, ``studies``: label, events, total,
  proportion, ci_low, ci_high, yi, vi, weight_random, weight_common, corrected).
- ``audit``: findings (``severity``, ``code``, ``study``, ``message``, ``excludes``).
- ``excluded``: study label → why it was left out of pooling.
- ``sensitivity`` (only when a retracted study was left out): the same pooling with the
  retracted studies put back (``estimate``, ``ci_low``, ``ci_high``, ``k``, ``studies``: the
  retracted labels), so a reader sees what the retraction changed.
- ``subgroups`` (with ``by``): ``by``, ``q_between``, ``df_between``, ``p_between``, ``groups``.
Proportions are on the 0–1 scale; I² in percent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.meta_analysis.audit import Finding, Headline, audit, poolable
from services.meta_analysis.breakdowns import SubgroupResult, subgroups
from services.meta_analysis.glmm import pool_glmm
from services.meta_analysis.pooling import pool
from services.meta_analysis.results import PoolResult
from services.meta_analysis.studies import Study


@dataclass(frozen=True)
class Analysis:
    """The audit, the studies used and left out, the pooled result and optional subgroups."""

    findings: list[Finding]
    included: list[Study]
    excluded: dict[str, str]
    result: PoolResult
    subgroups: SubgroupResult | None = None
    sensitivity: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON form (see the module docstring)."""
        data: dict[str, Any] = {
            "result": self.result.to_dict(),
            "audit": [f.to_dict() for f in self.findings],
            "excluded": dict(self.excluded),
        }
        if self.subgroups is not None:
            data["subgroups"] = self.subgroups.to_dict()
        if self.sensitivity is not None:
            data["sensitivity"] = dict(self.sensitivity)
        return data


def pool_studies(studies: Sequence[Study], **options: Any) -> PoolResult:
    """Pool ``studies`` with ``options`` (``method="GLMM"`` selects the binomial-normal model)."""
    events = [s.events for s in studies]
    totals = [s.total for s in studies]
    labels = [s.label for s in studies]
    if str(options.get("method", "REML")).upper() == "GLMM":
        return pool_glmm(events, totals, labels=labels, level=options.get("level", 0.95))
    return pool(events, totals, labels=labels, **options)


def analyse(
    studies: Sequence[Study],
    *,
    headline: Headline | None = None,
    by: str | None = None,
    **options: Any,
) -> Analysis:
    """Audit ``studies``, pool the poolable ones with ``options``; subgroups when ``by`` is given."""
    findings = audit(studies, headline)
    included, excluded = poolable(studies, findings)
    result = pool_studies(included, **options)
    sensitivity = _with_retracted(studies, findings, **options)
    groups = None
    if by is not None:
        if str(options.get("method", "REML")).upper() == "GLMM":
            options = {**options, "method": "REML"}
        groups = subgroups(included, by, **options)
    return Analysis(findings, included, excluded, result, groups, sensitivity)


def _with_retracted(
    studies: Sequence[Study], findings: Sequence[Finding], **options: Any
) -> dict[str, Any] | None:
    """The sensitivity estimate with the retracted studies pooled too (None without any)."""
    retracted = [s for s in studies if s.retracted is not None]
    if not retracted:
        return None
    others = [f for f in findings if f.code != "retracted"]
    kept, _ = poolable(studies, others)
    if not kept:
        return None
    result = pool_studies(kept, **options)
    return {
        "estimate": result.estimate,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "k": result.k,
        "studies": [s.label for s in retracted if s in kept],
    }
