"""Training, scoring, pre-screening and persistence on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from classifier_corpus import make_corpus

from classifiers import persistence
from classifiers.errors import IncompatibleModelError, ModelFormatError, TrainingDataError
from classifiers.models import score, train
from classifiers.prescreen import AUDIT, AUTO_EXCLUDE, REVIEW, prescreen
from classifiers.thresholds import choose_threshold


def test_train_reports_sizes_version_and_cv(corpus) -> None:
    texts, labels = corpus
    model = train(texts, labels, seed=1)
    assert (model.n_train, model.n_pos) == (300, 30)
    assert model.version.startswith("svm1-")
    assert model.oof_scores.shape == (300,) and np.all(
        (model.oof_scores >= 0) & (model.oof_scores <= 1)
    )
    assert model.cv["roc_auc"] > 0.9 and model.cv["wss95"] > 0.5
    assert train(texts, labels, seed=1).version == model.version  # deterministic
    assert train(texts, labels, seed=2).version != model.version


def test_scores_rank_includes_first_and_are_calibrated(corpus) -> None:
    texts, labels = corpus
    model = train(texts, labels, seed=1)
    new_texts, new_labels = make_corpus(200, 20, seed=99, overlap=0.05)
    probs = score(model, new_texts)
    assert probs[new_labels == 1].mean() > 0.5 > probs[new_labels == 0].mean()
    assert abs(probs.mean() - new_labels.mean()) < 0.1  # Platt scaling: near the base rate


@pytest.mark.parametrize(
    ("texts", "labels", "match"),
    [
        (["a", "b"], [1], "2 texts but 1 labels"),
        (["a b", "c d", "e f"], [1, 0, 2], "0 .*or 1"),
        (["a b", "c d", "e f"], [1, 0, 0], "at least 2 of each"),
    ],
)
def test_train_refuses_bad_data(texts, labels, match) -> None:
    with pytest.raises(TrainingDataError, match=match):
        train(texts, labels, seed=0)


def test_prescreen_auto_excludes_below_threshold_and_audits_a_sample() -> None:
    texts, labels = make_corpus(1200, 120, seed=3, overlap=0.05)
    model = train(texts, labels, seed=0)
    choice = choose_threshold(model.oof_scores, model.oof_labels)
    assert choice.auto_exclude
    new_texts, _ = make_corpus(500, 25, seed=4, overlap=0.05)
    protect = np.zeros(500, dtype=bool)
    protect[:50] = True
    result = prescreen(
        model, new_texts, choice, audit_fraction=0.1, rng=np.random.default_rng(0), protect=protect
    )
    below = (result.scores < choice.threshold) & ~protect
    assert result.count(AUTO_EXCLUDE) + result.count(AUDIT) == below.sum() > 0
    assert result.count(AUDIT) == int(np.ceil(0.1 * below.sum()))
    assert set(result.decisions[~below]) == {REVIEW}
    assert set(result.decisions[:50]) == {REVIEW}  # protected records are never excluded
    assert result.model_version == model.version


def test_prescreen_without_threshold_reviews_everything(corpus) -> None:
    texts, labels = corpus
    model = train(texts, labels, seed=0)
    refusal = choose_threshold(model.oof_scores, model.oof_labels)  # 30 includes: too few
    assert not refusal.auto_exclude
    result = prescreen(model, texts[:40], refusal, rng=np.random.default_rng(0))
    assert set(result.decisions) == {REVIEW}
    assert list(result.to_review) == list(np.argsort(-result.scores, kind="stable"))


def test_persistence_round_trip(corpus) -> None:
    texts, labels = corpus
    model = train(texts, labels, seed=5)
    blob = persistence.dumps(model)
    assert b"pickle" not in blob[:8] and persistence.model_version(blob) == model.version
    loaded = persistence.loads(blob)
    assert (loaded.version, loaded.n_train, loaded.n_pos, loaded.cv) == (
        model.version,
        model.n_train,
        model.n_pos,
        model.cv,
    )
    np.testing.assert_allclose(score(loaded, texts), score(model, texts), rtol=1e-6)
    np.testing.assert_array_equal(loaded.oof_labels, model.oof_labels)


def test_persistence_refuses_other_versions_and_garbage(corpus, monkeypatch) -> None:
    texts, labels = corpus
    model = train(texts, labels, seed=5)
    monkeypatch.setattr(persistence, "FORMAT_VERSION", 99)
    future = persistence.dumps(model)
    monkeypatch.undo()
    with pytest.raises(IncompatibleModelError, match=r"format version 99.*retrain"):
        persistence.loads(future)
    with pytest.raises(ModelFormatError, match="magic"):
        persistence.loads(b"not a model at all")
    with pytest.raises(ModelFormatError):
        persistence.loads(persistence.MAGIC + b"\x00\x00\x00\x05junk")
