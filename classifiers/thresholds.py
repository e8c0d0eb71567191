"""Recall-target thresholds with a statistical bound, and recall estimates from audits.

Choosing a threshold: among the ``n`` included records of the training data, sort the
out-of-fold scores and put the threshold at the ``k``-th lowest, so records scoring below it
are auto-excluded and ``k - 1`` known includes would have been missed. If the training includes
and future includes are exchangeable, the recall on new records at this threshold (the share of
new includes scoring at or above it) follows Beta(n - k + 1, k); the lower ``1 - confidence``
quantile of that law is the one-sided Clopper–Pearson bound for ``n - k + 1`` successes out of
``n``. We take the largest ``k`` whose bound still reaches the target. When even ``k = 1``
fails, i.e. when ``n < log(1 - confidence) / log(target)`` (59 includes for 0.95 at 95%
confidence), there is too little data to bound recall and the choice refuses to auto-exclude.
A target of 1.0 never auto-excludes.

Estimating achieved recall: reviewers see every record above the threshold plus a random audit
sample of those below; ``estimate_recall`` extrapolates the audit's include rate to the
unaudited auto-excluded records with a Clopper–Pearson interval.
Bad arguments raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold (auto-exclude scores strictly below it), or a refusal with its reason."""

    threshold: float | None
    recall_target: float
    confidence: float
    n_pos: int
    reason: str
    recall_lower_bound: float | None = None
    oof_recall: float | None = None
    oof_excluded_share: float | None = None

    @property
    def auto_exclude(self) -> bool:
        """Whether this choice allows any auto-exclusion."""
        return self.threshold is not None


@dataclass(frozen=True)
class RecallEstimate:
    """Estimated recall of one pre-screened batch, with a two-sided confidence interval."""

    recall: float
    lower: float
    upper: float
    confidence: float


def _check_unit(value: float, name: str, *, closed: bool) -> None:
    ok = 0.0 < value <= 1.0 if closed else 0.0 < value < 1.0
    if not ok:
        interval = "(0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def min_positives(recall_target: float, confidence: float = 0.95) -> int | None:
    """Fewest training includes with which recall can be bounded at the target (None if 1.0)."""
    _check_unit(recall_target, "recall_target", closed=True)
    _check_unit(confidence, "confidence", closed=False)
    if recall_target >= 1.0:
        return None
    return math.ceil(math.log(1.0 - confidence) / math.log(recall_target) - 1e-12)


def recall_lower_bound(found: int, total: int, confidence: float = 0.95) -> float:
    """One-sided Clopper–Pearson lower bound on a recall of ``found`` out of ``total``."""
    if found <= 0:
        return 0.0
    return float(beta.ppf(1.0 - confidence, found, total - found + 1))


def choose_threshold(
    oof_scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    recall_target: float = 0.95,
    confidence: float = 0.95,
) -> ThresholdChoice:
    """Pick the highest threshold whose recall lower bound reaches ``recall_target``.

    ``oof_scores`` must be out-of-fold scores (higher = more likely included). Returns a
    choice with ``threshold=None`` and a reason when the target is 1.0 or there are too few
    includes to bound recall.
    """
    scores = np.asarray(oof_scores, dtype=np.float64)
    y = np.asarray(labels)
    if scores.shape != y.shape or scores.ndim != 1:
        raise ValueError("oof_scores and labels must be 1-D and of the same length")
    needed = min_positives(recall_target, confidence)
    positives = np.sort(scores[y == 1])
    n = int(positives.size)
    if needed is None:
        return ThresholdChoice(
            None, recall_target, confidence, n, reason="recall target 1.0: never auto-exclude"
        )
    if n < needed:
        return ThresholdChoice(
            None, recall_target, confidence, n,
            reason=(
                f"{n} included records in the training data; {needed} are needed to bound "
                f"recall at {recall_target:g} with {confidence:.0%} confidence"
            ),
        )
    # bounds[k-1] is the bound when the threshold is the k-th lowest include (k-1 missed).
    found = n - np.arange(n)
    bounds = beta.ppf(1.0 - confidence, found, n - found + 1)
    k = int(np.flatnonzero(bounds >= recall_target).max()) + 1
    threshold = float(positives[k - 1])
    return ThresholdChoice(
        threshold, recall_target, confidence, n,
        reason=(
            f"threshold at the lowest of {n} out-of-fold include scores"
            + ("" if k == 1 else f" but {k - 1}")
            + f": recall >= {bounds[k - 1]:.3f} with {confidence:.0%} confidence"
        ),
        recall_lower_bound=float(bounds[k - 1]),
        oof_recall=float(np.mean(positives >= threshold)),
        oof_excluded_share=float(np.mean(scores < threshold)),
    )


def estimate_recall(
    n_found: int,
    n_auto_excluded: int,
    n_audited: int,
    n_audit_included: int,
    confidence: float = 0.95,
) -> RecallEstimate:
    """Recall of a pre-screened batch, from what reviewers found and the audit sample.

    ``n_found``: includes reviewers found (queue and audit together); ``n_auto_excluded``:
    records below the threshold, of which ``n_audited`` were audited and ``n_audit_included``
    of those were includes. Unaudited auto-excluded records are assumed to hold includes at the
    audit's rate (Clopper–Pearson interval). With no audit, the lower bound assumes the worst.
    """
    _check_unit(confidence, "confidence", closed=False)
    counts = (n_found, n_auto_excluded, n_audited, n_audit_included)
    if min(counts) < 0 or n_audited > n_auto_excluded or n_audit_included > n_audited:
        raise ValueError("counts must satisfy 0 <= n_audit_included <= n_audited <= n_auto_excluded")
    if n_audit_included > n_found:
        raise ValueError("n_found must include the includes found by the audit")
    unaudited = n_auto_excluded - n_audited
    if unaudited == 0:
        return RecallEstimate(1.0 if n_found else math.nan, 1.0, 1.0, confidence)
    alpha = 1.0 - confidence
    if n_audited == 0:
        p_hat, p_lo, p_hi = math.nan, 0.0, 1.0
    else:
        x, m = n_audit_included, n_audited
        p_hat = x / m
        p_lo = float(beta.ppf(alpha / 2, x, m - x + 1)) if x > 0 else 0.0
        p_hi = float(beta.ppf(1 - alpha / 2, x + 1, m - x)) if x < m else 1.0

    def recall(rate: float) -> float:
        missed = rate * unaudited
        return n_found / (n_found + missed) if n_found + missed > 0 else math.nan

    return RecallEstimate(recall(p_hat), recall(p_hi), recall(p_lo), confidence)
