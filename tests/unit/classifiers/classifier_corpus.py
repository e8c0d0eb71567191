"""Synthetic screening corpora for the classifier unit tests (no shared data)."""

from __future__ import annotations

import numpy as np

TOPIC = ["herniation", "resorption", "lumbar", "disc", "regression", "spontaneous", "mri"]
OTHER = [
    "cardiac",
    "insulin",
    "migraine",
    "tumour",
    "asthma",
    "renal",
    "stroke",
    "sepsis",
    "fracture",
    "anaemia",
    "hepatitis",
    "glaucoma",
    "obesity",
    "psoriasis",
    "dementia",
]
FILLER = ["patients", "study", "results", "methods", "group", "treatment", "outcome", "years"]


def make_corpus(
    n: int, n_pos: int, seed: int, overlap: float = 0.0
) -> tuple[list[str], np.ndarray]:
    """Texts where includes use topic words; ``overlap`` mixes topic words into excludes."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=int)
    labels[rng.choice(n, size=n_pos, replace=False)] = 1
    texts = []
    for label in labels:
        words = list(rng.choice(FILLER, size=12))
        pool = TOPIC if label or rng.random() < overlap else OTHER
        words += list(rng.choice(pool, size=6))
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts, labels
