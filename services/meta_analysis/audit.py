"""Data audit of prevalence extractions, run before every pooling and shown with its results.

Checks (code — severity):

- ``retracted`` — error: the study is retracted; left out of pooling by default, with the
  retraction notice as the reason (:func:`services.meta_analysis.analysis.analyse` adds the
  sensitivity estimate with it).
- ``missing_count`` / ``negative_count`` / ``zero_total`` / ``events_exceed_total`` — error:
  the study is left out of pooling (see :func:`poolable`), with the finding as the reason.
- ``percent_mismatch`` — warning: the stated percentage differs from events/total by more than
  0.1 points (``percent_rounding`` — info — between 0.05 and 0.1: a rounding slip). When the
  stated percentage matches a nearby reading of the counts (digits dropped or swapped), the
  message says so.
- ``sex_total_mismatch`` — warning: males + females differ from the total.
- ``duplicate_cohort`` — warning: two studies with the same counts and demographics, or the same DOI.
- ``same_first_author`` — info: same first author within five years; cohorts may overlap.
- ``headline_mismatch`` — warning: a headline (events/total, percent, k) the studies do not
  reproduce; only the seed review's own studies count (``source`` "baseline" or unset), so
  studies included by later screening never make the seed's headline look wrong.

The audit never changes a value; it only reports.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from services.meta_analysis.studies import Study

ERROR, WARNING, INFO = "error", "warning", "info"
_EXCLUDING = frozenset({"retracted", "missing_count", "negative_count", "zero_total", "events_exceed_total"})


@dataclass(frozen=True)
class Finding:
    """One audit finding; ``study`` is None for findings about the whole set."""

    severity: str
    code: str
    study: str | None
    message: str

    @property
    def excludes(self) -> bool:
        """True when the study must be left out of pooling."""
        return self.code in _EXCLUDING

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with ``excludes``."""
        return {**asdict(self), "excludes": self.excludes}


@dataclass(frozen=True)
class Headline:
    """A published summary figure to check, e.g. "76.6% (1684/2199)" from 31 studies."""

    events: int | None = None
    total: int | None = None
    percent: float | None = None
    k: int | None = None


def _retracted(s: Study) -> Finding | None:
    if s.retracted is None:
        return None
    return Finding(ERROR, "retracted", s.label, f"{s.retracted}; left out of pooling")


def _impossible(s: Study) -> Finding | None:
    for name, value in (("events", s.events), ("total", s.total)):
        if value is None or not math.isfinite(value):
            raw = s.extra.get(f"raw_{name}")
            what = "missing" if raw is None else f"not a number ({raw!r})"
            return Finding(
                ERROR, "missing_count", s.label, f"{name} is {what}; left out of pooling"
            )
        if value < 0:
            return Finding(
                ERROR,
                "negative_count",
                s.label,
                f"{name} = {value:g} is negative; left out of pooling",
            )
    if s.total == 0:
        return Finding(ERROR, "zero_total", s.label, "total is 0; left out of pooling")
    if s.events > s.total:  # type: ignore[operator]
        return Finding(
            ERROR,
            "events_exceed_total",
            s.label,
            f"{s.events:g} events exceed the total of {s.total:g} patients; left out of pooling",
        )
    return None


def _readings(events: float, total: float) -> list[tuple[int, int]]:
    """Nearby readings of a count pair: one digit dropped or two adjacent digits swapped."""

    def variants(value: float) -> set[int]:
        text = str(int(value))
        out = {int(value)}
        out |= {int(text[:i] + text[i + 1 :]) for i in range(len(text)) if len(text) > 1}
        out |= {int(text[:i] + text[i + 1] + text[i] + text[i + 2 :]) for i in range(len(text) - 1)}
        return out

    return [
        (x, n)
        for x in variants(events)
        for n in variants(total)
        if 0 <= x <= n and n > 0 and (x, n) != (int(events), int(total))
    ]


def _percent(s: Study) -> Finding | None:
    if s.reported_percent is None or s.events is None or not s.total:
        return None
    actual = 100.0 * s.events / s.total
    diff = abs(actual - s.reported_percent)
    stated = f"stated {s.reported_percent:g}% but {s.events:g}/{s.total:g} = {actual:.1f}%"
    if diff <= 0.05 + 1e-9:
        return None
    if diff <= 0.1:
        return Finding(INFO, "percent_rounding", s.label, f"{stated} (rounding)")
    hints = [
        f"{x}/{n}"
        for x, n in _readings(s.events, s.total)
        if abs(100.0 * x / n - s.reported_percent) <= 0.05 + 1e-9
    ]
    hint = f"; the stated percentage fits {' or '.join(hints)}" if hints else ""
    return Finding(WARNING, "percent_mismatch", s.label, stated + hint)


def _sex(s: Study) -> Finding | None:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", s.sex or "")
    if match is None or s.total is None:
        return None
    males, females = int(match.group(1)), int(match.group(2))
    if males + females == s.total:
        return None
    return Finding(
        WARNING,
        "sex_total_mismatch",
        s.label,
        f"males/females {males}/{females} sum to {males + females}, not the total of {s.total:g}",
    )


def _surname(s: Study) -> str | None:
    name = s.first_author or re.split(r"\s+et al|,", s.label)[0]
    return name.strip().lower() or None


def _year(s: Study) -> int | None:
    if s.year is not None:
        return s.year
    found = re.search(r"\b(19|20)\d\d\b", s.label)
    return int(found.group(0)) if found else None


def _close_years(a: Study, b: Study) -> bool:
    ya, yb = _year(a), _year(b)
    return ya is not None and yb is not None and abs(ya - yb) <= 5


def _candidate_pairs(
    studies: Sequence[Study], surnames: Sequence[str | None]
) -> list[tuple[int, int]]:
    """Index pairs (i < j) that can satisfy a pair check, found by grouping, not all k² pairs:
    same counts and demographics, same DOI, or same first author within five years."""
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    authors: dict[str | None, list[tuple[int, int]]] = defaultdict(list)
    for i, s in enumerate(studies):
        if s.total is not None and (s.age_range or s.sex):
            groups[("counts", s.events, s.total, s.age_range, s.sex)].append(i)
        if s.extra.get("doi"):
            groups[("doi", s.extra["doi"])].append(i)
        year = _year(s)
        if year is not None:
            authors[surnames[i]].append((year, i))
    pairs = {pair for members in groups.values() for pair in itertools.combinations(members, 2)}
    for entries in authors.values():
        entries.sort()
        for first, (year, i) in enumerate(entries):
            for later_year, j in entries[first + 1 :]:
                if later_year - year > 5:
                    break
                pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def _pairs(studies: Sequence[Study]) -> list[Finding]:
    found = []
    surnames = [_surname(s) for s in studies]
    for i, j in _candidate_pairs(studies, surnames):
        a, b = studies[i], studies[j]
        same_counts = (a.events, a.total) == (b.events, b.total) and a.total is not None
        same_people = (a.age_range, a.sex) == (b.age_range, b.sex) and (a.age_range or a.sex)
        same_doi = a.extra.get("doi") and a.extra.get("doi") == b.extra.get("doi")
        if (same_counts and same_people) or same_doi:
            why = (
                "the same DOI"
                if same_doi
                else (
                    f"the same counts ({a.events:g}/{a.total:g}), ages ({a.age_range}) and sex "
                    f"({a.sex})"
                )
            )
            found.append(
                Finding(
                    WARNING,
                    "duplicate_cohort",
                    b.label,
                    f"likely the same cohort as {a.label}: {why}; pool only one",
                )
            )
        elif surnames[i] == surnames[j] and _close_years(a, b):
            found.append(
                Finding(
                    INFO,
                    "same_first_author",
                    b.label,
                    f"same first author as {a.label}; check that the cohorts do not overlap",
                )
            )
    return found


def _headline(studies: Sequence[Study], headline: Headline) -> list[Finding]:
    events = sum(s.events or 0 for s in studies)
    total = sum(s.total or 0 for s in studies)
    valid = [s for s in studies if _impossible(s) is None]
    v_events, v_total = sum(s.events for s in valid), sum(s.total for s in valid)  # type: ignore[misc]
    problems = []
    if headline.k is not None and headline.k != len(studies):
        problems.append(f"k = {headline.k} stated, {len(studies)} studies listed")
    if headline.events is not None and headline.events != events:
        problems.append(f"{headline.events} events stated, the studies sum to {events:g}")
    if headline.total is not None and headline.total != total:
        problems.append(f"{headline.total} patients stated, the studies sum to {total:g}")
    if headline.percent is not None and headline.events and headline.total:
        own = 100.0 * headline.events / headline.total
        if abs(own - headline.percent) > 0.05 + 1e-9:
            problems.append(f"{headline.percent:g}% stated but its own ratio is {own:.1f}%")
    if not problems:
        return []
    crude = f"{v_events:g}/{v_total:g} = {100.0 * v_events / v_total:.1f}%" if v_total else "none"
    return [
        Finding(
            WARNING,
            "headline_mismatch",
            None,
            "headline not reproduced: "
            + "; ".join(problems)
            + f" (crude ratio of the possible rows: {crude})",
        )
    ]


def audit(studies: Sequence[Study], headline: Headline | None = None) -> list[Finding]:
    """Audit ``studies`` (and a headline, if given); findings in study order, set-level last."""
    findings: list[Finding] = []
    for study in studies:
        for check in (_retracted, _impossible, _percent, _sex):
            finding = check(study)
            if finding is not None:
                findings.append(finding)
    findings.extend(_pairs(studies))
    if headline is not None:
        findings.extend(_headline([s for s in studies if s.source in (None, "baseline")], headline))
    return findings


def poolable(
    studies: Sequence[Study], findings: Sequence[Finding]
) -> tuple[list[Study], dict[str, str]]:
    """Split studies into those to pool and those left out (label → reason from the audit)."""
    reasons: dict[str, str] = {}
    for f in findings:
        if f.excludes and f.study is not None:
            reasons.setdefault(f.study, f.message)  # the first reason: a retraction before counts
    return [s for s in studies if s.label not in reasons], reasons
