"""Text features for screening: TF-IDF word uni/bigrams (character n-grams optional).

Two word settings: ``WORD_PARAMS`` (English stop words, min_df 2) for the trained, persisted
pre-screening model, and ``QUEUE_WORD_PARAMS`` (no stop-word list, min_df 1) for active-learning
queue ranking.

Input is plain text (``record_text`` joins title, abstract and MeSH terms/keywords). The
vectorizers are fitted on the texts a model is trained on (or, for queue ranking, on the whole
pool: the fit is unsupervised). A fitted :class:`FeatureSpace` can be rebuilt exactly from its
vocabularies and IDF weights, which is what ``persistence`` stores (no pickle).
No errors of its own: scikit-learn's ``ValueError`` on an empty vocabulary passes through.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

logger = logging.getLogger(__name__)

WORD_PARAMS: dict[str, Any] = {
    "analyzer": "word",
    "ngram_range": (1, 2),
    "sublinear_tf": True,
    "min_df": 2,
    "max_df": 0.95,
    "stop_words": "english",
    "dtype": np.float32,
}
# Queue ranking: no stop-word list, terms seen once kept (ASReview's elas_u4 settings); chosen by
# the fixed protocol stated in benchmarks/results/screening.md (simulation, 6 of 12 datasets).
QUEUE_WORD_PARAMS: dict[str, Any] = {**WORD_PARAMS, "min_df": 1, "stop_words": None}
CHAR_PARAMS: dict[str, Any] = {
    "analyzer": "char_wb",
    "ngram_range": (3, 5),
    "sublinear_tf": True,
    "min_df": 2,
    "max_df": 0.95,
    "dtype": np.float32,
}
# The char block is down-weighted so that whole words keep most of the say in a dot product.
CHAR_WEIGHT = 0.7


def record_text(title: str | None, abstract: str | None, keywords: str | None = None) -> str:
    """Join the fields a screening model reads (title, abstract, MeSH terms / keywords)."""
    return "\n".join(part.strip() for part in (title, abstract, keywords) if part and part.strip())


def _vectorizer(params: Mapping[str, Any], vocabulary: Sequence[str] | None = None) -> Any:
    kwargs = dict(params)
    if vocabulary is not None:
        kwargs["vocabulary"] = {term: i for i, term in enumerate(vocabulary)}
        kwargs.pop("min_df"), kwargs.pop("max_df")
    return TfidfVectorizer(**kwargs)


@dataclass
class FeatureSpace:
    """Fitted vectorizers; ``transform`` maps texts to one L2-normalised-per-block CSR matrix."""

    word: Any
    char: Any | None
    char_weight: float = CHAR_WEIGHT

    @property
    def n_features(self) -> int:
        """Number of columns of the transformed matrix."""
        n_char = len(self.char.vocabulary_) if self.char is not None else 0
        return len(self.word.vocabulary_) + n_char

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Features of ``texts`` in this space (unknown terms are ignored)."""
        blocks = [self.word.transform(texts)]
        if self.char is not None:
            blocks.append(self.char.transform(texts) * self.char_weight)
        return sparse.hstack(blocks, format="csr")

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Vocabularies (JSON-able) and IDF arrays: everything needed to rebuild the space."""
        meta: dict[str, Any] = {"char_weight": self.char_weight, "word": _terms(self.word)}
        arrays = {"idf_word": self.word.idf_.astype(np.float64)}
        if self.char is not None:
            meta["char"] = _terms(self.char)
            arrays["idf_char"] = self.char.idf_.astype(np.float64)
        return meta, arrays

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> FeatureSpace:
        """Rebuild a space written by :meth:`state`."""
        word = _restore(WORD_PARAMS, meta["word"], arrays["idf_word"])
        char = None
        if "char" in meta:
            char = _restore(CHAR_PARAMS, meta["char"], arrays["idf_char"])
        return cls(word=word, char=char, char_weight=float(meta["char_weight"]))


def _terms(vectorizer: Any) -> list[str]:
    terms = [""] * len(vectorizer.vocabulary_)
    for term, index in vectorizer.vocabulary_.items():
        terms[index] = term
    return terms


def _restore(params: Mapping[str, Any], terms: Sequence[str], idf: np.ndarray) -> Any:
    vectorizer = _vectorizer(params, terms)
    vectorizer.fit([" ".join(terms[:1]) or "x"])  # sets up the fixed vocabulary
    vectorizer.idf_ = np.asarray(idf, dtype=np.float64)
    return vectorizer


def fit_features(
    texts: Sequence[str], *, use_char: bool = False, word_params: Mapping[str, Any] = WORD_PARAMS
) -> FeatureSpace:
    """Fit the word (and, if asked, character) TF-IDF vectorizers on ``texts``.

    ``word_params`` other than ``WORD_PARAMS`` (e.g. ``QUEUE_WORD_PARAMS``) give a space for
    in-memory use only: :meth:`FeatureSpace.from_state` rebuilds with ``WORD_PARAMS``.

    Character n-grams are off by default: on this machine they made fitting ~10x and
    refits ~8x slower for a small, noisy ranking gain (see benchmarks/results/screening.md).
    """
    word = _vectorizer(word_params).fit(texts)
    char = _vectorizer(CHAR_PARAMS).fit(texts) if use_char else None
    space = FeatureSpace(word=word, char=char)
    logger.debug("feature space: %d columns from %d texts", space.n_features, len(texts))
    return space
