"""Meta-analysis of proportions for living reviews: pure functions on numbers, no database.

Public API (all results are frozen dataclasses with ``to_dict()`` for JSON):

- ``pool(events, totals, *, labels=None, transform="logit", method="REML", test="z",
  level=0.95) -> PoolResult`` — random-effects and common-effect pooled proportion with CI, PI
  (as metafor's ``predict.rma``), Q and its p-value, I², H², tau², tau, and notes (continuity
  correction, PFT caveat, REML → DL fallback). Transforms: ``logit`` (PLO), ``PFT``, ``PAS``,
  ``PR``; estimators: ``REML``, ``DL``, ``PM``, ``ML``; tests: ``z`` or ``knha``
  (Hartung–Knapp–Sidik–Jonkman). k = 0 or 1 gives ``pooled=False`` with a note, never NaN.
- ``pool_glmm(events, totals, *, labels=None, level=0.95) -> PoolResult`` — binomial-normal
  GLMM, ML with 7-point adaptive Gauss–Hermite quadrature (metafor ``rma.glmm``/lme4 ``glmer``);
  data whose likelihood has no finite maximum (every study at 0 or n events, or τ² > 100) give
  ``pooled=False, degenerate=True`` with a note, never an exception.
- ``subgroups(studies, by, **options) -> SubgroupResult`` — pooled result per group and the
  between-group Q test; ``leave_one_out(...)`` and ``cumulative(...)`` (publication order).
- ``audit(studies, headline=None) -> list[Finding]`` with ``poolable(studies, findings)``:
  impossible values, percentage mismatches, likely duplicate cohorts, an unreproducible headline.
- ``compare(previous, current, thresholds) -> Changes`` — what changed between two snapshots.
- ``plots.forest_plot`` / ``plots.cumulative_plot`` — matplotlib figures to PNG/SVG.

Correctness: tests/reference/metafor_reference.R computes golden values with R metafor on 310
datasets (named and generated in awkward shapes); the unit tests compare every transform ×
estimator × test, leave-one-out and cumulative rows to 1e-6 relative and the GLMM to 1e-4
(README, "Pooled estimates", says where and why metafor itself is not the yardstick).

Errors (see :mod:`.errors`): ``MetaAnalysisError`` > ``InvalidStudyData`` (names study and
field), ``InvalidStudyFile`` (a CSV unusable as a whole), ``UnknownOption``.
"""

from services.meta_analysis.errors import InvalidStudyData, MetaAnalysisError, UnknownOption
from services.meta_analysis.glmm import pool_glmm
from services.meta_analysis.pooling import pool
from services.meta_analysis.results import PoolResult, StudyRow

__all__ = [
    "InvalidStudyData",
    "MetaAnalysisError",
    "PoolResult",
    "StudyRow",
    "UnknownOption",
    "pool",
    "pool_glmm",
]
