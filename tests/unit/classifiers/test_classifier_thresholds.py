"""Threshold choice at a recall target with a Clopper–Pearson bound; recall estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import beta

from classifiers.thresholds import (
    choose_threshold,
    estimate_recall,
    min_positives,
    recall_lower_bound,
)


def scores_with(n_pos: int, n_neg: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.uniform(0.3, 1.0, n_pos), rng.uniform(0.0, 0.6, n_neg)])
    labels = np.concatenate([np.ones(n_pos, int), np.zeros(n_neg, int)])
    return scores, labels


def test_min_positives_for_095_at_95_percent_is_59() -> None:
    assert min_positives(0.95, 0.95) == 59
    assert 0.95**59 <= 0.05 < 0.95**58


def test_refuses_when_too_few_positives() -> None:
    scores, labels = scores_with(58, 500)
    choice = choose_threshold(scores, labels, recall_target=0.95, confidence=0.95)
    assert choice.threshold is None and not choice.auto_exclude
    assert "58" in choice.reason and "59" in choice.reason


def test_accepts_at_the_minimum_and_keeps_every_known_include() -> None:
    scores, labels = scores_with(59, 500)
    choice = choose_threshold(scores, labels, recall_target=0.95, confidence=0.95)
    assert choice.threshold == pytest.approx(scores[labels == 1].min())
    assert choice.oof_recall == 1.0
    assert choice.recall_lower_bound == pytest.approx(0.05 ** (1 / 59))


def test_threshold_is_the_highest_order_statistic_meeting_the_bound() -> None:
    scores, labels = scores_with(400, 2000, seed=3)
    choice = choose_threshold(scores, labels, recall_target=0.95, confidence=0.95)
    pos = np.sort(scores[labels == 1])
    k = int(np.searchsorted(pos, choice.threshold)) + 1  # threshold is the k-th lowest
    assert beta.ppf(0.05, 400 - k + 1, k) >= 0.95
    assert beta.ppf(0.05, 400 - k, k + 1) < 0.95  # one more miss would break the bound
    assert choice.oof_recall == pytest.approx((400 - k + 1) / 400)
    assert choice.oof_recall > 0.95  # conservative: above the point target
    assert 0 < choice.oof_excluded_share < 1


def test_target_one_never_auto_excludes() -> None:
    scores, labels = scores_with(1000, 1000)
    choice = choose_threshold(scores, labels, recall_target=1.0)
    assert choice.threshold is None and "never" in choice.reason


def test_bad_arguments_are_refused() -> None:
    scores, labels = scores_with(100, 100)
    with pytest.raises(ValueError, match="recall_target"):
        choose_threshold(scores, labels, recall_target=1.5)
    with pytest.raises(ValueError, match="same length"):
        choose_threshold(scores[:-1], labels)


def test_recall_lower_bound_matches_clopper_pearson() -> None:
    assert recall_lower_bound(20, 20, 0.95) == pytest.approx(0.05 ** (1 / 20))
    assert recall_lower_bound(0, 10) == 0.0
    assert recall_lower_bound(45, 50, 0.95) == pytest.approx(beta.ppf(0.05, 45, 6))


def test_estimate_recall_from_audit() -> None:
    # 900 auto-excluded, 90 audited, 1 include in the audit; reviewers found 19 includes.
    est = estimate_recall(n_found=19, n_auto_excluded=900, n_audited=90, n_audit_included=1)
    assert est.recall == pytest.approx(19 / (19 + 810 / 90))
    assert est.lower < est.recall < est.upper <= 1.0
    p_hi = beta.ppf(0.975, 2, 89)
    assert est.lower == pytest.approx(19 / (19 + p_hi * 810))


def test_estimate_recall_edge_cases() -> None:
    clean = estimate_recall(n_found=10, n_auto_excluded=50, n_audited=50, n_audit_included=0)
    assert (clean.recall, clean.lower, clean.upper) == (1.0, 1.0, 1.0)
    blind = estimate_recall(n_found=10, n_auto_excluded=50, n_audited=0, n_audit_included=0)
    assert math.isnan(blind.recall) and blind.lower == pytest.approx(10 / 60) and blind.upper == 1
    with pytest.raises(ValueError, match="n_audited"):
        estimate_recall(n_found=1, n_auto_excluded=5, n_audited=6, n_audit_included=0)
