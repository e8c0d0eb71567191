"""Per-field precision/recall of the extraction rules on the annotated passages.

Run: ``python benchmarks/extraction.py [--misses]``. Prints one table for the held-out part
(tests/data/extraction/test.jsonl, never used to tune the rules), one for the development part
and one for all passages, plus the counts' figures at confidence >= 0.7.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.extraction.evaluation import (  # noqa: E402
    COUNT_FIELDS,
    combined,
    load_passages,
    score,
    table,
)

DATA = ROOT / "tests" / "data" / "extraction"


def main() -> None:
    """Print the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--misses", action="store_true", help="list each wrong or missed value")
    args = parser.parse_args()
    test = load_passages(DATA / "test.jsonl")
    dev = load_passages(DATA / "dev.jsonl")
    for label, passages in (
        ("held-out (test.jsonl)", test),
        ("dev (dev.jsonl)", dev),
        ("all", test + dev),
    ):
        started = time.perf_counter()
        tallies = score(passages)
        elapsed = time.perf_counter() - started
        print(f"== {label}: {len(passages)} passages, {1000 * elapsed / len(passages):.1f} ms each")
        print(table(tallies))
        high = combined(score(passages, min_confidence=0.7), COUNT_FIELDS)
        print(
            f"counts at confidence >= 0.7: TP {high.tp} FP {high.fp} FN {high.fn}"
            f"  precision {high.precision if high.precision is None else round(high.precision, 2)}"
            f"  recall {high.recall if high.recall is None else round(high.recall, 2)}"
        )
        if args.misses:
            for name, tally in tallies.items():
                for miss in tally.misses:
                    print(f"  {name}: {miss}")
        print()


if __name__ == "__main__":
    main()
