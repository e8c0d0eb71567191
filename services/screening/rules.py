"""What screening needs from a review's protocol (stored as JSON with the review).

Read through the typed protocol stored with the review (:func:`services.reviews.protocol_of`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from db.models import Review
from services.reviews import protocol_of

TITLE_ABSTRACT = "title_abstract"
FULL_TEXT = "full_text"
STAGES = (TITLE_ABSTRACT, FULL_TEXT)
STAGE_LABELS = {TITLE_ABSTRACT: "Title/abstract", FULL_TEXT: "Full text"}
DECISIONS = ("include", "exclude", "maybe")


@dataclass(frozen=True)
class ScreeningRules:
    """Screening mode, exclusion reasons and highlight keywords of one review."""

    reviewers_per_record: int = 1
    exclusion_reasons: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    # Terms that point to an exclusion, highlighted in a second colour: the protocol's
    # excluded publication types ("Case Reports" → "case report"), singular.
    exclusion_terms: tuple[str, ...] = ()
    events_field: str = "n_events"
    total_field: str = "n_total"
    extraction: dict[str, Any] = field(default_factory=dict)

    @property
    def dual(self) -> bool:
        return self.reviewers_per_record >= 2


def rules_of(review: Review) -> ScreeningRules:
    """The screening rules of a review, from its stored protocol."""
    protocol = protocol_of(review)
    screening, outcome = protocol.screening, protocol.outcome
    return ScreeningRules(
        reviewers_per_record=screening.reviewers_per_record,
        exclusion_reasons=tuple(screening.exclusion_reasons),
        keywords=tuple(screening.keywords or _query_words(protocol.search.query)),
        exclusion_terms=_exclusion_terms(protocol.criteria.exclude_publication_types),
        events_field=outcome.events_field,
        total_field=outcome.total_field,
        extraction=protocol.extraction.model_dump(),
    )


def _exclusion_terms(publication_types: Sequence[str]) -> tuple[str, ...]:
    terms: dict[str, None] = {}
    for name in publication_types:
        words = str(name).lower().split()
        if words and len(words[-1]) > 4 and words[-1].endswith("s") and not words[-1].endswith("ss"):
            words[-1] = words[-1][:-1]
        if words:
            terms.setdefault(" ".join(words), None)
    return tuple(terms)


def _query_words(query: str) -> list[str]:
    """Plain words of an Entrez term (field tags, operators and truncation removed)."""
    text = re.sub(r"\[[^\]]*\]", " ", query)
    words = re.findall(r"[A-Za-z][A-Za-z-]{3,}", text)
    skip = {"AND", "OR", "NOT"}
    seen: dict[str, None] = {}
    for word in words:
        if word not in skip:
            seen.setdefault(word.lower(), None)
    return list(seen)


def author_names(authors: list[Any] | None) -> list[str]:
    """Display names ("Last FI" or the collective name) of a record's parsed authors."""
    names = []
    for author in authors or []:
        if isinstance(author, dict):
            name = (
                author.get("collective")
                or " ".join(
                    p
                    for p in (
                        author.get("last", ""),
                        author.get("initials", ""),
                        author.get("suffix", ""),
                    )
                    if p
                )
                or author.get("name", "")
            )
        else:
            name = str(author)
        if name:
            names.append(str(name))
    return names
