"""Study design (publication types, then the text) and country (text, then affiliations).

Rule ids: ``design.pubtype``, ``design.text``, ``design.title``; ``country.text``,
``country.affiliation``, ``country.demonym``. Design labels are the protocol's own spelling and are
compared by their canonical key (:func:`design_key`), so "Case report" and "case report" are one.
:func:`study_scope` says when the numbers of an abstract are not a prevalence sample.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from services.extraction.proposal import FieldProposal
from services.extraction.text import normalize
from services.extraction.vocab import compile_phrases, sentence_of

_PUBTYPES: tuple[tuple[str, str], ...] = (
    ("randomized controlled trial", "rct"),
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


_STRONG_REVIEW = re.compile(
    r"meta-?\s?analy\w*|systematic\s+review|we\s+searched|databases?\s+(?:were|was)\s+searched"
    r"|were\s+searched|literature\s+search|pooled\s+(?:proportion|rate|incidence|estimate|analysis)"
    r"|\bstudies\s+(?:were\s+included|met\s+the|were\s+eligible)|\b\d+\s+(?:studies|articles"
    r"|publications)\s+(?:with|comprising|involving|including|were|met)|\bof\s+\d+\s+articles",
    re.IGNORECASE,
)
_REVIEW = re.compile(
    r"narrative\s+review|this\s+review\b|we\s+review\b|review\s+of\s+the\s+literature"
    r"|literature\s+review|pictorial\s+review|this\s+commentary|\bcommentary\b|\beditorial\b"
    r"|reviews?\s+the\s+(?:literature|clinical|distribution)|this\s+article\s+reviews",
    re.IGNORECASE,
)
_CASE_REPORT = re.compile(
    r"\b\d+-year-old\b|case\s+report|we\s+(?:report|present|describe)\s+(?:a|an|the)\s+"
    r"(?:case|patient|\d+-year)|report\s+of\s+a\s+case|illustrative\s+case|a\s+case\s+of\b",
    re.IGNORECASE,
)
_CASE_SERIES = re.compile(
    r"\b(?:present|report|describe|reports|presents|describes)\s+(\d+)\s+(?:\w+\s+)?"
    r"(?:cases|patients)\b|^\W*(\d+)\s+cases\s+of\b|:\s*(\d+)\s+cases\b",
    re.IGNORECASE,
)
_RCT = re.compile(
    r"randomi[sz]ed|randomly\s+(?:assigned|allocated|divided)|(?:allocated|assigned)\s+"
    r"(?:at\s+)?random(?:ly)?|random\s+allocation|\bRCT\b",
    re.IGNORECASE,
)
_TRIAL_PROTOCOL = re.compile(
    r"\bwill\s+(?:enrol|enroll|recruit|be\s+randomi[sz]ed|randomi[sz]e|be\s+enrolled)"
    r"|\bthis\s+(?:trial|study)\s+will\b|\brecruitment\s+(?:starts|will)",
    re.IGNORECASE,
)
_ANIMAL = re.compile(
    r"\b(?:rabbits?|rats?|mice|murine|dogs?|canine|porcine|pigs?|sheep|ovine|goats?|animal\s+model"
    r"|in\s+vitro)\b",
    re.IGNORECASE,
)
_HUMAN = re.compile(r"\b(?:patients?|participants?|volunteers?|subjects?)\b", re.IGNORECASE)
_SMALL_SERIES = 10


def design_key(label: str | None) -> str | None:
    """The canonical design of a protocol label ("Case report" → "case report", "RCT" → "rct")."""
    return None if label is None else label.casefold().replace("-", " ").strip()


def _label(designs: Mapping[str, Sequence[str]], key: str) -> str | None:
    return next((label for label in designs if design_key(label) == key), None)


def _series_size(text: str) -> int | None:
    m = _CASE_SERIES.search(normalize(text).text)
    if not m:
        return None
    return int(next(g for g in m.groups() if g))


def _text_design(title: str, abstract: str, designs: Mapping[str, Sequence[str]]) -> str | None:
    """The canonical design a text states, most telling first (a meta-analysis that mentions
    randomised trials is a review; "allocated randomly" is an RCT; "we present 3 cases" a
    case series)."""
    both = f"{title}. {abstract}"
    if _STRONG_REVIEW.search(both):
        return "review"
    size = _series_size(both)
    if size is not None and size <= _SMALL_SERIES and size > 1:
        return "case series" if _label(designs, "case series") else "case report"
    if _CASE_REPORT.search(both):
        return "case report"
    if size == 1:
        return "case report"
    if _REVIEW.search(both):
        return "review"
    if _RCT.search(both):
        return "rct"
    for label, phrases in designs.items():
        if compile_phrases(phrases).search(both):
            return design_key(label)
    return None


def propose_design(
    title: str, abstract: str, metadata: Mapping[str, Any], designs: Mapping[str, Sequence[str]]
) -> FieldProposal | None:
    """The most specific design label (the protocol's spelling) stated by publication type,
    abstract or title."""
    types = [str(t).lower() for t in metadata.get("publication_types") or []]
    for pubtype, canonical in _PUBTYPES:
        label = _label(designs, canonical)
        if pubtype in types and label is not None:
            return FieldProposal(
                label,
                evidence=f"publication type: {pubtype}",
                confidence=0.9,
                method="design.pubtype",
                source="metadata",
                reason=f"PubMed publication type {pubtype}",
            )
    key = _text_design(title, abstract, designs)
    label = _label(designs, key) if key else None
    if label is None:
        return None
    phrases = compile_phrases(designs[label])
    m = phrases.search(abstract)
    if m:
        return FieldProposal(
            label,
            evidence=sentence_of(abstract, m.start()),
            confidence=0.75,
            method="design.text",
            start=m.start(),
            end=m.end(),
            reason=f"the abstract says {m.group()!r}",
        )
    return FieldProposal(
        label,
        evidence=title or abstract[:200],
        confidence=0.7,
        method="design.title",
        source="title",
        reason=f"the text reads as a {key}",
    )


def study_scope(
    title: str,
    abstract: str,
    design: str | None,
    condition: re.Pattern[str],
    others: Mapping[str, re.Pattern[str]] | None = None,
) -> str | None:
    """Why the abstract's numbers are not a prevalence sample of the protocol's condition (a
    review, a case report or small series, an animal study, a trial protocol, one of the
    protocol's ``other_conditions`` named more than its own), or None when counts may be read.
    ``design`` is the canonical design key."""
    both = f"{title}. {abstract}"
    if design == "review":
        return "a review or meta-analysis: its numbers are other studies' patients"
    if design in ("case report", "case series"):
        size = _series_size(both)
        if design == "case report" or size is None or size <= _SMALL_SERIES:
            return f"a {design}: not a prevalence sample"
    if _TRIAL_PROTOCOL.search(abstract):
        return "a trial protocol: no results yet"
    if _ANIMAL.search(both) and not _HUMAN.search(both):
        return "an animal study"
    target = len(condition.findall(title)) * 3 + len(condition.findall(abstract))
    for region, pattern in (others or {}).items():
        if condition.search(region):
            continue
        other = len(pattern.findall(title)) * 3 + len(pattern.findall(abstract))
        if other and other > target:
            return f"a {region} study: the protocol's condition terms do not match"
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
