"""Sample size, outcome count and percentage: the numbers that move the pooled estimate.

Rule ids (``method``): ``count.k-of-n``, ``count.k-pct``, ``count.in-k``, ``count.lead-k``,
``count.all-n``, ``count.complete-partial``, ``count.subgroups-sum``, ``count.from-percent``;
totals: ``total.<pattern>`` (see :data:`patterns.TOTAL_PATTERNS`), ``total.minus-lost``.
A candidate outcome count is only read in a clause that states the outcome (protocol outcome terms,
in the herniation sense, not negated); other counts (sex, lost, surgery) never qualify. A stated
percentage is checked against the counts and the confidence lowered when they disagree.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from services.extraction import patterns as P
from services.extraction.proposal import FieldProposal
from services.extraction.text import Normalized, blank_parentheses, clauses, sentences

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    """A number read from the normalised text with the rule that read it."""

    k: int | None
    n: int | None
    p: float | None
    p_digits: int
    start: int
    end: int
    sentence: tuple[int, int]
    method: str
    subgroup: bool = False


@dataclass(frozen=True)
class Total:
    """A candidate sample size."""

    n: int
    start: int
    end: int
    sentence: tuple[int, int]
    method: str
    rank: int  # 3 analysed, 2 generic, 1 recruited


def _digits(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def consistent(k: int, n: int, p: float, digits: int) -> bool:
    """Whether ``p`` (stated with ``digits`` decimals) is k/n as a percentage, rounding allowed."""
    if n <= 0:
        return False
    tolerance = 0.5 * 10.0 ** (-digits) + 1e-9
    return abs(100.0 * k / n - p) <= max(tolerance, 0.051 if digits else 0.5)


def _outcome_spans(text: str, start: int, end: int, outcome: re.Pattern[str]) -> list[int]:
    """Offsets of non-negated outcome terms in the herniation sense within [start, end)."""
    found = []
    sentence_has_hernia = P.HERNIATION_WORDS.search(text, start, end) is not None
    for m in outcome.finditer(text, start, end):
        before = text[max(start, m.start() - 30) : m.start()]
        near = text[max(start, m.start() - 25) : min(end, m.end() + 25)]
        if P.NEGATION_BEFORE.search(before):
            continue
        strong = P.STRONG_OUTCOME.match(m.group()) is not None
        if not strong and (not sentence_has_hernia or P.PAIN_NEAR.search(near)):
            continue
        found.append(m.start())
    return found


def _percent_ok(text: str, m: re.Match[str], lo: int) -> bool:
    return P.THRESHOLD_BEFORE.search(text[max(lo, m.start() - 20) : m.start()]) is None


def _clause_hits(text: str, c0: int, c1: int, sent: tuple[int, int]) -> list[Hit]:
    sub = P.SUBGROUP.search(text, sent[0], sent[1]) is not None
    hits: list[Hit] = []
    for m in P.K_OF_N.finditer(text, c0, c1):
        p = P.PCT.search(text, m.end(), c1)
        pv = float(p.group(1)) if p and _percent_ok(text, p, c0) else None
        digits = _digits(p.group(1)) if p and pv is not None else 0
        hits.append(
            Hit(
                int(m.group(1)),
                int(m.group(2)),
                pv,
                digits,
                m.start(),
                m.end(),
                sent,
                "count.k-of-n",
                sub,
            )
        )
    for m in P.K_SLASH_N.finditer(text, c0, c1):
        hits.append(
            Hit(
                int(m.group(1)),
                int(m.group(2)),
                None,
                0,
                m.start(),
                m.end(),
                sent,
                "count.k-of-n",
                sub,
            )
        )
    if not hits:
        for m in P.ALL_N.finditer(text, c0, c1):
            n = int(m.group(1))
            hits.append(Hit(n, n, None, 0, m.start(), m.end(), sent, "count.all-n", sub))
    if not hits:
        for m in P.K_PCT.finditer(text, c0, c1):
            if re.search(r"\d", m.group(2)):
                continue
            hits.append(
                Hit(
                    int(m.group(1)),
                    None,
                    float(m.group(3)),
                    _digits(m.group(3)),
                    m.start(),
                    m.end(),
                    sent,
                    "count.k-pct",
                    sub,
                )
            )
    if not hits:
        for m in P.IN_K.finditer(text, c0, c1):
            hits.append(
                Hit(int(m.group(1)), None, None, 0, m.start(), m.end(), sent, "count.in-k", sub)
            )
    if not hits and (m2 := P.LEAD_K.match(text, c0, c1)):
        hits.append(
            Hit(int(m2.group(1)), None, None, 0, m2.start(1), m2.end(1), sent, "count.lead-k", sub)
        )
    if hits and all(h.p is None for h in hits):
        p = next((x for x in P.PCT.finditer(text, c0, c1) if _percent_ok(text, x, c0)), None)
        if p is not None and len(hits) == 1:
            h = hits[0]
            hits = [
                Hit(
                    h.k,
                    h.n,
                    float(p.group(1)),
                    _digits(p.group(1)),
                    h.start,
                    h.end,
                    sent,
                    h.method,
                    h.subgroup,
                )
            ]
    if not hits:
        for p in P.PCT.finditer(text, c0, c1):
            if _percent_ok(text, p, c0):
                hits.append(
                    Hit(
                        None,
                        None,
                        float(p.group(1)),
                        _digits(p.group(1)),
                        p.start(),
                        p.end(),
                        sent,
                        "percent.only",
                        sub,
                    )
                )
                break
    return hits


def outcome_hits(nz: Normalized, outcome: re.Pattern[str]) -> list[Hit]:
    """Every outcome count or percentage stated in a clause that reports the outcome."""
    text = nz.text
    hits: list[Hit] = []
    for sent in sentences(text):
        if not _outcome_spans(text, sent[0], sent[1], outcome):
            continue
        m = P.COMPLETE_PARTIAL.search(text, sent[0], sent[1])
        if m:
            a, b = (int(g) for g in m.groups() if g is not None)
            hits.append(
                Hit(a + b, None, None, 0, m.start(), m.end(), sent, "count.complete-partial")
            )
            continue
        for c0, c1 in clauses(text, sent[0], sent[1]):
            if not _outcome_spans(text, c0, c1, outcome):
                continue
            plain = blank_parentheses(text[c0:c1])
            if P.NEGATIVE_CLAUSE.search(plain) or P.DISTRACTOR.search(plain):
                continue
            hits.extend(_clause_hits(text, c0, c1, sent))
    return [h for h in hits if h.k is None or h.n is None or h.k <= h.n]


def totals(nz: Normalized, used: set[int]) -> list[Total]:
    """Candidate sample sizes outside the outcome counts, ranked analysed > generic > recruited."""
    text = nz.text
    found: list[Total] = []
    for sent in sentences(text):
        for c0, c1 in clauses(text, sent[0], sent[1]):
            clause = text[c0:c1]
            plain = blank_parentheses(clause)
            for name, pattern in P.TOTAL_PATTERNS:
                for m in pattern.finditer(clause):
                    start = c0 + m.start(1)
                    if start in used or P.DISTRACTOR.search(plain[m.start() :]):
                        continue
                    rank = 2
                    if P.ANALYSED_WORDS.search(clause) or name == "analysed-n":
                        rank = 3
                    elif P.RECRUITED_WORDS.search(clause):
                        rank = 1
                    found.append(
                        Total(int(m.group(1)), start, c0 + m.end(1), sent, f"total.{name}", rank)
                    )
    lost = sum(int(m.group(1)) for m in P.LOST.finditer(text))
    recruited = [t for t in found if t.rank == 1]
    if lost and recruited and not any(t.rank == 3 for t in found):
        r = recruited[0]
        found.append(Total(r.n - lost, r.start, r.end, r.sentence, "total.minus-lost", 2))
    return found


def group_totals(nz: Normalized) -> list[tuple[int, int, int]]:
    """(n, start, end) of group sizes "group A (n = 30)" stated in one sentence."""
    for sent in sentences(nz.text):
        groups = list(P.GROUP_N.finditer(nz.text, sent[0], sent[1]))
        if len(groups) >= 2:
            return [(int(g.group(1)), g.start(1), g.end(1)) for g in groups]
    return []


def field(
    nz: Normalized,
    start: int,
    end: int,
    sent: tuple[int, int],
    value: object,
    confidence: float,
    method: str,
    note: str | None = None,
    unit: str | None = None,
) -> FieldProposal:
    """A proposal with evidence and offsets mapped back to the original abstract."""
    o0, o1 = nz.span(start, end)
    s0, s1 = nz.span(*sent)
    return FieldProposal(
        value=value,
        evidence=nz.original[s0:s1],
        confidence=confidence,
        method=method,
        start=o0,
        end=o1,
        note=note,
        unit=unit,
    )
