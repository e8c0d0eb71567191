"""Exports: included studies with their confirmed data (CSV); screened records with decisions
as CSV and RIS (the fields reference managers, Covidence and Rayyan read).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from db.models import Record, Review, ReviewRecord, ScreeningDecision, Study, User
from services.screening.extraction import KIND, current_extraction, form_fields
from services.screening.rules import author_names

RECORD_COLUMNS = [
    "pmid",
    "doi",
    "title",
    "authors",
    "journal",
    "year",
    "abstract",
    "language",
    "publication_types",
    "state",
    "stage",
    "decision",
    "reason",
    "reviewers",
    "score",
    "rule",
    "model_version",
]


def studies_csv(*, session: Session, review: Review) -> str:
    """Included studies, one row each, with the current extraction's fields."""
    names = [f.name for f in form_fields(review)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "study_id",
            "label",
            "source",
            "doi",
            "year",
            "pmid",
            "extraction_status",
            "confirmed_by",
            "confirmed_at",
            *names,
        ]
    )
    studies = session.scalars(
        select(Study)
        .where(Study.review_id == review.id, Study.status == "included")
        .order_by(Study.id)
    )
    users = {u.id: u.email for u in session.scalars(select(User))}
    for study in studies:
        extraction = current_extraction(session, study.id, KIND)
        data = extraction.data if extraction else {}
        pmid = study.record_id and _pmid(session, study.record_id)
        writer.writerow(
            [
                study.id,
                study.label,
                study.source,
                study.doi or "",
                study.year or "",
                pmid or "",
                extraction.status if extraction else "",
                users.get(extraction.user_id or 0, "") if extraction else "",
                extraction.created_at.isoformat() if extraction else "",
                *[_cell(data.get(n)) for n in names],
            ]
        )
    return out.getvalue()


def _pmid(session: Session, record_id: int) -> int | None:
    record = session.get(Record, record_id)
    return record.pmid if record else None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def screened_rows(*, session: Session, review: Review) -> Iterator[dict[str, str]]:
    """Records that reached human screening, with their settling decision and reviewers."""
    query = (
        select(ReviewRecord)
        .options(joinedload(ReviewRecord.record))
        .where(
            ReviewRecord.review_id == review.id,
            ReviewRecord.state.in_(("queued", "included", "excluded")),
        )
        .order_by(ReviewRecord.id)
        .execution_options(yield_per=500)
    )
    users = {u.id: u.email for u in session.scalars(select(User))}
    for rr in session.scalars(query):
        decisions = list(
            session.scalars(
                select(ScreeningDecision)
                .where(
                    ScreeningDecision.review_record_id == rr.id,
                    ScreeningDecision.undone_at.is_(None),
                    ScreeningDecision.stage == rr.stage,
                )
                .order_by(ScreeningDecision.id)
            )
        )
        last = decisions[-1] if decisions else None
        record = rr.record
        yield {
            "pmid": str(record.pmid),
            "doi": record.doi or "",
            "title": record.title,
            "authors": "; ".join(author_names(record.authors)),
            "journal": record.journal or "",
            "year": str(record.year or ""),
            "abstract": record.abstract,
            "language": "; ".join(record.languages or []),
            "publication_types": "; ".join(record.publication_types or []),
            "state": rr.state,
            "stage": rr.stage,
            "decision": _decision(rr.state, last),
            "reason": (last.reason or "") if last and rr.state == "excluded" else "",
            "reviewers": "; ".join(
                sorted({users.get(d.user_id or 0, "") for d in decisions} - {""})
            ),
            "score": "" if rr.score is None else f"{rr.score:.4f}",
            "rule": rr.rule or "",
            "model_version": rr.model_version or "",
        }


def _decision(state: str, last: ScreeningDecision | None) -> str:
    """The settled decision ('' while queued); records settled without a human decision
    (e.g. imported as included) report their state."""
    if state == "queued":
        return ""
    if last is not None:
        return last.decision
    return "include" if state == "included" else "exclude"


def records_csv(*, session: Session, review: Review) -> str:
    """Screened records with decisions as CSV (RECORD_COLUMNS)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RECORD_COLUMNS)
    writer.writeheader()
    for row in screened_rows(session=session, review=review):
        writer.writerow(row)
    return out.getvalue()


def records_ris(*, session: Session, review: Review) -> str:
    """Screened records as RIS (TY JOUR … ER), decision and reason in N1 and KW."""
    lines: list[str] = []
    for row in screened_rows(session=session, review=review):
        lines.append("TY  - JOUR")
        lines.append(f"TI  - {_one_line(row['title'])}")
        lines.extend(f"AU  - {a}" for a in row["authors"].split("; ") if a)
        for tag, key in (
            ("JO", "journal"),
            ("PY", "year"),
            ("DO", "doi"),
            ("AN", "pmid"),
            ("LA", "language"),
        ):
            if row[key]:
                lines.append(f"{tag}  - {_one_line(row[key])}")
        if row["abstract"]:
            lines.append(f"AB  - {_one_line(row['abstract'])}")
        lines.append(f"UR  - https://pubmed.ncbi.nlm.nih.gov/{row['pmid']}/")
        status = row["decision"] or "pending"
        lines.append(f"KW  - screening:{status}")
        note = f"Screening: {status} ({row['stage']})"
        if row["reason"]:
            note += f"; reason: {row['reason']}"
        lines.append(f"N1  - {note}")
        lines.append("ER  - ")
        lines.append("")
    return "\r\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
