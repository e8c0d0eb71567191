"""Follow-up duration, age and sex counts (run on the normalised abstract).

Rule ids: ``follow_up.mean`` (mean/median/average), ``follow_up.range``, ``follow_up.timepoint``
(the longest "at/after/for N unit"), ``age.mean``, ``age.range``, ``sex.counts``.
"""

from __future__ import annotations

import re

from services.extraction.counts import field
from services.extraction.proposal import FieldProposal
from services.extraction.text import Normalized, sentences

_UNIT = r"(days?|weeks?|months?|years?|yrs?)"
_N = r"(\d+(?:\.\d+)?)"
_DAYS = {"day": 1, "week": 7, "month": 30.4, "year": 365.25, "yr": 365.25}

_FU_MEAN = re.compile(
    rf"(?:(?:mean|median|average)\s+(?:follow-up|follow\s+up|interval|duration)(?:\s+\w+){{0,3}}?"
    rf"\s+(?:was\s+|of\s+|were\s+)?{_N}\s*-?\s*{_UNIT}"
    rf"|(?:after|at|for|of)\s+(?:an?\s+)?(?:mean|median|average)\s+(?:follow-up\s+)?(?:of\s+)?"
    rf"{_N}\s*-?\s*{_UNIT}"
    rf"|(?:averaged|lasted)\s+{_N}\s*{_UNIT}(?:\s+on\s+average)?"
    rf"|(?:mean|median|average)\s+{_N}\s*-?\s*{_UNIT}\s+(?:of\s+)?follow-up)",
    re.IGNORECASE,
)
_FU_RANGE = re.compile(
    rf"{_N}\s*(?:to|-|–)\s*{_N}\s*{_UNIT}\s+(?:later|after)"
    rf"|(?:interval|follow-up)[^.;]{{0,40}}?ranged\s+from\s+{_N}\s*(?:to|-|–)\s*{_N}\s*{_UNIT}",
    re.IGNORECASE,
)
_FU_POINT = re.compile(
    rf"\b(?:at|after|for|by|over|follow-up\s+(?:was|of|lasted))\s+(?:at\s+least\s+|the\s+)?"
    rf"((?:\d+(?:\.\d+)?(?:,\s*|\s+and\s+))*\d+(?:\.\d+)?)\s*-?\s*{_UNIT}\b"
    rf"|\b(\d+(?:\.\d+)?)-(day|week|month|year)\s+(?:follow-up|MRI|scan)",
    re.IGNORECASE,
)
_FU_CONTEXT = re.compile(
    r"follow|MRI|scan|imaging|repeat|examin|later|interval|re-?assess|resor|regress|disappear"
    r"|^\W*(?:at|after)\s+\d",
    re.IGNORECASE,
)
_NOT_FU = re.compile(
    r"\b(?:aged?|old|older|younger|symptoms?|history|pain|duration)\b", re.IGNORECASE
)

_AGE_MEAN = re.compile(
    rf"(?:mean|average)\s+age(?:\s+was|\s+of|,)?\s*{_N}(?:\s*(?:±|\+/-)\s*[\d.]+)?\s*(?:years)?"
    rf"|aged\s+{_N}\s*(?:±|\+/-)\s*[\d.]+\s*years",
    re.IGNORECASE,
)
_AGE_RANGE = re.compile(
    r"(?:aged|age\s+range(?:,|\s+was|:)?|age[sd]?|ranged\s+in\s+age\s+from)\s+(\d+)\s*(?:to|-|–)\s*(\d+)"
    r"|[(;,]\s*(\d+)\s*(?:to|-|–)\s*(\d+)\s*years(?:\s+old)?\s*\)"
    r"|(\d+)\s*(?:to|-|–)\s*(\d+)\s*years\s+old",
    re.IGNORECASE,
)
_MALE = re.compile(r"(\d+)\s+(?:were\s+)?(?:men|males?|male\s+patients|boys)\b", re.IGNORECASE)
_FEMALE = re.compile(
    r"(\d+)\s+(?:were\s+)?(?:women|females?|female\s+patients|girls)\b", re.IGNORECASE
)


def _unit(raw: str) -> str:
    base = raw.lower().rstrip("s")
    return "years" if base in ("yr", "year") else base + "s"


def _num(raw: str) -> int | float:
    value = float(raw)
    return int(value) if value.is_integer() else value


def _fu_points(nz: Normalized, s0: int, s1: int) -> list[tuple[float, int | float, str, int, int]]:
    points = []
    for m in _FU_POINT.finditer(nz.text, s0, s1):
        if _NOT_FU.search(nz.text[max(s0, m.start() - 30) : m.start()]):
            continue
        numbers, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        for raw in re.findall(r"\d+(?:\.\d+)?", numbers):
            days = float(raw) * _DAYS[unit.lower().rstrip("s")]
            points.append((days, _num(raw), _unit(unit), m.start(), m.end()))
    return points


def propose_follow_up(nz: Normalized) -> FieldProposal | None:
    """Mean/median follow-up, else a stated range, else the longest imaging time point."""
    text = nz.text
    spans = [s for s in sentences(text) if _FU_CONTEXT.search(text[s[0] : s[1]])]
    for sent in spans:
        m = _FU_MEAN.search(text, *sent)
        if m:
            value, unit = next(
                (g, u) for g, u in zip(m.groups()[::2], m.groups()[1::2], strict=True) if g
            )
            return field(
                nz,
                m.start(),
                m.end(),
                sent,
                _num(value),
                0.85,
                "follow_up.mean",
                unit=_unit(unit),
            )
    for sent in spans:
        m = _FU_RANGE.search(text, *sent)
        if m:
            g = [x for x in m.groups() if x]
            return field(
                nz,
                m.start(),
                m.end(),
                sent,
                [_num(g[0]), _num(g[1])],
                0.75,
                "follow_up.range",
                unit=_unit(g[2]),
            )
    best: tuple[float, int | float, str, int, int, tuple[int, int]] | None = None
    for sent in spans:
        for point in _fu_points(nz, *sent):
            if best is None or point[0] > best[0]:
                best = (*point, sent)
    if best is None:
        return None
    return field(
        nz,
        best[3],
        best[4],
        best[5],
        best[1],
        0.65,
        "follow_up.timepoint",
        unit=best[2],
    )


def propose_age(nz: Normalized) -> FieldProposal | None:
    """Age in years: ``{"mean": x}`` and/or ``{"min": a, "max": b}``."""
    text = nz.text
    value: dict[str, int | float] = {}
    first: tuple[int, int, tuple[int, int]] | None = None
    for sent in sentences(text):
        m = _AGE_MEAN.search(text, *sent)
        if m and "mean" not in value:
            value["mean"] = _num(next(g for g in m.groups() if g))
            first = first or (m.start(), m.end(), sent)
        r = _AGE_RANGE.search(text, *sent)
        if r and "min" not in value:
            lo, hi = (int(g) for g in r.groups() if g)
            if 0 < lo < hi <= 110:
                value.update({"min": lo, "max": hi})
                first = first or (r.start(), r.end(), sent)
    if first is None:
        return None
    return field(
        nz, first[0], first[1], first[2], value, 0.8, "age.mean" if "mean" in value else "age.range"
    )


def propose_sex(nz: Normalized) -> FieldProposal | None:
    """Male and female counts stated in one sentence."""
    text = nz.text
    for sent in sentences(text):
        male = _MALE.search(text, *sent)
        female = _FEMALE.search(text, *sent)
        if male and female:
            start, end = min(male.start(), female.start()), max(male.end(), female.end())
            return field(
                nz,
                start,
                end,
                sent,
                {"male": int(male.group(1)), "female": int(female.group(1))},
                0.85,
                "sex.counts",
            )
    return None
