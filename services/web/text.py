"""Untrusted text (titles, abstracts) to safe HTML: escaped, with <mark> around keywords or
evidence. Every character of the input is escaped; only our own <mark> tags are added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup, escape

Span = tuple[int, int, str, str]  # start, end, css class, field name ("" for keywords)


def keyword_spans(text: str, keywords: Iterable[str]) -> list[Span]:
    """Where the keywords (as word starts, any case, with their word's ending) occur in ``text``."""
    words = sorted({k.strip() for k in keywords if k and k.strip()}, key=len, reverse=True)
    if not words or not text:
        return []
    pattern = re.compile(
        r"\b(?:" + "|".join(re.escape(w) for w in words) + r")[\w-]*", re.IGNORECASE
    )
    return [(m.start(), m.end(), "kw", "") for m in pattern.finditer(text)]


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


def highlight(text: str | None, keywords: Iterable[str]) -> Markup:
    """Jinja filter: escape and mark the protocol's keywords."""
    return mark(text, keyword_spans(text or "", keywords))
