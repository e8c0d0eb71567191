"""Per-field precision/recall of the extractor on the annotated passages, abstentions and
calibration.

Run: ``python benchmarks/extraction.py [--misses]``. Uses the LDH review's protocol schema (its
outcome terms, condition terms and ``min_confidence``), as the product does. Prints, for the
held-out part (tests/data/extraction/structures_test.jsonl, never tuned on) and then for the
development parts: per-field TP/FP/FN, precision and recall; the share of passages stating both
counts where both were right; how many negatives got a count; how often a count the annotation
has was left empty (abstention rate); and the precision of the counts by confidence band with
the threshold switched off (calibration).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.extraction.evaluation import (  # noqa: E402
    COUNT_FIELDS,
    combined,
    load_passages,
    passage_figures,
    score,
    table,
)
from services.extraction.schema import ExtractionSchema, load_schema  # noqa: E402

DATA = ROOT / "tests" / "data" / "extraction"
PROTOCOL = ROOT / "reviews" / "ldh_resorption" / "protocol.toml"
SETS = (
    ("held-out (structures_test.jsonl)", ("structures_test.jsonl",)),
    (
        "development (structures_dev*.jsonl)",
        ("structures_dev.jsonl", "structures_dev2.jsonl", "structures_dev3.jsonl"),
    ),
    ("older passages (dev.jsonl + test.jsonl, all fields)", ("dev.jsonl", "test.jsonl")),
)
BANDS = ((0.9, 1.01), (0.8, 0.9), (0.7, 0.8), (0.0, 0.7))


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def calibration(passages: list[dict], schema: ExtractionSchema) -> list[str]:
    """Precision of n_total/n_resorbed proposals per confidence band, threshold off."""
    open_schema = dataclasses.replace(schema, min_confidence=0.0)
    rows = []
    for low, high in BANDS:
        counts = combined(score(passages, open_schema, min_confidence=low), COUNT_FIELDS)
        above = combined(score(passages, open_schema, min_confidence=high), COUNT_FIELDS)
        tp, fp = counts.tp - above.tp, counts.fp - above.fp
        share = tp / (tp + fp) if tp + fp else None
        rows.append(f"  confidence {low:.1f}-{min(high, 1.0):.1f}: {tp} right, {fp} wrong, "
                    f"precision {_fmt(share)}")
    return rows


def report(label: str, passages: list[dict], schema: ExtractionSchema, misses: bool) -> None:
    """Print one set's figures."""
    started = time.perf_counter()
    tallies = score(passages, schema)
    elapsed = time.perf_counter() - started
    figures = passage_figures(passages, schema)
    print(f"== {label}: {len(passages)} passages, {1000 * elapsed / len(passages):.1f} ms each")
    print(table(tallies))
    print(
        f"both counts right: {figures.both_right} of {figures.stating_both} passages stating both"
        f" ({_fmt(figures.both_right_share)}); negatives with a count: "
        f"{figures.negatives_with_counts} of {figures.negatives}; abstention rate (a count the "
        f"annotation has left empty): {figures.abstained} of "
        f"{figures.passages - figures.negatives} ({_fmt(figures.abstention_rate)})"
    )
    print(f"calibration (threshold {schema.min_confidence:.2f} switched off):")
    print("\n".join(calibration(passages, schema)))
    if misses:
        for name, tally in tallies.items():
            for miss in tally.misses:
                print(f"  {name}: {miss}")
    print()


def main() -> None:
    """Print the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--misses", action="store_true", help="list each wrong or missed value")
    args = parser.parse_args()
    schema = load_schema(PROTOCOL)
    for label, names in SETS:
        passages = [p for name in names for p in load_passages(DATA / name)]
        report(label, passages, schema, args.misses)


if __name__ == "__main__":
    main()
