"""Moderators of a review's estimate: reading a moderator's value per study, and hypotheses.

Values come from the study's extracted fields (``Study.value``). A continuous moderator is read as
a number: ``year`` is the publication year; a duration ("12 months", "2 years", "24 weeks",
"6-12 months", or ``{"value": 2, "unit": "years"}``) becomes months; a range ("25-67") or a mean
with SD ("45.3 ± 9.1") gives its centre; anything else unreadable is missing.

A **hypothesis** is a claim the protocol makes about subgroups (the seed's: ruptured herniations
resorb more often than contained ones; resorption differs between countries; it happens mainly
within 3–6 months). Each update tests it with the mixed-effects model ``mods = ~ factor(group)``
(:func:`.regression.meta_regression`; QM, its df and p) and pools each group on its own for the
estimates shown. A group is made from the field's values by a mapping (``groups``), by a cut on
a continuous value (``cut``: ≤ cut vs > cut), or is the value itself. Groups with fewer than
``min_studies`` studies are left out; with fewer than two groups left the hypothesis is
*untestable* and says why. ``expect``: ``greater`` / ``less`` (the first group's estimate above /
below the second's, and p < alpha), ``differs`` (p < alpha), ``similar`` (p ≥ alpha — no
difference detected, which is weaker than equivalence and is said so).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.meta_analysis.errors import MetaAnalysisError
from services.meta_analysis.pooling import pool
from services.meta_analysis.regression import meta_regression
from services.meta_analysis.results import _finite
from services.meta_analysis.studies import Study

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MONTHS = {"day": 1 / 30.4375, "week": 7 / 30.4375, "month": 1.0, "year": 12.0}
_UNIT = re.compile(r"(day|week|month|year|yr|mo|wk)s?\b", re.IGNORECASE)
_SHORT = {"yr": "year", "mo": "month", "wk": "week"}
EXPECTATIONS = ("greater", "less", "differs", "similar")


def _centre(text: str) -> float | None:
    """The number of a cell: one number, or the centre of a range / mean ± SD."""
    if "±" in text or "+/-" in text:
        text = re.split(r"±|\+/-", text)[0]
    numbers = [float(n) for n in _NUMBER.findall(text.replace(",", "."))]
    if not numbers:
        return None
    if len(numbers) >= 2 and re.search(r"\d\s*(?:-|–|to)\s*\d", text):
        return (numbers[0] + numbers[1]) / 2
    return numbers[0]


def months(value: Any) -> float | None:
    """A duration in months (numbers without a unit are taken as months)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        number, unit = value.get("value"), str(value.get("unit") or "month")
        if not isinstance(number, int | float):
            return None
        match = _UNIT.search(unit)
        name = _SHORT.get(match.group(1).lower(), match.group(1).lower()) if match else "month"
        return float(number) * _MONTHS[name]
    text = str(value)
    number = _centre(text)
    if number is None:
        return None
    match = _UNIT.search(text)
    name = _SHORT.get(match.group(1).lower(), match.group(1).lower()) if match else "month"
    return number * _MONTHS[name]


def numeric_value(study: Study, name: str) -> float | None:
    """The moderator ``name`` of ``study`` as a number (see the module docstring)."""
    if name in ("year", "publication_year"):
        return None if study.year is None else float(study.year)
    raw = study.value(name)
    if raw is None or raw == "":
        return None
    if "follow" in name or "duration" in name or isinstance(raw, Mapping):
        return months(raw)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    return _centre(str(raw))


@dataclass(frozen=True)
class HypothesisSpec:
    """One protocol-declared hypothesis about subgroups (see the module docstring)."""

    name: str
    by: str
    expect: str
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)
    cut: float | None = None
    min_studies: int = 2
    alpha: float = 0.05


@dataclass(frozen=True)
class HypothesisResult:
    """The test of one hypothesis on the current studies."""

    name: str
    by: str
    expect: str
    status: str  # supported | not supported | untestable
    k: int
    groups: dict[str, dict[str, Any]]
    qm: float | None = None
    df: int | None = None
    p: float | None = None
    reason: str = ""

    def sentence(self) -> str:
        """One line for the digest and the audit."""
        if self.status == "untestable":
            return f"{self.name}: not testable yet ({self.reason})"
        shares = " vs ".join(
            f"{g} {100 * v['estimate']:.1f}% (k = {v['k']})"
            for g, v in self.groups.items()
            if v.get("estimate") is not None
        )
        return (
            f"{self.name}: {shares}; QM = {self.qm:.2f} (df {self.df}), p = {self.p:.3g}; "
            f"k = {self.k} — {self.status}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with the sentence."""
        data: dict[str, Any] = _finite({**self.__dict__, "sentence": self.sentence()})
        return data


def _group_of(study: Study, spec: HypothesisSpec) -> str | None:
    if spec.cut is not None:
        value = numeric_value(study, spec.by)
        if value is None:
            return None
        return f"≤ {spec.cut:g}" if value <= spec.cut else f"> {spec.cut:g}"
    raw = study.value(spec.by)
    values = raw if isinstance(raw, list) else [raw]
    names = {str(v).strip() for v in values if v not in (None, "")}
    if not spec.groups:
        return next(iter(names)) if len(names) == 1 else None
    found = {
        group
        for group, members in spec.groups.items()
        for name in names
        if name.casefold() in {m.casefold() for m in members}
    }
    return next(iter(found)) if len(found) == 1 else None


def _untestable(spec: HypothesisSpec, k: int, groups: dict[str, Any], why: str) -> HypothesisResult:
    return HypothesisResult(spec.name, spec.by, spec.expect, "untestable", k, groups, reason=why)


def check_hypothesis(
    studies: Sequence[Study], spec: HypothesisSpec, **options: Any
) -> HypothesisResult:
    """Test ``spec`` on ``studies`` (pooling ``options``: transform, method, test)."""
    if spec.expect not in EXPECTATIONS:
        raise MetaAnalysisError(f"hypothesis {spec.name!r}: expect must be one of {EXPECTATIONS}")
    labels = [_group_of(s, spec) for s in studies]
    counts: dict[str, int] = {}
    for label in labels:
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
    kept = {g for g, n in counts.items() if n >= spec.min_studies}
    order = [g for g in spec.groups if g in kept] or sorted(kept)
    if spec.cut is not None:
        order = [g for g in (f"≤ {spec.cut:g}", f"> {spec.cut:g}") if g in kept]
    members = [(s, g) for s, g in zip(studies, labels, strict=True) if g in kept]
    groups: dict[str, dict[str, Any]] = {}
    for name in order:
        chosen = [s for s, g in members if g == name]
        res = pool([s.events for s in chosen], [s.total for s in chosen], **options)
        groups[name] = {
            "k": res.k,
            "estimate": res.estimate,
            "ci_low": res.ci_low,
            "ci_high": res.ci_high,
        }
    few = {g: n for g, n in counts.items() if g not in kept}
    if len(order) < 2:
        if not counts:
            why = f"no study reports {spec.by} yet"
        else:
            why = (
                f"{len(order)} of {len(counts)} groups of {spec.by} have at least "
                f"{spec.min_studies} studies (2 needed)"
                + (f"; too few in {', '.join(f'{g} ({n})' for g, n in few.items())}" if few else "")
            )
        return _untestable(spec, len(members), groups, why)
    try:
        model = meta_regression(
            [s for s, _ in members],
            spec.by,
            kind="categorical",
            reference=order[0],
            values=[g for _, g in members],
            **options,
        )
    except MetaAnalysisError as exc:
        return _untestable(spec, len(members), groups, str(exc))
    first, second = (groups[order[0]]["estimate"], groups[order[1]]["estimate"])
    significant = model.qm_p < spec.alpha
    if spec.expect == "greater":
        holds = significant and first is not None and second is not None and first > second
    elif spec.expect == "less":
        holds = significant and first is not None and second is not None and first < second
    elif spec.expect == "differs":
        holds = significant
    else:
        holds = not significant
    return HypothesisResult(
        name=spec.name,
        by=spec.by,
        expect=spec.expect,
        status="supported" if holds else "not supported",
        k=model.k,
        groups=groups,
        qm=model.qm,
        df=model.qm_df[0],
        p=model.qm_p,
    )


def check_hypotheses(
    studies: Sequence[Study], specs: Sequence[HypothesisSpec], **options: Any
) -> list[HypothesisResult]:
    """Test every hypothesis of the protocol on the studies of one snapshot."""
    return [check_hypothesis(studies, spec, **options) for spec in specs]


def hypothesis_changes(
    previous: Sequence[Mapping[str, Any]] | None, current: Sequence[HypothesisResult]
) -> list[str]:
    """Digest reasons for the hypotheses whose verdict changed since the previous snapshot."""
    before = {h.get("name"): h.get("status") for h in previous or []}
    return [
        f"hypothesis {before.get(h.name) or 'not tested'} → {h.sentence()}"
        for h in current
        if before.get(h.name) != h.status
    ]
