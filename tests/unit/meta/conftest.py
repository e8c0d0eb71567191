"""Shared fixtures of the meta-analysis unit tests: the committed metafor reference."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
REFERENCE = REPO / "tests" / "reference" / "metafor_reference.json.gz"
TABLE1 = REPO / "reviews" / "ldh_resorption" / "baseline" / "table1_prevalence.csv"


def load_reference() -> dict[str, Any]:
    """The golden values written by tests/reference/metafor_reference.R (gzip JSON)."""
    with gzip.open(REFERENCE, "rt", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    """The golden values written by tests/reference/metafor_reference.R."""
    return load_reference()


def table1_counts(reference: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Events/totals of the review's baseline Table 1 without impossible rows (skip if absent)."""
    if not TABLE1.exists():
        pytest.skip(f"{TABLE1.relative_to(REPO)} is not in this checkout")
    if hashlib.md5(TABLE1.read_bytes()).hexdigest() != reference["table1_md5"]:
        pytest.fail("baseline Table 1 changed since the reference was made; rerun the R script")
    import csv

    rows = list(csv.DictReader(TABLE1.open(newline="")))
    keep = [r for r in rows if int(r["n_resorbed"]) <= int(r["n_total"])]
    return [int(r["n_resorbed"]) for r in keep], [int(r["n_total"]) for r in keep]
