"""Study design (publication types, then the text) and country (text, then affiliations).

Rule ids: ``design.pubtype``, ``design.text``, ``design.title``; ``country.text``,
``country.affiliation``, ``country.demonym``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from services.extraction.proposal import FieldProposal
from services.extraction.vocab import compile_phrases, sentence_of

_PUBTYPES: tuple[tuple[str, str], ...] = (
    ("randomized controlled trial", "RCT"),
    ("systematic review", "review"),
    ("meta-analysis", "review"),
    ("review", "review"),
    ("case reports", "case report"),
)

COUNTRIES: dict[str, tuple[str, ...]] = {
    "USA": ("USA", "U.S.A.", "United States of America", "United States"),
    "UK": ("UK", "U.K.", "United Kingdom", "England", "Scotland", "Wales", "Great Britain"),
    "Korea": ("Republic of Korea", "South Korea", "Korea"),
    "China": ("People's Republic of China", "P.R. China", "PR China", "China"),
    "Netherlands": ("the Netherlands", "Netherlands", "Holland"),
    "Turkey": ("Turkey", "Türkiye", "Turkiye"),
    "Czech Republic": ("Czech Republic", "Czechia"),
    "Saudi Arabia": ("Saudi Arabia",),
    "New Zealand": ("New Zealand",),
    "South Africa": ("South Africa",),
}
for _name in (
    "Japan",
    "Taiwan",
    "Italy",
    "France",
    "Germany",
    "Denmark",
    "Finland",
    "Sweden",
    "Norway",
    "Spain",
    "Portugal",
    "Greece",
    "Switzerland",
    "Austria",
    "Belgium",
    "Poland",
    "Hungary",
    "Russia",
    "Iran",
    "India",
    "Pakistan",
    "Egypt",
    "Israel",
    "Brazil",
    "Mexico",
    "Argentina",
    "Canada",
    "Australia",
    "Ireland",
    "Thailand",
    "Singapore",
    "Malaysia",
    "Serbia",
    "Croatia",
    "Slovenia",
    "Nigeria",
    "Iceland",
    "Romania",
    "Bulgaria",
    "Tunisia",
    "Morocco",
    "Chile",
    "Colombia",
    "Vietnam",
    "Indonesia",
    "Lebanon",
    "Jordan",
):
    COUNTRIES[_name] = (_name,)

DEMONYMS: dict[str, str] = {
    "Japanese": "Japan",
    "Chinese": "China",
    "Korean": "Korea",
    "Turkish": "Turkey",
    "Danish": "Denmark",
    "Finnish": "Finland",
    "Swedish": "Sweden",
    "Norwegian": "Norway",
    "Italian": "Italy",
    "French": "France",
    "German": "Germany",
    "Dutch": "Netherlands",
    "British": "UK",
    "American": "USA",
    "Spanish": "Spain",
    "Iranian": "Iran",
    "Indian": "India",
    "Brazilian": "Brazil",
    "Swiss": "Switzerland",
    "Greek": "Greece",
    "Taiwanese": "Taiwan",
    "Egyptian": "Egypt",
    "Canadian": "Canada",
    "Australian": "Australia",
    "Polish": "Poland",
}

_COUNTRY_RE = re.compile(
    r"\b("
    + "|".join(sorted((re.escape(a) for v in COUNTRIES.values() for a in v), key=len, reverse=True))
    + r")(?!\w)"
)
_ALIAS = {a.lower(): name for name, aliases in COUNTRIES.items() for a in aliases}
_IN_COUNTRY = re.compile(r"\b(?:in|from|across)\s+(?:the\s+)?(?:\w+\s+){0,2}?$", re.IGNORECASE)
_DEMONYM_RE = re.compile(
    r"\b(" + "|".join(DEMONYMS) + r")\s+(?:[a-z-]+\s+){0,2}?"
    r"(?:patients|population|cohort|adults|children|subjects|people|men|women|hospitals?|centres?"
    r"|centers?|individuals|volunteers|registry)\b"
)


def propose_design(
    title: str, abstract: str, metadata: Mapping[str, Any], designs: Mapping[str, Sequence[str]]
) -> FieldProposal | None:
    """The most specific design label stated by publication type, abstract or title."""
    types = [str(t).lower() for t in metadata.get("publication_types") or []]
    for pubtype, label in _PUBTYPES:
        if pubtype in types and label in designs:
            return FieldProposal(
                label,
                evidence=f"publication type: {pubtype}",
                confidence=0.9,
                method="design.pubtype",
                source="metadata",
            )
    for label, phrases in designs.items():
        pattern = compile_phrases(phrases)
        m = pattern.search(abstract)
        if m:
            return FieldProposal(
                label,
                evidence=sentence_of(abstract, m.start()),
                confidence=0.75,
                method="design.text",
                start=m.start(),
                end=m.end(),
            )
        m = pattern.search(title)
        if m:
            return FieldProposal(
                label, evidence=title, confidence=0.7, method="design.title", source="title"
            )
    return None


def _in_text(text: str) -> re.Match[str] | None:
    for m in _COUNTRY_RE.finditer(text):
        if _IN_COUNTRY.search(text[max(0, m.start() - 40) : m.start()]):
            return m
    return None


def propose_country(title: str, abstract: str, metadata: Mapping[str, Any]) -> FieldProposal | None:
    """Country stated in the text ("in Italy"), else the first affiliation's, else a demonym."""
    m = _in_text(abstract)
    if m:
        return FieldProposal(
            _ALIAS[m.group(1).lower()],
            evidence=sentence_of(abstract, m.start()),
            confidence=0.85,
            method="country.text",
            start=m.start(),
            end=m.end(),
        )
    m = _in_text(title)
    if m:
        return FieldProposal(
            _ALIAS[m.group(1).lower()],
            evidence=title,
            confidence=0.8,
            method="country.text",
            source="title",
        )
    for affiliation in metadata.get("affiliations") or []:
        found = list(_COUNTRY_RE.finditer(str(affiliation)))
        if found:
            return FieldProposal(
                _ALIAS[found[-1].group(1).lower()],
                evidence=str(affiliation),
                confidence=0.8,
                method="country.affiliation",
                source="metadata",
            )
    for text, source in ((abstract, "abstract"), (title, "title")):
        d = _DEMONYM_RE.search(text)
        if d:
            in_abstract = source == "abstract"
            return FieldProposal(
                DEMONYMS[d.group(1)],
                evidence=sentence_of(abstract, d.start()) if in_abstract else title,
                confidence=0.7,
                method="country.demonym",
                source=source,
                start=d.start() if in_abstract else None,
                end=d.end(1) if in_abstract else None,
            )
    return None
