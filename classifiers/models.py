"""Training and scoring the screening model (a class-weighted linear SVM on TF-IDF features).

``train`` fits the features on the training texts, runs stratified K-fold cross-validation to get
an out-of-fold score for every training record, and keeps the *average* of the K fold models as
the model: for a linear model the mean of the fold decision values equals the decision value of
the mean weights, so new records are scored by the same kind of model (fitted on (K-1)/K of the
data) that produced the out-of-fold scores the threshold is chosen from. Decision values are
mapped to probabilities by Platt scaling fitted on the out-of-fold values.
Errors: :class:`~classifiers.errors.TrainingDataError` for unusable texts/labels.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from classifiers.errors import TrainingDataError
from classifiers.features import FeatureSpace, fit_features

logger = logging.getLogger(__name__)

ALGORITHM = "tfidf-word12+linear-svm-balanced+platt"
SVM_C = 0.1
N_FOLDS = 5
# Queue ranking (active learning): includes get INCLUDE_RATIO times the total weight of the
# excludes, whatever their counts (ASReview's "balanced" sample weights, ratio 9.8), C 0.11.
QUEUE_SVM_C = 0.11
INCLUDE_RATIO = 9.8


def make_classifier(seed: int = 0) -> LinearSVC:
    """The linear classifier used for training and for queue ranking."""
    return LinearSVC(C=SVM_C, class_weight="balanced", random_state=seed)


def make_queue_classifier(seed: int = 0) -> LinearSVC:
    """The linear classifier refitted between reviewer clicks (fit with ``include_weights``)."""
    return LinearSVC(C=QUEUE_SVM_C, random_state=seed)


def include_weights(labels: np.ndarray, ratio: float = INCLUDE_RATIO) -> np.ndarray:
    """Sample weights giving the includes ``ratio`` times the excludes' total weight.

    Weights are rescaled to sum to the number of records, so C keeps its meaning as the
    labelled set grows. Both classes must be present.
    """
    y = np.asarray(labels)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("include_weights needs at least one include and one exclude")
    weights = np.where(y == 1, 1.0, n_pos / (ratio * n_neg))
    out: np.ndarray = weights * (len(y) / weights.sum())
    return out


@dataclass
class TrainedModel:
    """A trained screening model with what is needed to trace and audit its scores."""

    version: str
    algorithm: str
    n_train: int
    n_pos: int
    seed: int
    cv: dict[str, float]
    space: FeatureSpace
    coef: np.ndarray  # mean of the fold models' weights, shape (n_features,)
    intercept: float
    calibration: tuple[float, float]  # Platt slope and offset on decision values
    oof_scores: np.ndarray = field(repr=False)  # calibrated out-of-fold probabilities
    oof_labels: np.ndarray = field(repr=False)


def check_training_data(texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Validate texts/labels and return labels as an int array; raise TrainingDataError."""
    y = np.asarray(labels)
    if len(texts) != y.shape[0] or y.ndim != 1:
        raise TrainingDataError(f"{len(texts)} texts but {y.shape[0]} labels: give one label each")
    if not np.isin(y, (0, 1)).all():
        raise TrainingDataError("labels must be 0 (excluded) or 1 (included)")
    n_pos, n_neg = int(y.sum()), int((y == 0).sum())
    if n_pos < 2 or n_neg < 2:
        raise TrainingDataError(
            f"{n_pos} included and {n_neg} excluded records: training needs at least 2 of each "
            "(rank with cold_start_rank until then)"
        )
    return y.astype(np.int64)


def _version(texts: Sequence[str], y: np.ndarray, seed: int) -> str:
    digest = hashlib.sha256(f"{ALGORITHM}|{seed}|{SVM_C}|{N_FOLDS}".encode())
    for text, label in zip(texts, y, strict=True):
        digest.update(f"{label}\x1f{text}\x1e".encode())
    return f"svm1-{digest.hexdigest()[:12]}"


def _platt(decision: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    platt = LogisticRegression(C=1e4).fit(decision.reshape(-1, 1), y)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))
    return out


def cv_figures(scores: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Cross-validated figures from out-of-fold scores: ROC AUC, average precision, WSS@95."""
    order = np.argsort(-scores, kind="stable")
    found = np.cumsum(y[order])
    n95 = int(np.searchsorted(found, np.ceil(0.95 * y.sum()))) + 1
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "average_precision": float(average_precision_score(y, scores)),
        "wss95": float((len(y) - n95) / len(y) - 0.05),
    }


def train(
    texts: Sequence[str], labels: Sequence[int] | np.ndarray, *, seed: int, n_folds: int = N_FOLDS
) -> TrainedModel:
    """Fit features and a cross-fitted linear model on a review's decisions.

    Returns the averaged fold model with calibrated out-of-fold scores and CV figures.
    Raises TrainingDataError when the labels have fewer than 2 records of either class.
    """
    y = check_training_data(texts, labels)
    space = fit_features(texts)
    X = space.transform(texts)
    n_splits = int(min(n_folds, y.sum(), (y == 0).sum()))
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    decision = np.zeros(len(y))
    coef = np.zeros(X.shape[1])
    intercept = 0.0
    for fit_idx, held_idx in folds.split(np.zeros(len(y)), y):
        clf = make_classifier(seed).fit(X[fit_idx], y[fit_idx])
        decision[held_idx] = clf.decision_function(X[held_idx])
        coef += clf.coef_[0] / n_splits
        intercept += float(clf.intercept_[0]) / n_splits
    slope, offset = _platt(decision, y)
    oof = _sigmoid(slope * decision + offset)
    model = TrainedModel(
        version=_version(texts, y, seed), algorithm=ALGORITHM, n_train=len(y),
        n_pos=int(y.sum()), seed=seed, cv=cv_figures(oof, y), space=space,
        coef=coef.astype(np.float32), intercept=intercept, calibration=(slope, offset),
        oof_scores=oof, oof_labels=y,
    )
    logger.info("trained %s on %d records (%d included): %s",
                model.version, model.n_train, model.n_pos, model.cv)
    return model


def decision_values(model: TrainedModel, texts: Sequence[str]) -> np.ndarray:
    """Uncalibrated decision values of the averaged fold model."""
    X = model.space.transform(texts)
    return np.asarray(X @ model.coef, dtype=np.float64) + model.intercept


def score(model: TrainedModel, texts: Sequence[str]) -> np.ndarray:
    """Calibrated probability of inclusion for each text (same scale as ``oof_scores``)."""
    slope, offset = model.calibration
    return _sigmoid(slope * decision_values(model, texts) + offset)
