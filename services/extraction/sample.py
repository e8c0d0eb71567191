"""Choose n_total, n_resorbed and percent among the candidates read by :mod:`counts`.

Preference: a count with its own denominator ("36 of 40"), then a count whose stated percentage
fits one candidate total, then the best-ranked total. Disagreement between a stated percentage
and the counts, or two different outcome counts, lowers the confidence (and says so in ``note``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.extraction.counts import (
    Hit,
    Total,
    consistent,
    field,
    group_totals,
    outcome_hits,
    totals,
)
from services.extraction.proposal import FieldProposal
from services.extraction.text import Normalized

_OVERALL = re.compile(r"\b(?:overall|in total|altogether|total)\b", re.IGNORECASE)
_GROUP_NUMBER = re.compile(
    r"(?<![\d.=])(\d+)(?![\d.])(?!\s*(?:%|years?|months?|weeks?|days?|mm|-year))"
)


@dataclass(frozen=True)
class Choice:
    """The chosen outcome count (or percentage) with its total."""

    hit: Hit
    total: int | None
    total_span: tuple[int, int, tuple[int, int]] | None
    total_method: str | None
    confidence: float
    note: str | None = None


def _score(h: Hit, text: str) -> int:
    score = 0
    if h.n is not None:
        score += 2
        if h.p is not None and h.k is not None and consistent(h.k, h.n, h.p, h.p_digits):
            score += 2
    if h.p is not None:
        score += 1
    if _OVERALL.search(text, h.sentence[0], h.sentence[1]):
        score += 1
    return score


def _subgroup_sum(nz: Normalized, hits: list[Hit]) -> Choice | None:
    groups = group_totals(nz)
    if len(groups) < 2:
        return None
    for h in hits:
        _s0, s1 = h.sentence
        if not h.subgroup or h.k is None:
            continue
        nums = [int(m.group(1)) for m in _GROUP_NUMBER.finditer(nz.text, h.start, s1)]
        if len(nums) == len(groups) and all(k <= g[0] for k, g in zip(nums, groups, strict=True)):
            hit = Hit(sum(nums), None, None, 0, h.start, s1, h.sentence, "count.subgroups-sum")
            span = (groups[0][1], groups[-1][2], h.sentence)
            return Choice(hit, sum(g[0] for g in groups), span, "total.groups", 0.7)
    return None


def _best_total(cands: list[Total]) -> Total | None:
    if not cands:
        return None
    best = max(t.rank for t in cands)
    return next(t for t in cands if t.rank == best)


def _choose(nz: Normalized, hits: list[Hit]) -> Choice | None:
    counted = [h for h in hits if h.k is not None]
    main = [h for h in counted if not h.subgroup] or counted
    if not main:
        pct = [h for h in hits if h.p is not None]
        return Choice(pct[0], None, None, None, 0.8) if pct else None
    ranked = sorted(main, key=lambda h: -_score(h, nz.text))
    hit = ranked[0]
    rivals = {h.k for h in ranked if _score(h, nz.text) == _score(hit, nz.text)}
    note = "different outcome counts in the abstract" if len(rivals) > 1 else None
    penalty = 0.25 if note else 0.0
    if hit.n is not None:
        ok = hit.p is None or (hit.k is not None and consistent(hit.k, hit.n, hit.p, hit.p_digits))
        conf = (0.95 if hit.p is not None else 0.85) if ok else 0.35
        if not ok:
            note = "stated percentage disagrees with the counts"
        return Choice(hit, hit.n, None, None, conf - penalty, note)
    used = {i for h in hits for i in range(h.start, h.end)}
    cands = [t for t in totals(nz, used) if hit.k is not None and t.n >= hit.k]
    if hit.p is not None and hit.k is not None:
        fit = [t for t in cands if consistent(hit.k, t.n, hit.p, hit.p_digits)]
        if fit:
            t = _best_total(fit)
            if t is not None:
                return Choice(hit, t.n, (t.start, t.end, t.sentence), t.method, 0.9 - penalty, note)
        t = _best_total(cands)
        if t is None:
            return Choice(hit, None, None, None, 0.5 - penalty, note)
        return Choice(
            hit,
            t.n,
            (t.start, t.end, t.sentence),
            t.method,
            0.35,
            "stated percentage disagrees with the counts",
        )
    t = _best_total(cands)
    if t is None:
        return Choice(hit, None, None, None, 0.6 - penalty, note)
    return Choice(hit, t.n, (t.start, t.end, t.sentence), t.method, 0.65 - penalty, note)


def _derive_from_percent(nz: Normalized, hits: list[Hit], p_hit: Hit) -> Choice | None:
    used = {i for h in hits for i in range(h.start, h.end)}
    t = _best_total(totals(nz, used))
    if t is None or p_hit.p is None:
        return None
    ks = [k for k in range(t.n + 1) if consistent(k, t.n, p_hit.p, p_hit.p_digits)]
    k = ks[0] if len(ks) == 1 else None
    hit = Hit(
        k,
        None,
        p_hit.p,
        p_hit.p_digits,
        p_hit.start,
        p_hit.end,
        p_hit.sentence,
        "count.from-percent" if k is not None else p_hit.method,
    )
    return Choice(hit, t.n, (t.start, t.end, t.sentence), t.method, 0.55)


def propose_counts(nz: Normalized, outcome: re.Pattern[str]) -> dict[str, FieldProposal]:
    """n_total, n_resorbed and percent proposals (each absent when nothing supports it)."""
    hits = outcome_hits(nz, outcome)
    if not hits:
        return {}
    choice = _subgroup_sum(nz, hits) or _choose(nz, hits)
    if choice is None:
        return {}
    if choice.hit.k is None and choice.hit.p is not None:
        choice = _derive_from_percent(nz, hits, choice.hit) or choice
    out: dict[str, FieldProposal] = {}
    h = choice.hit
    if h.k is not None:
        out["n_resorbed"] = field(
            nz, h.start, h.end, h.sentence, h.k, choice.confidence, h.method, choice.note
        )
    if choice.total is not None:
        if choice.total_span is not None:
            t0, t1, sent = choice.total_span
            out["n_total"] = field(
                nz,
                t0,
                t1,
                sent,
                choice.total,
                choice.confidence,
                choice.total_method or h.method,
                choice.note,
            )
        else:
            out["n_total"] = field(
                nz,
                h.start,
                h.end,
                h.sentence,
                choice.total,
                choice.confidence,
                h.method,
                choice.note,
            )
    if h.p is not None:
        agree = (
            h.k is None or choice.total is None or consistent(h.k, choice.total, h.p, h.p_digits)
        )
        conf = min(0.9, choice.confidence + 0.1) if agree else 0.35
        out["percent"] = field(
            nz,
            h.start,
            h.end,
            h.sentence,
            h.p,
            conf,
            "percent.stated",
            None if agree else "stated percentage disagrees with the counts",
        )
    return out
