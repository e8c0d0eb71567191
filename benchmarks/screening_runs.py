"""The two benchmark procedures on one dataset: active-learning simulation and living replay.

Metrics exclude the two prior records (1 include, 1 exclude) from both counts, for our runs and
ASReview's alike: ``wss95`` = share of the remaining records not screened when 95% of the
remaining includes are found, minus 0.05; ``recall10`` = share of the remaining includes found
after screening 10% of the remaining records; ``refit_ms_median`` = median wall time of one
iteration (refit on the labelled records + ranking the pool).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from benchmarks.screening_data import Dataset, prior_records
from classifiers.errors import TrainingDataError
from classifiers.models import train
from classifiers.prescreen import AUTO_EXCLUDE, prescreen
from classifiers.ranking import QueueRanker
from classifiers.thresholds import choose_threshold, estimate_recall

RECALL_TARGET = 0.95
AUDIT_FRACTION = 0.1


def order_metrics(order: list[int], labels: np.ndarray, priors: tuple[int, int]) -> dict:
    """WSS@95 and recall@10% of a labelling order (row indices after the priors)."""
    n = len(labels) - 2
    relevant = int(labels.sum()) - 1
    found = np.cumsum(labels[np.asarray(order, dtype=np.int64)]) if order else np.zeros(0)
    need = math.ceil(0.95 * relevant)
    reached = np.flatnonzero(found >= need)
    wss = (n - (int(reached[0]) + 1)) / n - 0.05 if reached.size else math.nan
    n10 = math.ceil(0.1 * n)
    got = found[min(n10, len(found)) - 1] if len(found) else 0
    return {"wss95": wss, "recall10": float(got) / relevant}


def simulate(data: Dataset, seed: int) -> dict:
    """Our active-learning simulation: refit after every label, screen the top record."""
    y = data.labels
    priors = prior_records(y, seed)
    ranker = QueueRanker(data.texts, seed=seed)
    labelled = list(priors)
    order: list[int] = []
    relevant = int(y.sum()) - 1
    need, n10 = math.ceil(0.95 * relevant), math.ceil(0.1 * (len(y) - 2))
    found, times = 0, []
    while (found < need or len(order) < n10) and len(labelled) < len(y):
        start = time.perf_counter()
        top = int(ranker.rank(labelled, y[labelled])[0])
        times.append(time.perf_counter() - start)
        labelled.append(top)
        order.append(top)
        found += int(y[top])
    figures = order_metrics(order, y, priors)
    figures["refit_ms_median"] = 1000 * float(np.median(times))
    return figures


def asreview_figures(record: dict, data: Dataset) -> dict:
    """The same figures from a cached ASReview run."""
    figures = order_metrics(record["order"], data.labels, tuple(record["priors"]))
    figures["refit_ms_median"] = 1000 * float(np.median(record["iteration_s"]))
    return figures


@dataclass
class ReplayTotals:
    """Counts summed over the updates of one replay."""

    new: int = 0
    includes: int = 0
    found: int = 0
    unreviewed: int = 0
    updates: list[dict] = field(default_factory=list)


def _update(
    data: Dataset, reviewed: np.ndarray, new: np.ndarray, seed: int, confidence: float
) -> tuple[dict, np.ndarray]:
    y, texts = data.labels, data.texts
    train_texts = [texts[i] for i in reviewed]
    threshold, reason, version = None, "", None
    try:
        model = train(train_texts, y[reviewed], seed=seed)
        choice = choose_threshold(model.oof_scores, model.oof_labels, RECALL_TARGET, confidence)
        threshold, reason, version = choice.threshold, choice.reason, model.version
    except TrainingDataError as exc:
        reason = str(exc)
    seen = np.ones(new.size, dtype=bool)
    n_audit = n_audit_inc = 0
    if threshold is not None:
        protect = np.array([not data.abstracts[i] for i in new])
        result = prescreen(
            model,
            [texts[i] for i in new],
            threshold,
            audit_fraction=AUDIT_FRACTION,
            rng=np.random.default_rng(seed),
            protect=protect,
        )
        seen = result.decisions != AUTO_EXCLUDE
        below = result.scores < threshold
        n_audit = int(np.sum(below & seen & ~protect))
        n_audit_inc = int(np.sum(y[new][below & seen & ~protect]))
    n_auto = int(np.sum(~seen)) + n_audit
    found = int(y[new][seen].sum())
    estimate = estimate_recall(found, n_auto, n_audit, n_audit_inc)
    row = {
        "n_train": int(reviewed.size),
        "n_train_pos": int(y[reviewed].sum()),
        "model": version,
        "threshold": threshold,
        "reason": reason,
        "new": int(new.size),
        "includes": int(y[new].sum()),
        "found": found,
        "unreviewed": int(np.sum(~seen)),
        "recall_estimate": [estimate.recall, estimate.lower, estimate.upper],
    }
    return row, new[seen]


def replay(data: Dataset, seed: int, confidence: float = 0.95) -> dict:
    """Living-review replay: oldest 50% as baseline, then 5 updates of 10% each."""
    chrono = np.argsort(data.order_key, kind="stable")
    n = len(chrono)
    cuts = [round(n * f / 10) for f in range(5, 11)]
    reviewed = chrono[: cuts[0]]
    totals = ReplayTotals()
    for lo, hi in itertools.pairwise(cuts):
        new = chrono[lo:hi]
        row, seen = _update(data, reviewed, new, seed, confidence)
        reviewed = np.concatenate([reviewed, seen])
        totals.updates.append(row)
        totals.new += row["new"]
        totals.includes += row["includes"]
        totals.found += row["found"]
        totals.unreviewed += row["unreviewed"]
    return {
        "recall": totals.found / totals.includes if totals.includes else math.nan,
        "auto_excluded_share": totals.unreviewed / totals.new,
        "includes": totals.includes,
        "missed": totals.includes - totals.found,
        "updates_with_threshold": sum(u["threshold"] is not None for u in totals.updates),
        "updates": totals.updates,
    }
