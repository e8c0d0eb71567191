"""Ordering the reviewer queue: cold-start similarity ranking and fast active-learning refits.

``cold_start_rank`` serves a review with no excluded decisions yet (e.g. a baseline of included
studies only): it scores records by TF-IDF cosine similarity to the included studies and by the
protocol's keywords; it never auto-excludes anything. :class:`QueueRanker` fits the features of a
whole pool once, then each ``rank`` call refits only the linear classifier on the labelled rows,
which is what makes a refit between two reviewer clicks possible on a 10,000-record queue.
The refit is a linear SVM on TF-IDF word uni+bigrams (no stop-word list, no minimum document
frequency) with the includes weighted to 9.8 times the excludes' total weight
(``models.include_weights``); the settings were chosen in the simulation benchmark.
``rank`` falls back to the cold-start similarity (on the cold-start features, fitted on first
need) while one of the two classes is missing.
Bad arguments raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from classifiers.features import QUEUE_WORD_PARAMS, fit_features
from classifiers.models import include_weights, make_queue_classifier

logger = logging.getLogger(__name__)

KEYWORD_WEIGHT = 0.5


def _keyword_scores(texts: Sequence[str], keywords: Sequence[str]) -> np.ndarray:
    patterns = [
        re.compile(r"\b" + re.escape(k.strip().lower()).replace(r"\*", r"\w*") + r"\b")
        for k in keywords if k.strip()
    ]
    if not patterns:
        return np.zeros(len(texts))
    hits = [[bool(p.search(t.lower())) for p in patterns] for t in texts]
    scores: np.ndarray = np.asarray(hits, dtype=np.float64).mean(axis=1)
    return scores


def _similarity(X: sparse.csr_matrix, positives: sparse.csr_matrix) -> np.ndarray:
    centroid = np.asarray(positives.mean(axis=0)).ravel()
    norm = np.linalg.norm(centroid)
    if norm == 0:
        return np.zeros(X.shape[0])
    return np.asarray(X @ (centroid / norm)).ravel()


def cold_start_rank(
    texts: Sequence[str], positives_texts: Sequence[str], keywords: Sequence[str] = ()
) -> np.ndarray:
    """Relevance scores in [0, 1] from similarity to included studies and keyword hits.

    Higher is more relevant. With no included studies the keywords alone rank; with neither,
    every score is 0 (the caller keeps its own order).
    """
    if not texts:
        return np.zeros(0)
    keyword_part = _keyword_scores(texts, keywords)
    if not positives_texts:
        return keyword_part
    space = fit_features([*texts, *positives_texts])
    similarity = _similarity(space.transform(texts), space.transform(positives_texts))
    if not any(k.strip() for k in keywords):
        return similarity
    return (1 - KEYWORD_WEIGHT) * similarity + KEYWORD_WEIGHT * keyword_part


class QueueRanker:
    """Features of a pool fitted once; ``rank`` refits the classifier on the labelled records."""

    def __init__(self, texts: Sequence[str], *, seed: int = 0) -> None:
        """Fit the feature space on every text of the pool (labelled and pending)."""
        self.seed = seed
        self.texts = list(texts)
        self.space = fit_features(self.texts, word_params=QUEUE_WORD_PARAMS)
        self.X = self.space.transform(self.texts)
        self._cold_X: sparse.csr_matrix | None = None

    def _cold_features(self) -> sparse.csr_matrix:
        if self._cold_X is None:
            self._cold_X = fit_features(self.texts).transform(self.texts)
        return self._cold_X

    def scores(self, labelled: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray,
               ) -> np.ndarray:
        """Relevance scores of every record of the pool after a refit (higher first)."""
        idx = np.asarray(labelled, dtype=np.int64)
        y = np.asarray(labels)
        if idx.shape != y.shape:
            raise ValueError("labelled and labels must have the same length")
        if (y == 1).any() and (y == 0).any():
            clf = make_queue_classifier(self.seed)
            clf.fit(self.X[idx], y, sample_weight=include_weights(y))
            return np.asarray(clf.decision_function(self.X), dtype=np.float64)
        if (y == 1).any():
            cold = self._cold_features()
            return _similarity(cold, cold[idx[y == 1]])
        return np.zeros(self.X.shape[0])

    def rank(self, labelled: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray,
             ) -> np.ndarray:
        """Indices of the unlabelled records, most relevant first."""
        scores = self.scores(labelled, labels)
        pending = np.setdiff1d(np.arange(self.X.shape[0]), np.asarray(labelled, dtype=np.int64))
        return pending[np.argsort(-scores[pending], kind="stable")]


def rank_queue(
    texts: Sequence[str],
    labelled: Sequence[int] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    seed: int = 0,
) -> np.ndarray:
    """One-shot ranking: indices of the unlabelled ``texts``, most relevant first.

    For repeated refits on the same pool, keep a :class:`QueueRanker` instead (the feature
    fit is the slow part).
    """
    return QueueRanker(texts, seed=seed).rank(labelled, labels)
