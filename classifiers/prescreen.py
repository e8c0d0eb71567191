"""Pre-screening new records: auto-exclude below a recall-target threshold, audit a sample.

Each record gets one decision: ``review`` (at or above the threshold, or protected, e.g. flagged
by a rule), ``auto_exclude`` (below the threshold), or ``audit`` (below the threshold but drawn
at random to be reviewed anyway, so ``thresholds.estimate_recall`` can measure achieved recall).
Bad arguments raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from classifiers.models import TrainedModel, score
from classifiers.thresholds import ThresholdChoice

logger = logging.getLogger(__name__)

REVIEW = "review"
AUDIT = "audit"
AUTO_EXCLUDE = "auto_exclude"
DEFAULT_AUDIT_FRACTION = 0.1


@dataclass(frozen=True)
class PrescreenResult:
    """Scores and decisions for a batch, traceable to the model and threshold that made them."""

    scores: np.ndarray
    decisions: np.ndarray  # of REVIEW / AUDIT / AUTO_EXCLUDE
    model_version: str
    threshold: float | None

    @property
    def to_review(self) -> np.ndarray:
        """Indices reviewers must see (queue and audit), highest score first."""
        idx = np.flatnonzero(self.decisions != AUTO_EXCLUDE)
        return idx[np.argsort(-self.scores[idx], kind="stable")]

    def count(self, decision: str) -> int:
        """Number of records with ``decision``."""
        return int(np.sum(self.decisions == decision))


def prescreen(
    model: TrainedModel,
    texts: Sequence[str],
    threshold: float | ThresholdChoice | None,
    *,
    audit_fraction: float = DEFAULT_AUDIT_FRACTION,
    rng: np.random.Generator,
    protect: Sequence[bool] | np.ndarray | None = None,
) -> PrescreenResult:
    """Score ``texts`` and decide review / auto-exclude / audit for each.

    ``threshold`` None (or a refusing ThresholdChoice) sends everything to review. Of the
    records below the threshold, ``ceil(audit_fraction * n)`` drawn with ``rng`` are audited.
    ``protect`` marks records that must never be auto-excluded (e.g. flagged: no abstract).
    """
    if not 0.0 <= audit_fraction <= 1.0:
        raise ValueError(f"audit_fraction must be in [0, 1], got {audit_fraction!r}")
    if isinstance(threshold, ThresholdChoice):
        threshold = threshold.threshold
    scores = score(model, texts) if len(texts) else np.zeros(0)
    decisions = np.full(len(scores), REVIEW, dtype=object)
    if threshold is not None:
        below = scores < threshold
        if protect is not None:
            guard = np.asarray(protect, dtype=bool)
            if guard.shape != below.shape:
                raise ValueError("protect must have one flag per text")
            below &= ~guard
        candidates = np.flatnonzero(below)
        n_audit = math.ceil(audit_fraction * candidates.size)
        audited = rng.choice(candidates, size=n_audit, replace=False)
        decisions[candidates] = AUTO_EXCLUDE
        decisions[audited] = AUDIT
    result = PrescreenResult(scores, decisions, model.version, threshold)
    logger.info("pre-screened %d records with %s: %d review, %d audit, %d auto-excluded",
                len(scores), model.version, result.count(REVIEW), result.count(AUDIT),
                result.count(AUTO_EXCLUDE))
    return result
