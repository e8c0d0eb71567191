"""Queue ranking: active-learning refits and cold-start similarity."""

from __future__ import annotations

import numpy as np
import pytest
from classifier_corpus import make_corpus

from classifiers.models import INCLUDE_RATIO, include_weights
from classifiers.ranking import QueueRanker, cold_start_rank, rank_queue


def test_separable_pool_ranks_every_include_first() -> None:
    texts, labels = make_corpus(400, 40, seed=11)  # no overlap: separable
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    labelled = [*pos[:3], *neg[:3]]
    order = QueueRanker(texts, seed=0).rank(labelled, labels[labelled])
    assert len(order) == 394 and not set(order) & set(labelled)
    assert set(order[:37]) == set(pos[3:])


def test_refit_uses_the_new_labels() -> None:
    texts, labels = make_corpus(300, 30, seed=12)
    ranker = QueueRanker(texts)
    few = [int(np.flatnonzero(labels == 1)[0]), int(np.flatnonzero(labels == 0)[0])]
    many = list(range(150))
    precision = []
    for labelled in (few, many):
        order = ranker.rank(labelled, labels[labelled])
        k = int(labels.sum() - labels[labelled].sum())
        precision.append(labels[order[:k]].mean())
    assert precision[1] == 1.0 >= precision[0]
    assert np.array_equal(rank_queue(texts, many, labels[many]), ranker.rank(many, labels[many]))


def test_only_positive_labels_fall_back_to_similarity() -> None:
    texts, labels = make_corpus(200, 20, seed=13)
    labelled = list(np.flatnonzero(labels == 1)[:3])
    order = QueueRanker(texts).rank(labelled, [1, 1, 1])
    assert labels[order[:17]].sum() == 17


def test_cold_start_prefers_texts_like_the_included_studies() -> None:
    texts, labels = make_corpus(200, 20, seed=14)
    included = make_corpus(10, 10, seed=15)[0]
    scores = cold_start_rank(texts, included, keywords=[])
    assert scores[labels == 1].min() > scores[labels == 0].max()


def test_cold_start_keywords_alone_and_combined() -> None:
    texts = ["lumbar disc herniation resorbed", "insulin in diabetes", "disc herniation regression"]
    only_keywords = cold_start_rank(texts, [], keywords=["herniation", "resor*"])
    assert list(only_keywords) == [1.0, 0.0, 0.5]
    combined = cold_start_rank(texts, ["spontaneous regression of disc herniation"], ["resor*"])
    assert combined[1] == combined.min()
    assert cold_start_rank([], ["x"], ["y"]).size == 0


def test_include_weights_give_the_includes_the_stated_share() -> None:
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
    weights = include_weights(y)
    assert weights.sum() == pytest.approx(12.0)
    assert weights[y == 1].sum() / weights[y == 0].sum() == pytest.approx(INCLUDE_RATIO)
    assert np.all(weights[y == 1] == weights[0]) and weights[0] > weights[1]
    with pytest.raises(ValueError, match="one include and one exclude"):
        include_weights(np.array([1, 1]))
