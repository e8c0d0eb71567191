"""Untrusted text (titles, abstracts) to safe HTML: escaped, with <mark> around keywords or
evidence. Every character of the input is escaped; only our own <mark> tags are added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup, escape

Span = tuple[int, int, str, str]  # start, end, css class, field name ("" for keywords)


# Endings taken off a keyword so that its other forms match too ("resorption" → "resor…",
# "regression" → "regress…", "herniation" → "herni…"); the longest ending that leaves a stem
# of at least five letters wins, so short words are matched as written.
_ENDINGS = (
    ("orption", "or"), ("ssion", "ss"), ("ation", ""), ("ition", ""), ("ement", ""),
    ("ance", ""), ("ence", ""), ("ing", ""), ("ies", "y"), ("ed", ""), ("es", ""), ("s", ""),
)
_MIN_STEM = 5


def stem(word: str) -> str:
    """The start shared by a keyword's forms (each word of a phrase stemmed)."""
    return " ".join(_stem_word(w) for w in word.split())


def _stem_word(word: str) -> str:
    lower = word.lower()
    for ending, replacement in _ENDINGS:
        if lower.endswith(ending) and len(lower) - len(ending) + len(replacement) >= _MIN_STEM:
            return word[: len(word) - len(ending)] + replacement
    return word


def keyword_spans(text: str, keywords: Iterable[str], css: str = "kw") -> list[Span]:
    """Where the keywords occur in ``text``: any case, any ending of their stem ("resorption"
    marks "resorbing" and "resorbed" too), from a word start."""
    stems = sorted({stem(k.strip()) for k in keywords if k and k.strip()}, key=len, reverse=True)
    if not stems or not text:
        return []
    pattern = re.compile(
        r"\b(?:" + "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in stems) + r")[\w-]*",
        re.IGNORECASE,
    )
    return [(m.start(), m.end(), css, "") for m in pattern.finditer(text)]


def evidence_spans(text: str, fields: Mapping[str, Any]) -> list[Span]:
    """Where each proposed field's evidence sentence lies in ``text`` (offsets trusted only
    when they point at the evidence; otherwise the evidence is searched for)."""
    spans: list[Span] = []
    for name, info in fields.items():
        if not isinstance(info, dict):
            continue
        evidence = str(info.get("evidence") or "").strip()
        if not evidence:
            continue
        start, end = info.get("start"), info.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and text[start:end] == evidence):
            start = text.find(evidence)
            end = start + len(evidence)
        if start >= 0:
            spans.append((start, end, "evidence", name))
    return spans


def mark(text: str | None, spans: list[Span]) -> Markup:
    """Escaped ``text`` with non-overlapping spans wrapped in <mark>."""
    text = text or ""
    out: list[str] = []
    pos = 0
    for start, end, css, field in sorted(spans):
        if start < pos:
            continue
        attr = f' data-field="{escape(field)}"' if field else ""
        out.append(escape(text[pos:start]))
        out.append(f'<mark class="{escape(css)}"{attr}>{escape(text[start:end])}</mark>')
        pos = end
    out.append(escape(text[pos:]))
    return Markup("".join(out))  # every piece above is escaped or our own tag


def highlight(
    text: str | None, keywords: Iterable[str], exclusion_terms: Iterable[str] = ()
) -> Markup:
    """Jinja filter: escape and mark the protocol's keywords (``kw``) and, in a second colour,
    its exclusion terms (``kw-exclude``); where both match, the inclusion keyword wins."""
    body = text or ""
    return mark(
        body, keyword_spans(body, keywords) + keyword_spans(body, exclusion_terms, "kw-exclude")
    )
