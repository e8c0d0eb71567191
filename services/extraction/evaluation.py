"""Field-level precision and recall of :func:`propose` against annotated passages.

Passages are JSON lines (see ``tests/data/extraction/README.md``). Scalar fields: a proposal
equal to the expected value is a true positive; a wrong or unexpected proposal a false
positive; an expected value not proposed correctly a false negative. List fields (herniation
types, predictors, mechanisms) are scored per item.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.extraction.core import propose
from services.extraction.errors import InputError
from services.extraction.proposal import FIELD_ORDER, FieldProposal
from services.extraction.schema import ExtractionSchema

LIST_FIELDS = frozenset({"herniation_type", "predictors", "mechanisms"})
COUNT_FIELDS = ("n_total", "n_resorbed")


@dataclass
class Tally:
    """True positives, false positives and false negatives of one field."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP), None when nothing was proposed."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN), None when nothing was expected."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def load_passages(path: Path) -> list[dict[str, Any]]:
    """Annotated passages from a JSON-lines file; InputError names the bad line."""
    passages = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path.name} line {number}: not JSON ({exc.msg})") from exc
        if not {"id", "title", "abstract", "expected"} <= set(item):
            raise InputError(f"{path.name} line {number}: needs id, title, abstract, expected")
        passages.append(item)
    return passages


def observed(fp: FieldProposal, name: str) -> Any:
    """The proposal in the annotation's shape (follow-up carries its unit)."""
    if name == "follow_up":
        return {"value": fp.value, "unit": fp.unit}
    return fp.value


def same(name: str, got: Any, want: Any) -> bool:
    """Whether a proposed scalar value matches the annotation (a list of labels: any of them)."""
    if isinstance(want, list) and name not in LIST_FIELDS:
        return any(same(name, got, w) for w in want)
    if name == "percent":
        return abs(float(got) - float(want)) < 0.05
    if isinstance(want, str) and isinstance(got, str):
        return got.casefold() == want.casefold()
    return bool(got == want)


def _tally_one(tally: Tally, item_id: str, name: str, got: Any, want: Any) -> None:
    if name in LIST_FIELDS:
        g = {str(v).casefold() for v in got or []}
        w = {str(v).casefold() for v in want or []}
        tally.tp += len(g & w)
        tally.fp += len(g - w)
        tally.fn += len(w - g)
        if g != w:
            tally.misses.append(f"{item_id}: got {sorted(g)} want {sorted(w)}")
        return
    if got is not None and want is not None and same(name, got, want):
        tally.tp += 1
        return
    tally.fp += got is not None
    tally.fn += want is not None
    if got is not None or want is not None:
        tally.misses.append(f"{item_id}: got {got!r} want {want!r}")


def score(
    passages: Iterable[Mapping[str, Any]],
    schema: ExtractionSchema | None = None,
    min_confidence: float = 0.0,
) -> dict[str, Tally]:
    """Tally per field over the passages (proposals below ``min_confidence`` are ignored)."""
    tallies = {name: Tally() for name in FIELD_ORDER}
    for item in passages:
        proposal = propose(
            item["title"], item["abstract"], metadata=item.get("metadata") or {}, schema=schema
        )
        for name in item.get("scored") or FIELD_ORDER:
            fp = proposal.fields.get(name)
            got = observed(fp, name) if fp and fp.confidence >= min_confidence else None
            _tally_one(tallies[name], item["id"], name, got, item["expected"].get(name))
    return tallies


@dataclass
class PassageFigures:
    """Passage-level figures of the counts: both right, wrong numbers, abstentions."""

    stating_both: int = 0
    both_right: int = 0
    negatives: int = 0
    negatives_with_counts: int = 0
    passages: int = 0
    abstained: int = 0  # passages where a count the annotation has was not proposed
    failures: list[str] = field(default_factory=list)

    @property
    def both_right_share(self) -> float | None:
        """Share of the passages stating both counts where both were proposed right."""
        return self.both_right / self.stating_both if self.stating_both else None

    @property
    def abstention_rate(self) -> float | None:
        """Share of passages with an annotated count where one was left empty."""
        with_counts = self.passages - self.negatives
        return self.abstained / with_counts if with_counts else None


def passage_figures(
    passages: Iterable[Mapping[str, Any]], schema: ExtractionSchema | None = None
) -> PassageFigures:
    """Both-counts-right share, negatives given counts, and abstentions, over the passages."""
    figures = PassageFigures()
    for item in passages:
        proposal = propose(
            item["title"], item["abstract"], metadata=item.get("metadata") or {}, schema=schema
        )
        want = {k: item["expected"].get(k) for k in COUNT_FIELDS}
        got = {k: proposal.value(k) for k in COUNT_FIELDS}
        figures.passages += 1
        if all(v is None for v in want.values()):
            figures.negatives += 1
            if any(v is not None for v in got.values()):
                figures.negatives_with_counts += 1
                figures.failures.append(f"{item['id']}: counts {got} on a negative")
            continue
        if any(want[k] is not None and got[k] is None for k in COUNT_FIELDS):
            figures.abstained += 1
        if all(v is not None for v in want.values()):
            figures.stating_both += 1
            if got == want:
                figures.both_right += 1
            else:
                figures.failures.append(f"{item['id']}: got {got} want {want}")
    return figures


def combined(tallies: Mapping[str, Tally], names: Iterable[str]) -> Tally:
    """The sum of several fields' tallies (e.g. both counts)."""
    total = Tally()
    for name in names:
        total.tp += tallies[name].tp
        total.fp += tallies[name].fp
        total.fn += tallies[name].fn
    return total


def _fmt(x: float | None) -> str:
    return "  n/a" if x is None else f"{x:5.2f}"


def table(tallies: Mapping[str, Tally]) -> str:
    """A plain-text per-field table: TP, FP, FN, precision, recall."""
    rows = [f"{'field':<16}{'TP':>5}{'FP':>5}{'FN':>5}{'prec':>8}{'recall':>8}"]
    for name, t in [*tallies.items(), ("counts (both)", combined(tallies, COUNT_FIELDS))]:
        rows.append(
            f"{name:<16}{t.tp:>5}{t.fp:>5}{t.fn:>5}   {_fmt(t.precision)}   {_fmt(t.recall)}"
        )
    return "\n".join(rows)
