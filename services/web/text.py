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
    """Where each proposed field's evidence sentence lies in ``text`` (class ``evidence``) and,
    inside it, the winning candidate itself (class ``winner``: the number the value was read
    from). Offsets are trusted only when they point at the evidence or into it; otherwise the
    evidence is searched for. Abstained fields (no value) have no evidence."""
    spans: list[Span] = []
    for name, info in fields.items():
        if not isinstance(info, dict) or info.get("abstained"):
            continue
        evidence = str(info.get("evidence") or "").strip()
        if not evidence:
            continue
        start, end = info.get("start"), info.get("end")
        s0 = text.find(evidence)
        if isinstance(start, int) and isinstance(end, int) and text[start:end] == evidence:
            s0 = start
        if s0 < 0:
            continue
        s1 = s0 + len(evidence)
        spans.append((s0, s1, "evidence", name))
        if (
            isinstance(start, int)
            and isinstance(end, int)
            and s0 <= start < end <= s1
            and (start, end) != (s0, s1)
        ):
            spans.append((start, end, "winner", name))
    return spans


def _tag(text: str, start: int, end: int, css: str, field: str, inner: str | None = None) -> str:
    attr = f' data-field="{escape(field)}"' if field else ""
    body = escape(text[start:end]) if inner is None else inner
    return f'<mark class="{escape(css)}"{attr}>{body}</mark>'


def mark(text: str | None, spans: list[Span]) -> Markup:
    """Escaped ``text`` with non-overlapping spans wrapped in <mark>; ``winner`` spans are
    nested inside the span that contains them."""
    text = text or ""
    outer = sorted(s for s in spans if s[2] != "winner")
    winners = sorted(s for s in spans if s[2] == "winner")
    out: list[str] = []
    pos = 0
    for start, end, css, field in outer:
        if start < pos:
            continue
        out.append(escape(text[pos:start]))
        inner: list[str] = []
        cur = start
        for w0, w1, wcss, wfield in winners:
            if w0 < cur or w1 > end:
                continue
            inner.append(escape(text[cur:w0]))
            inner.append(_tag(text, w0, w1, wcss, wfield))
            cur = w1
        inner.append(escape(text[cur:end]))
        out.append(_tag(text, start, end, css, field, "".join(inner)))
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
