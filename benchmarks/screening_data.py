"""Loading a screening CSV for the benchmark, and the shared choice of prior records.

Columns: ``title``, ``abstract``, ``label_included`` (0/1) are required; ``keywords``, ``year`` and
``pmid`` are optional. A bad file raises :class:`DatasetError` with one line naming what to fix.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REQUIRED = ("title", "abstract", "label_included")
MISSING = {"", "NA", "N/A", "nan", "NaN", "None"}


class DatasetError(ValueError):
    """The CSV cannot be used by the benchmark (missing column, bad label...)."""


@dataclass(frozen=True)
class Dataset:
    """One screening dataset: texts in file order, 0/1 labels and a chronological key."""

    name: str
    titles: list[str]
    abstracts: list[str]
    keywords: list[str]
    labels: np.ndarray
    order_key: np.ndarray  # year, then pmid, then file row: used by the replay

    @property
    def texts(self) -> list[str]:
        """Title, abstract and keywords joined: the text both systems' features start from."""
        return [
            f"{t}\n{a}\n{k}"
            for t, a, k in zip(self.titles, self.abstracts, self.keywords, strict=True)
        ]


def _clean(value: str | None) -> str:
    value = (value or "").strip()
    return "" if value in MISSING else value


def _number(value: str | None) -> float:
    value = _clean(value)
    try:
        return float(value)
    except ValueError:
        return np.inf


def load_dataset(path: Path) -> Dataset:
    """Read a screening CSV; raise DatasetError naming the column or row to fix."""
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path.name}: missing column(s) {', '.join(missing)}")
        rows = list(reader)
    labels = []
    for i, row in enumerate(rows, start=2):
        value = _clean(row["label_included"])
        if value not in {"0", "1"}:
            raise DatasetError(f"{path.name}: line {i}: label_included must be 0 or 1")
        labels.append(int(value))
    y = np.asarray(labels, dtype=np.int64)
    if y.sum() < 2 or (y == 0).sum() < 2:
        raise DatasetError(f"{path.name}: needs at least 2 included and 2 excluded records")
    years = np.array([_number(r.get("year")) for r in rows])
    pmids = np.array([_number(r.get("pmid")) for r in rows])
    key = np.lexsort((np.arange(len(rows)), pmids, years))
    order_key = np.empty(len(rows), dtype=np.int64)
    order_key[key] = np.arange(len(rows))
    return Dataset(
        name=path.stem,
        titles=[_clean(r["title"]) for r in rows],
        abstracts=[_clean(r["abstract"]) for r in rows],
        keywords=[_clean(r.get("keywords")) for r in rows],
        labels=y,
        order_key=order_key,
    )


def prior_records(labels: np.ndarray, seed: int) -> tuple[int, int]:
    """The 1 included + 1 excluded prior record (row indices) used by both systems for a seed."""
    rng = np.random.default_rng(seed)
    include = int(rng.choice(np.flatnonzero(labels == 1)))
    exclude = int(rng.choice(np.flatnonzero(labels == 0)))
    return include, exclude
