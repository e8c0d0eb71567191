"""What screening needs from a review's protocol (stored as JSON with the review).

Read tolerantly from the stored dict: the protocol was validated by services.protocol at init.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from db.models import Review

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
    events_field: str = "n_resorbed"
    total_field: str = "n_total"
    extraction: dict[str, Any] = field(default_factory=dict)

    @property
    def dual(self) -> bool:
        return self.reviewers_per_record >= 2


def rules_of(review: Review) -> ScreeningRules:
    """The screening rules of a review, from its stored protocol."""
    protocol = review.protocol or {}
    screening = protocol.get("screening") or {}
    outcome = protocol.get("outcome") or {}
    keywords = screening.get("keywords") or _query_words(
        (protocol.get("search") or {}).get("query", "")
    )
    return ScreeningRules(
        reviewers_per_record=int(screening.get("reviewers_per_record", 1)),
        exclusion_reasons=tuple(str(r) for r in screening.get("exclusion_reasons") or ()),
        keywords=tuple(str(k) for k in keywords),
        exclusion_terms=_exclusion_terms(protocol.get("criteria") or {}),
        events_field=str(outcome.get("events_field", "n_resorbed")),
        total_field=str(outcome.get("total_field", "n_total")),
        extraction=dict(protocol.get("extraction") or {}),
    )


def _exclusion_terms(criteria: dict[str, Any]) -> tuple[str, ...]:
    terms: dict[str, None] = {}
    for name in criteria.get("exclude_publication_types") or []:
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
