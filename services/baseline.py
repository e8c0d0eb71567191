"""Import a review's baseline (the published review it continues) as included studies.

The seed's tables are imported as printed, errors included, with their provenance (file, row,
the printed values); the data audit finds the errors, nothing here corrects them. Re-running the
import changes nothing (studies are keyed by the review and the reference number).

Errors: :class:`BaselineError` for a missing file or column, naming the file.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Extraction, Review, Study
from services.pubmed.parse import title_key

logger = logging.getLogger(__name__)

TABLES = {
    "prevalence": ("table1_prevalence.csv", "seed:table1"),
    "predictors": ("table2_predictors.csv", "seed:table2"),
    "mechanisms": ("table3_mechanisms.csv", "seed:table3"),
    # The direction of each predictor where the seed's text states it (Table 2 does not).
    "predictor_directions": ("table2_directions.csv", "seed:text"),
}
OPTIONAL_TABLES = {"predictor_directions"}
REFERENCE_COLUMNS = {"ref", "authors", "title", "journal", "year", "doi"}


class BaselineError(Exception):
    """A baseline file is missing or lacks a required column."""


@dataclass
class BaselineCounts:
    references: int = 0
    prevalence: int = 0
    predictors: int = 0
    mechanisms: int = 0
    predictor_directions: int = 0


def _read_csv(path: Path, required: set[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise BaselineError(f"baseline file {path} is missing")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise BaselineError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        return list(reader)


def _printed(value: str) -> Any:
    """A printed cell: an int or float when it reads as one, else the text; empty/NA → None."""
    text = value.strip()
    if text in ("", "NA"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _first_author(authors: str) -> str | None:
    head = authors.split(",")[0].strip()
    parts = head.split()
    # "el Barzouhi A" → "el Barzouhi": drop the trailing initials.
    if len(parts) > 1 and parts[-1].isupper() and len(parts[-1]) <= 3:
        parts = parts[:-1]
    return " ".join(parts) or None


def import_baseline(session: Session, review: Review, directory: Path) -> BaselineCounts:
    """Create the baseline studies and their published extractions; idempotent."""
    counts = BaselineCounts()
    refs = _read_csv(directory / "references.csv", REFERENCE_COLUMNS)
    existing = {
        s.ref_no: s
        for s in session.scalars(select(Study).where(Study.review_id == review.id))
        if s.ref_no is not None
    }
    for row in refs:
        ref_no = int(row["ref"])
        study = existing.get(ref_no)
        if study is None:
            study = Study(review_id=review.id, ref_no=ref_no, source="baseline", status="reference")
            session.add(study)
            existing[ref_no] = study
        study.authors = row["authors"]
        study.first_author = _first_author(row["authors"])
        study.title = row["title"]
        study.title_key = title_key(row["title"])
        study.journal = row["journal"]
        study.year = int(row["year"]) if row["year"].strip().isdigit() else None
        study.doi = row["doi"].strip().lower() or None
        study.label = f"{study.first_author or 'Ref'} {study.year or ''} [{ref_no}]".strip()
        counts.references += 1
    session.flush()
    for kind, (filename, source) in TABLES.items():
        if kind in OPTIONAL_TABLES and not (directory / filename).is_file():
            continue
        rows = _read_csv(directory / filename, {"study", "ref"})
        setattr(counts, kind, _import_table(session, existing, kind, source, filename, rows))
    return counts


def _import_table(
    session: Session,
    studies: dict[int, Study],
    kind: str,
    source: str,
    filename: str,
    rows: list[dict[str, str]],
) -> int:
    seen = {
        (e.study_id, e.kind, e.provenance.get("row"))
        for e in session.scalars(
            select(Extraction)
            .join(Study, Study.id == Extraction.study_id)
            .where(
                Extraction.source == source,
                Study.review_id.in_({s.review_id for s in studies.values()}),
            )
        )
    }
    for number, row in enumerate(rows, start=1):
        ref_no = int(row["ref"])
        study = studies.get(ref_no)
        if study is None:
            raise BaselineError(
                f"{filename} row {number}: reference {ref_no} is not in references.csv"
            )
        if kind == "prevalence":
            study.label = row["study"]
        if study.status == "reference":
            study.status = "included"  # cited background references are not included studies
        if (study.id, kind, number) in seen:
            continue
        session.add(
            Extraction(
                study_id=study.id,
                kind=kind,
                status="published",
                source=source,
                data={key: _printed(value) for key, value in row.items()},
                provenance={"file": filename, "row": number, "printed": dict(row)},
            )
        )
    session.flush()
    return len(rows)
