"""Vocabulary matching: herniation types, predictors and mechanisms named in the abstract.

Rule ids: ``vocab.herniation_type``, ``vocab.predictor`` (only in sentences that relate a factor
to the outcome: "associated", "predict", "more often" …), ``vocab.mechanism``. Each list field's
value is the canonical names in order of first mention; start/end span the first mention.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from services.extraction.proposal import FieldProposal
from services.extraction.text import sentences

PREDICTOR_CUES = re.compile(
    r"associat|predict|(?<!necrosis )(?<!growth )\bfactors?\b|correlat|significan|odds\s+ratio|more\s+(?:likely|often|frequent)"
    r"|less\s+(?:likely|often|frequent)|independent|influence|multivariable|multivariate"
    r"|more\s+pronounced|greater\s+regression|regress\w*\s+more|whereas|compared\s+with"
    r"|in\s+contrast",
    re.IGNORECASE,
)
_NOT_PREDICTOR = re.compile(
    r"sample\s+$|in\s+$|decreas\w*\s+in\s+$|reduc\w*\s+in\s+(?:\w+\s+)?$", re.IGNORECASE
)


@lru_cache(maxsize=512)
def _compile(phrases: tuple[str, ...]) -> re.Pattern[str]:
    parts = []
    for p in phrases:
        lead = r"(?<![\w-])" if re.match(r"\w", p) else ""
        tail = r"(?:e?s)?(?![\w-])" if re.search(r"[\w)]$", p) else ""
        parts.append(f"{lead}(?:{p}){tail}")
    return re.compile("|".join(parts), re.IGNORECASE)


def compile_phrases(phrases: Sequence[str]) -> re.Pattern[str]:
    """One case-insensitive pattern for phrases (regular-expression fragments, whole words)."""
    return _compile(tuple(phrases))


def sentence_of(text: str, offset: int) -> str:
    """The sentence of ``text`` containing ``offset``."""
    for start, end in sentences(text):
        if start <= offset < end:
            return text[start:end]
    return text


def _match_all(
    text: str, vocab: Mapping[str, Sequence[str]], spans: list[tuple[int, int]] | None = None
) -> list[tuple[str, int, int]]:
    """(label, start, end) of each label's first mention, not overlapping earlier labels."""
    taken: list[tuple[int, int]] = []
    found: list[tuple[str, int, int]] = []
    for label, phrases in vocab.items():
        for m in compile_phrases(phrases).finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            if spans is not None and not any(a <= m.start() < b for a, b in spans):
                continue
            taken.append((m.start(), m.end()))
            found.append((label, m.start(), m.end()))
            break
    return sorted(found, key=lambda f: f[1])


def _list_field(
    abstract: str,
    title: str,
    found: list[tuple[str, int, int]],
    title_found: list[tuple[str, int, int]],
    method: str,
    confidence: float,
) -> FieldProposal | None:
    labels = [f[0] for f in found]
    labels += [f[0] for f in title_found if f[0] not in labels]
    if not labels:
        return None
    if found:
        first = found[0]
        return FieldProposal(
            labels,
            evidence=sentence_of(abstract, first[1]),
            confidence=confidence,
            method=method,
            start=first[1],
            end=first[2],
        )
    return FieldProposal(
        labels, evidence=title, confidence=confidence - 0.1, method=method, source="title"
    )


def propose_herniation_types(
    title: str, abstract: str, vocab: Mapping[str, Sequence[str]]
) -> FieldProposal | None:
    """Herniation types named in the abstract (then the title)."""
    return _list_field(
        abstract,
        title,
        _match_all(abstract, vocab),
        _match_all(title, vocab),
        "vocab.herniation_type",
        0.7,
    )


def propose_mechanisms(
    title: str, abstract: str, vocab: Mapping[str, Sequence[str]]
) -> FieldProposal | None:
    """Cellular/molecular modulators named in the abstract (then the title)."""
    return _list_field(
        abstract,
        title,
        _match_all(abstract, vocab),
        _match_all(title, vocab),
        "vocab.mechanism",
        0.7,
    )


def propose_predictors(abstract: str, vocab: Mapping[str, Sequence[str]]) -> FieldProposal | None:
    """Predictors named in sentences that relate a factor to the outcome."""
    spans = [(a, b) for a, b in sentences(abstract) if PREDICTOR_CUES.search(abstract, a, b)]
    found = [
        f
        for f in _match_all(abstract, vocab, spans)
        if not _NOT_PREDICTOR.search(abstract[max(0, f[1] - 25) : f[1]])
    ]
    return _list_field(abstract, "", found, [], "vocab.predictor", 0.6)
