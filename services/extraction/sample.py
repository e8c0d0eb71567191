"""Score the number candidates of :mod:`segments` and pick n_total, n_resorbed and percent, or
abstain.

Outcome counts come from segments that report the outcome in the herniation sense (not in the
background, not a purpose or definition, not a subset, not a clinical outcome); within a sentence,
categories add up (partial + complete; "none" and "enlarged" complete the total), subgroup pairs
add up ("18 of 20 extrusions and 6 of 22 protrusions", arms "…, respectively"), a breakdown of a
stated count is not added twice, and time points keep the latest. Across sentences the best
supported report wins (RESULTS section, own denominator, a stated share that fits); a rival
report with a different count about as well supported means abstaining.

Totals: the report's own denominator; else the categories' sum; else the candidate whose stated
share fits; else the latest stage of the sample (imaged/analysed over enrolled over screened),
abstaining when that stage holds two different numbers ("two candidate totals: …").

Weights (confidence of each rule, the protocol's ``min_confidence`` decides what is shown) are
explicit below. Rule ids (``method``): ``count.pair``, ``count.categories``, ``count.groups``,
``count.share``, ``count.bare``; ``total.pair``, ``total.categories``, ``total.share-fit``,
``total.stage``, ``total.alone``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.extraction.counts import consistent, field
from services.extraction.proposal import Abstention, Candidate, FieldProposal
from services.extraction.segments import Number, Segment, read_segments
from services.extraction.text import Normalized

POSITIVE = frozenset({"complete", "partial", "any", "threshold"})
NEGATIVE = frozenset({"none", "enlarged"})
STAGE_NAMES = {0: "screened", 1: "enrolled", 2: "imaged/analysed"}

# confidence of each way of reading a count (explicit weights)
W_PAIR_SHARE = 0.95
W_PAIR = 0.9
W_CATEGORIES_CONFIRMED = 0.92
W_CATEGORIES = 0.82
W_GROUPS = 0.82
W_SHARE = 0.75
W_BARE = 0.82
W_TOTAL_SHARE_FIT = 0.9
W_TOTAL_STAGE2 = 0.8
W_TOTAL_STAGE1 = 0.75
W_TOTAL_STAGE0 = 0.5
W_DERIVED = 0.6
W_RIVAL = 0.45
W_DISAGREE = 0.35


@dataclass(frozen=True)
class Report:
    """An outcome count read from one sentence."""

    k: int
    n: int | None  # its own denominator (pair, groups, categories)
    n_from: str  # "pair" | "groups" | "categories" | ""
    pct: float | None
    pct_digits: int
    start: int
    end: int
    n_span: tuple[int, int] | None
    sentence: tuple[int, int]
    method: str
    confidence: float
    reason: str
    score: float
    cat_total: int | None = None
    kind: str = ""  # what the count counts: "patient", "herniation" or ""
    categories: frozenset[str] = frozenset()
    grouped: bool = False  # counts given per group ("in group A … in group B")
    share_only: bool = False  # "in 62.5% of the patients": k follows from the total
    groups: tuple[tuple[int, int | None], ...] = ()  # (k, N) of each group or arm that was added


@dataclass(frozen=True)
class TotalCandidate:
    """A number that may be the analysed sample."""

    n: int
    start: int
    end: int
    sentence: tuple[int, int]
    stage: int
    label: str
    kind: str = ""


def _segment_count(seg: Segment) -> tuple[Number | None, int | None, tuple[int, int] | None]:
    """(count, its denominator, denominator span) stated by an outcome segment."""
    denominators = {n.of_span for n in seg.counts if n.of_span}
    nums = [n for n in seg.counts if (n.start, n.end) not in denominators]
    outside = [n for n in nums if not n.in_parens and not n.referent]
    group = next((n for n in nums if n.in_parens), None)
    if outside:
        k = outside[0]
        if k.of is not None:
            return k, k.of, k.of_span
        if group is not None and group.value >= k.value:
            return k, int(group.value), (group.start, group.end)
        return k, None, None
    if group is not None:
        if seg.all_of:
            return group, int(group.value), (group.start, group.end)
        return group, None, None
    return None, None, None


def _usable(seg: Segment) -> bool:
    return (
        bool(seg.category)
        and not seg.background
        and not seg.subset
        and not (seg.purpose and seg.category in POSITIVE and not seg.outcome and not seg.counts)
    )


def _sentence_report(nz: Normalized, segs: list[Segment]) -> Report | None:
    """Combine the outcome segments of one sentence into one report."""
    pos: list[tuple[Segment, Number, int | None, tuple[int, int] | None]] = []
    neg = 0
    has_neg = False
    for seg in segs:
        if not _usable(seg) or (seg.purpose and not seg.counts):
            continue
        k, n, n_span = _segment_count(seg)
        if seg.category in NEGATIVE:
            if k is not None:
                neg += int(k.value)
                has_neg = True
            continue
        if seg.purpose and not seg.outcome:
            continue
        if k is not None:
            pos.append((seg, k, n, n_span))
        elif seg.share is not None:
            return _share_report(segs[0].sentence, seg)
        elif seg.share_only is not None and seg.outcome:
            p, digits = seg.share_only
            return Report(
                k=0,
                n=None,
                n_from="",
                pct=p,
                pct_digits=digits,
                start=seg.start,
                end=seg.end,
                n_span=None,
                sentence=seg.sentence,
                method="count.share",
                confidence=W_SHARE,
                reason=f"{p:g}% of the sample",
                score=0.5,
                share_only=True,
                categories=frozenset({seg.category}),
            )
    if not pos:
        return None
    timed = [p for p in pos if p[0].timepoint is not None]
    if len({p[0].timepoint for p in timed}) >= 2 and len(timed) == len(pos):
        pos = [max(timed, key=lambda p: p[0].timepoint or 0.0)]
    if len(pos) >= 2 and any(p[0].category != "threshold" for p in pos):
        pos = [p for p in pos if p[0].category != "threshold"]
    if len(pos) >= 2 and pos[0][0].category == "any":
        rest = sum(int(p[1].value) for p in pos[1:])
        if rest == int(pos[0][1].value):
            pos = pos[:1]
    kinds = {p[1].kind for p in pos if p[1].kind}
    if len(pos) >= 2 and len(kinds) > 1:
        pos = [next((p for p in pos if p[2] is not None), pos[0])]
    return _combine(pos, neg if has_neg else None, segs[0].sentence)


def _combine(
    pos: list[tuple[Segment, Number, int | None, tuple[int, int] | None]],
    neg: int | None,
    sentence: tuple[int, int],
) -> Report:
    k = sum(int(p[1].value) for p in pos)
    groups: tuple[tuple[int, int | None], ...] = ()
    first, last = pos[0][1], pos[-1][1]
    end = last.of_span[1] if last.of_span else last.end
    dens = [p[2] for p in pos if p[2] is not None]
    respectively = any(p[0].respectively for p in pos)
    n: int | None = None
    n_span = next((p[3] for p in pos if p[3] is not None), None)
    n_from = ""
    method, conf = "count.bare", W_BARE
    reason = f"{k} stated as reporting the outcome"
    if len(pos) == 1:
        n = dens[0] if dens else None
        n_from = "pair" if n is not None else ""
        if n is not None:
            method, conf = "count.pair", W_PAIR
            reason = f"{k} of {n} stated together"
    elif len(dens) == len(pos) and (
        respectively or len(set(dens)) > 1 or all(p[0].category == "any" for p in pos)
    ):
        n, n_from, method, conf = sum(dens), "groups", "count.groups", W_GROUPS
        groups = tuple((int(p[1].value), p[2]) for p in pos)
        reason = f"groups added: {' + '.join(str(int(p[1].value)) for p in pos)} of {' + '.join(map(str, dens))}"
    else:
        n = max(dens) if dens else None
        n_from = "pair" if n is not None else ""
        method, conf = "count.categories", W_CATEGORIES
        reason = "categories added: " + " + ".join(
            f"{int(p[1].value)} {p[0].category if p[0].category != 'any' else 'reduced'}"
            for p in pos
        )
    grouped = len(pos) >= 2 and all(re.search(r"\bgroup\b", p[0].text, re.I) for p in pos)
    cat_total = k + neg if neg is not None else None
    if cat_total is not None and n is None:
        n, n_from = cat_total, "categories"
        reason += f"; total = all categories ({cat_total})"
    pct = first.pct if len(pos) == 1 else None
    score = 2.0 if first.of is not None or n is not None else 0.0
    seg = pos[0][0]
    score += 1.0 if seg.section == "results" else (-1.0 if seg.section == "conclusions" else 0.0)
    if pct is not None and n is not None and consistent(k, n, pct, first.pct_digits):
        conf, score = max(conf, W_PAIR_SHARE), score + 1.0
    return Report(
        k=k,
        n=n,
        n_from=n_from,
        pct=pct,
        pct_digits=first.pct_digits,
        start=first.start,
        end=end,
        n_span=n_span,
        sentence=sentence,
        method=method,
        confidence=conf,
        reason=reason,
        score=score,
        cat_total=cat_total,
        kind=next((p[1].kind for p in pos if p[1].kind), ""),
        categories=frozenset(p[0].category for p in pos),
        grouped=grouped,
        groups=groups or (tuple((int(p[1].value), None) for p in pos) if grouped else ()),
    )


def _share_report(sentence: tuple[int, int], seg: Segment) -> Report | None:
    if seg.share is None:
        return None
    p, digits, n = seg.share
    ks = [k for k in range(n + 1) if consistent(k, n, p, digits)]
    if len(ks) != 1:
        return None
    return Report(
        k=ks[0],
        n=n,
        n_from="pair",
        pct=p,
        pct_digits=digits,
        start=seg.start,
        end=seg.end,
        n_span=None,
        sentence=sentence,
        method="count.share",
        confidence=W_SHARE,
        reason=f"{p:g}% of {n} is {ks[0]}",
        score=1.5,
    )


def reports(nz: Normalized, segs: list[Segment]) -> list[Report]:
    """One report per sentence that states an outcome count, in text order."""
    by_sentence: dict[int, list[Segment]] = {}
    for seg in segs:
        by_sentence.setdefault(seg.sentence_no, []).append(seg)
    found = []
    for group in by_sentence.values():
        report = _sentence_report(nz, group)
        if report is not None:
            found.append(report)
    return found


def total_candidates(segs: list[Segment], exclude: set[tuple[int, int]]) -> list[TotalCandidate]:
    """Numbers that may be the sample: stated with a stage of the sample, or a denominator."""
    found: list[TotalCandidate] = []
    for seg in segs:
        if seg.background:
            continue
        for num in seg.counts:
            span = (num.start, num.end)
            if span in exclude or num.kind in ("animal", "other", "sex"):
                continue
            if num.of is not None and num.of_span is not None and num.of_span not in exclude:
                den = next((o for o in seg.counts if (o.start, o.end) == num.of_span), None)
                found.append(
                    TotalCandidate(
                        num.of,
                        *num.of_span,
                        seg.sentence,
                        1,
                        f"{num.of} (denominator)",
                        den.kind if den else "",
                    )
                )
            is_denominator = any(o.of_span == span for o in seg.counts)
            if is_denominator:
                continue
            stage = _stage(seg, num)
            if stage is None:
                continue
            label = f"{int(num.value)} {STAGE_NAMES[stage]}"
            found.append(
                TotalCandidate(
                    int(num.value), num.start, num.end, seg.sentence, stage, label, num.kind
                )
            )
    return found + _group_sums(segs)


def _group_sums(segs: list[Segment]) -> list[TotalCandidate]:
    """The sum of group sizes stated in one sentence ("group A (n = 25) … group B (n = 25)"),
    as a candidate of stage 3 (used only when the outcome is given per group)."""
    out = []
    sentences: dict[int, list[Number]] = {}
    for seg in segs:
        if re.search(r"\bgroups?\b", seg.text, re.I):
            sentences.setdefault(seg.sentence_no, []).extend(n for n in seg.counts if n.in_parens)
    for sizes in sentences.values():
        if len(sizes) >= 2:
            total = int(sum(n.value for n in sizes))
            label = " + ".join(str(int(n.value)) for n in sizes)
            first = next(s for s in segs if s.start <= sizes[0].start < s.end)
            out.append(
                TotalCandidate(total, sizes[0].start, sizes[-1].end, first.sentence, 3, label)
            )
    return out


def _stage(seg: Segment, num: Number) -> int | None:
    if seg.excluded or seg.sex or seg.subset or (seg.clinical and not num.referent):
        return None
    if seg.category and not num.referent:
        return None
    lead = re.match(r"^\W*(?:of|in|among)\s+(?:the\s+|these\s+|all\s+)?\d+\b", seg.text, re.I)
    if seg.stage >= 0:
        return seg.stage
    if (
        lead
        or num.referent
        or (num.kind in ("patient", "herniation") and seg.start == seg.sentence[0])
    ):
        return 1
    return None


def _choose_total(
    report: Report | None, cands: list[TotalCandidate]
) -> tuple[TotalCandidate | None, float, str, str | None]:
    """(chosen, confidence, reason, abstention reason) for the total."""
    k = report.k if report else 0
    if report is not None and report.grouped:
        groups = [c for c in cands if c.stage == 3]
        if groups:
            return groups[0], W_GROUPS, f"group sizes added: {groups[0].label}", None
    cands = [c for c in cands if c.stage < 3]
    usable = [c for c in cands if c.n >= max(k, 1)]
    if report is not None and report.kind:
        # a count of herniations has a total of herniations, not of patients
        usable = [c for c in usable if c.kind in (report.kind, "")]
    if report is not None and report.pct is not None:
        fit = [c for c in usable if consistent(k, c.n, report.pct, report.pct_digits)]
        if fit:
            best = max(fit, key=lambda c: (c.stage, -c.start))
            return best, W_TOTAL_SHARE_FIT, f"{k} is {report.pct:g}% of {best.n}", None
    if not usable:
        return None, 0.0, "", None
    top = max(c.stage for c in usable)
    at_top = [c for c in usable if c.stage == top]
    values = sorted({c.n for c in at_top})
    if len(values) > 1:
        names = ", ".join(next(c.label for c in at_top if c.n == v) for v in values)
        return None, 0.0, "", f"{len(values)} candidate totals: {names}"
    best = at_top[0]
    conf = {2: W_TOTAL_STAGE2, 1: W_TOTAL_STAGE1}.get(top, W_TOTAL_STAGE0)
    if report is not None and report.pct is not None:
        conf = W_DISAGREE
        return (
            best,
            conf,
            f"latest stage of the sample: {best.label}",
            (f"the stated {report.pct:g}% does not fit {k} of {best.n}"),
        )
    return best, conf, f"latest stage of the sample: {best.label}", None


def _outcome_named(segs: list[Segment]) -> bool:
    return any(s.mentions and not s.background and not s.subset for s in segs)


def _rival(best: Report, found: list[Report]) -> Report | None:
    """Another report with a different count about as well supported (a count of complete
    resorption beside one of any resorption is a part of it, not a rival)."""
    for r in found:
        if r is best or r.k == best.k or r.score < best.score - 0.5:
            continue
        if r.categories == {"complete"} and r.k < best.k and best.categories - {"complete"}:
            continue
        if best.categories == {"complete"} and best.k < r.k and r.categories - {"complete"}:
            return None
        return r
    return None


def _best(found: list[Report]) -> Report | None:
    if not found:
        return None
    best = max(found, key=lambda r: r.score)
    wider = [
        r
        for r in found
        if best.categories == {"complete"}
        and r.k > best.k
        and r.categories - {"complete"}
        and r.score >= best.score - 0.5
    ]
    return wider[0] if wider else best


def propose_counts(
    nz: Normalized, outcome: re.Pattern[str]
) -> tuple[dict[str, FieldProposal], dict[str, Abstention]]:
    """n_total, n_resorbed and percent proposals, and the count fields abstained with a reason."""
    segs = read_segments(nz, outcome)
    found = reports(nz, segs)
    out: dict[str, FieldProposal] = {}
    abstained: dict[str, Abstention] = {}
    best = _best(found)
    if best is not None:
        rival = _rival(best, found)
        if rival is not None:
            abstained["n_resorbed"] = Abstention(
                f"two outcome counts: {best.k} and {rival.k}",
                (
                    _cand(nz, best.k, "outcome count", best.start, best.end),
                    _cand(nz, rival.k, "outcome count", rival.start, rival.end),
                ),
                W_RIVAL,
            )
            best = None
    if best is None and "n_resorbed" not in abstained and not _outcome_named(segs):
        return {}, {}
    exclude = {(best.start, best.end)} if best else set()
    if best is not None and best.share_only:
        return _share_only(nz, best, total_candidates(segs, exclude))
    if best is not None:
        out["n_resorbed"] = field(
            nz,
            best.start,
            best.end,
            best.sentence,
            best.k,
            best.confidence,
            best.method,
            reason=best.reason,
        )
    total = _report_total(nz, best) if best is not None and best.n is not None else None
    if total is not None:
        out["n_total"] = total
    elif "n_resorbed" not in abstained:
        _stage_total(nz, best, total_candidates(segs, exclude), out, abstained)
    _percent(nz, best, out)
    _disagreement(best, out)
    _note_groups(best, out)
    return out, abstained


def _note_groups(best: Report | None, out: dict[str, FieldProposal]) -> None:
    """Say that the counts add groups or trial arms, so the reviewer sees the study has them."""
    if best is None or len(best.groups) < 2:
        return
    parts = ", ".join(f"{k} of {n}" if n is not None else str(k) for k, n in best.groups)
    note = f"{len(best.groups)} groups or arms added: {parts}"
    for name in ("n_resorbed", "n_total"):
        fp = out.get(name)
        if fp is not None and fp.note is None:
            out[name] = FieldProposal(**{**fp.__dict__, "note": note})


def _disagreement(best: Report | None, out: dict[str, FieldProposal]) -> None:
    """A stated share that fits neither the count and its total: one of them is misread, so
    both are withheld (their confidence drops below any sensible threshold)."""
    if best is None or best.pct is None or "n_total" not in out or "n_resorbed" not in out:
        return
    n = int(out["n_total"].value)
    if consistent(best.k, n, best.pct, best.pct_digits):
        return
    note = f"the stated {best.pct:g}% does not fit {best.k} of {n}"
    for name in ("n_total", "n_resorbed"):
        fp = out[name]
        out[name] = FieldProposal(
            **{**fp.__dict__, "confidence": min(fp.confidence, W_DISAGREE), "note": note}
        )


def _share_only(
    nz: Normalized, best: Report, cands: list[TotalCandidate]
) -> tuple[dict[str, FieldProposal], dict[str, Abstention]]:
    """A share of an unnamed total ("in 62.5% of the patients"): the total by stage, the count
    from the share when exactly one whole number fits."""
    out: dict[str, FieldProposal] = {}
    abstained: dict[str, Abstention] = {}
    plain = Report(**{**best.__dict__, "pct": None, "share_only": False})
    _stage_total(nz, plain if plain.k else None, cands, out, abstained)
    total = out.get("n_total")
    if total is None or best.pct is None:
        return out, abstained
    n = int(total.value)
    ks = [k for k in range(n + 1) if consistent(k, n, best.pct, best.pct_digits)]
    if len(ks) != 1:
        return out, abstained
    conf = min(W_SHARE, total.confidence)
    why = f"{best.pct:g}% of {n} is {ks[0]}"
    out["n_resorbed"] = field(
        nz, best.start, best.end, best.sentence, ks[0], conf, "count.share", reason=why
    )
    out["percent"] = field(
        nz, best.start, best.end, best.sentence, best.pct, conf, "percent.stated", reason=why
    )
    return out, abstained


def _report_total(nz: Normalized, best: Report) -> FieldProposal | None:
    if best.n is None:
        return None
    start, end = best.n_span or (best.start, best.end)
    conf = best.confidence
    if best.n_from == "categories":
        conf = W_CATEGORIES
    reason = {
        "pair": f"denominator of {best.k}",
        "groups": "groups added",
        "categories": "all outcome categories added",
    }.get(best.n_from, "")
    return field(nz, start, end, best.sentence, best.n, conf, f"total.{best.n_from}", reason=reason)


def _stage_total(
    nz: Normalized,
    best: Report | None,
    cands: list[TotalCandidate],
    out: dict[str, FieldProposal],
    abstained: dict[str, Abstention],
) -> None:
    chosen, conf, reason, problem = _choose_total(best, cands)
    if problem is not None and chosen is None:
        abstained["n_total"] = Abstention(
            problem, tuple(_cand(nz, c.n, c.label, c.start, c.end) for c in cands), W_RIVAL
        )
        return
    if chosen is None:
        return
    if best is None:
        conf = min(conf, 0.75)
        reason = f"total stated, no outcome count; {reason}"
    method = (
        "total.share-fit"
        if conf == W_TOTAL_SHARE_FIT
        else ("total.alone" if best is None else "total.stage")
    )
    out["n_total"] = field(
        nz,
        chosen.start,
        chosen.end,
        chosen.sentence,
        chosen.n,
        conf,
        method,
        note=problem,
        reason=reason,
    )


def _percent(nz: Normalized, best: Report | None, out: dict[str, FieldProposal]) -> None:
    if best is None or best.pct is None or "n_total" not in out:
        return
    n = out["n_total"].value
    if not consistent(best.k, int(n), best.pct, best.pct_digits):
        return
    conf = min(out["n_total"].confidence, out["n_resorbed"].confidence)
    out["percent"] = field(
        nz,
        best.start,
        best.end,
        best.sentence,
        best.pct,
        conf,
        "percent.stated",
        reason=f"{best.pct:g}% stated, = {best.k}/{n}",
    )


def _cand(nz: Normalized, value: int, label: str, start: int, end: int) -> Candidate:
    o0, o1 = nz.span(start, end)
    return Candidate(value, label, o0, o1)
