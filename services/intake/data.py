"""Extracted data of the included studies from a CSV with a column mapping, audited on import.

``--map n_total=N --map n_events=Cases`` names, for each extraction field of the protocol, the CSV
column that holds it. Each row is matched to one of the review's included studies by PMID, DOI,
then title+year+first author (the identifier columns are found as for included studies). Values
are read as printed (a cell that is not a number stays text, so the data audit can flag it); the
rows are stored as published extractions with their provenance (file, row, printed cells), and
the data audit of :mod:`services.meta_analysis.audit` runs on the result before anything is
written, so the dry-run report shows its findings too.

Errors: :class:`MissingColumnsError` (a mapped column or field that does not exist),
:class:`UnmatchedRowsError` (rows matching no included study); nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditLog, Extraction, Record, Study
from services.baseline import printed_cell
from services.intake.errors import MissingColumnsError, UnmatchedRowsError
from services.intake.formats import (
    csv_reference,
    csv_rows,
    read_text,
    reference_columns,
)
from services.intake.store import rows_line, surname
from services.meta_analysis.audit import Finding, audit
from services.meta_analysis.store import study_from_row
from services.protocol import Protocol
from services.pubmed.parse import title_key
from services.screening.extraction import KIND


@dataclass
class DataPlan:
    """Rows matched to studies with their mapped values, and the audit's findings."""

    source: str
    rows: list[tuple[int, int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def report(self) -> list[str]:
        lines = [f"{self.source}: {len(self.rows)} rows matched to included studies; "
                 f"data audit: {len(self.findings)} finding(s)"]
        lines += [f"  {f.severity} {f.code}: {f.message}" for f in self.findings]
        return lines


def parse_mapping(items: list[str], protocol: Protocol) -> dict[str, str]:
    """``FIELD=COLUMN`` items into field -> column; fields must be the protocol's."""
    known = {f.name for f in protocol.extraction.fields}
    known |= {protocol.outcome.events_field, protocol.outcome.total_field}
    mapping: dict[str, str] = {}
    for item in items:
        name, sep, column = item.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise MissingColumnsError(f"--map {item!r}: write FIELD=COLUMN, e.g. n_total=N")
        if name.strip() not in known:
            raise MissingColumnsError(
                f"--map {item!r}: {name.strip()!r} is not an extraction field of the protocol "
                f"({', '.join(sorted(known))})"
            )
        mapping[name.strip()] = column.strip().lower()
    for needed in (protocol.outcome.events_field, protocol.outcome.total_field):
        if needed not in mapping:
            raise MissingColumnsError(f"map the outcome's field {needed!r}: --map {needed}=COLUMN")
    return mapping


def plan_data(
    session: Session, review_id: int, path: Path, mapping: dict[str, str], protocol: Protocol
) -> DataPlan:
    """Match rows to included studies, read the mapped cells and audit the result."""
    header, cells = csv_rows(read_text(path), str(path))
    columns = reference_columns(header, str(path))
    lower = {h.lower() for h in header}
    absent = [c for c in mapping.values() if c not in lower]
    if absent:
        raise MissingColumnsError(f"{path}: no column {', '.join(absent)} (the header is "
                                  f"{', '.join(header)})")
    studies = list(session.scalars(select(Study).where(Study.review_id == review_id,
                                                       Study.status == "included")))
    pmids = dict(session.execute(select(Record.id, Record.pmid).where(
        Record.id.in_([s.record_id for s in studies if s.record_id]))).all())
    by_pmid = {pmids[s.record_id]: s for s in studies if s.record_id in pmids}
    by_doi = {s.doi.lower(): s for s in studies if s.doi}
    by_title = {(s.title_key, s.year, surname(s.first_author)): s for s in studies if s.title_key}
    plan, unmatched = DataPlan(source=path.name), []
    for number, row_cells in enumerate(cells, start=1):
        ref = csv_reference(number, row_cells, columns)
        study = (by_pmid.get(ref.pmid or -1) or by_doi.get(ref.doi or "")
                 or by_title.get(((title_key(ref.title) or "") if ref.title else "", ref.year,
                                  surname(ref.first_author))))
        if study is None:
            unmatched.append(ref)
            continue
        data = {name: printed_cell(row_cells.get(column, "")) for name, column in mapping.items()}
        plan.rows.append((number, study.id, data, row_cells))
    if unmatched:
        raise UnmatchedRowsError(
            f"{path.name}: {len(unmatched)} rows match no included study of the review "
            f"({rows_line(unmatched)}); import the studies first (living-review import includes)"
        )
    by_id = {s.id: s for s in studies}
    outcome = protocol.outcome
    plan.findings = audit([
        study_from_row(by_id[sid], data, outcome.events_field, outcome.total_field)
        for _n, sid, data, _c in plan.rows
    ])
    return plan


def apply_data(session: Session, review_id: int, plan: DataPlan) -> int:
    """Store the rows as published extractions (a study's earlier import is superseded)."""
    source = f"import:{plan.source}"[:40]
    for number, study_id, data, printed in plan.rows:
        previous = session.scalars(select(Extraction).where(
            Extraction.study_id == study_id, Extraction.kind == KIND,
            Extraction.source == source, Extraction.superseded.is_(False))).first()
        row = Extraction(study_id=study_id, kind=KIND, status="published", source=source,
                         data=data, provenance={"file": plan.source, "row": number,
                                                "printed": printed},
                         supersedes_id=previous.id if previous else None)
        if previous is not None:
            previous.superseded = True
        session.add(row)
    session.add(AuditLog(review_id=review_id, action="import.data", entity="review",
                         entity_id=review_id, detail={"file": plan.source, "rows": len(plan.rows),
                                                      "findings": len(plan.findings)}))
    session.flush()
    return len(plan.rows)
