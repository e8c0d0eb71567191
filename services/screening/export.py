"""Exports: included studies with their confirmed data (CSV); every record of a review with its
decisions, notes, flags and history as CSV and RIS (the fields reference managers, Covidence and
Rayyan read); the PRISMA flow counts as CSV.

CSV cells that a spreadsheet would run as a formula are neutralised (:func:`safe_cell`); RIS
values are folded to one line.
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
from services.screening.prisma import PrismaCounts
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
    "decided_by",
    "reason",
    "reviewers",
    "notes",
    "history",
    "flags",
    "linked_study_id",
    "score",
    "rule",
    "model_version",
]
# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text: a string starting like a formula is
    prefixed with a single quote (numbers of our own, negative ones included, are left alone)."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


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
                safe_cell(v)
                for v in (
                    study.id,
                    study.label,
                    study.source,
                    study.doi,
                    study.year,
                    pmid,
                    extraction.status if extraction else "",
                    users.get(extraction.user_id or 0, "") if extraction else "",
                    extraction.created_at.isoformat() if extraction else "",
                    *[data.get(n) for n in names],
                )
            ]
        )
    return out.getvalue()


def _pmid(session: Session, record_id: int) -> int | None:
    record = session.get(Record, record_id)
    return record.pmid if record else None


def record_rows(*, session: Session, review: Review) -> Iterator[dict[str, str]]:
    """Every record of the review (screened, queued, excluded by a rule or the model, linked to
    an included study as a duplicate, not yet screened), with the decision that settled it, the
    notes, the flags and the whole decision history (undone decisions included, marked)."""
    users = {u.id: u.email for u in session.scalars(select(User))}
    history: dict[int, list[ScreeningDecision]] = {}
    for decision in session.scalars(
        select(ScreeningDecision)
        .join(ReviewRecord, ReviewRecord.id == ScreeningDecision.review_record_id)
        .where(ReviewRecord.review_id == review.id)
        .order_by(ScreeningDecision.id)
    ):
        history.setdefault(decision.review_record_id, []).append(decision)
    query = (
        select(ReviewRecord)
        .options(joinedload(ReviewRecord.record))
        .where(ReviewRecord.review_id == review.id)
        .order_by(ReviewRecord.id)
        .execution_options(yield_per=500)
    )
    for rr in session.scalars(query):
        decisions = history.get(rr.id, [])
        standing = [d for d in decisions if d.undone_at is None and d.stage == rr.stage]
        last = standing[-1] if standing else None
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
            "decided_by": _decided_by(rr, last),
            "reason": _reason(rr, last),
            "reviewers": "; ".join(
                sorted({users.get(d.user_id or 0, "") for d in standing} - {""})
            ),
            "notes": " | ".join(
                f"{users.get(d.user_id or 0, d.source)}: {d.note}" for d in decisions if d.note
            ),
            "history": " | ".join(_event(d, users) for d in decisions),
            "flags": "; ".join(str(f) for f in rr.flags or []),
            "linked_study_id": str(rr.study_id or ""),
            "score": "" if rr.score is None else f"{rr.score:.4f}",
            "rule": rr.rule or "",
            "model_version": rr.model_version or "",
        }


def _event(decision: ScreeningDecision, users: dict[int, str]) -> str:
    who = users.get(decision.user_id or 0, decision.source)
    text = f"{decision.created_at.isoformat(timespec='seconds')} {who} {decision.stage} "
    text += decision.decision + (f" ({decision.reason})" if decision.reason else "")
    if decision.undone_at is not None:
        text += f" [undone {decision.undone_at.isoformat(timespec='seconds')}]"
    return text


def _decision(state: str, last: ScreeningDecision | None) -> str:
    """The settled decision ('' while a record waits or is linked to a study); records settled
    without a decision row (imported, excluded by a rule) report their state."""
    if state not in ("included", "excluded", "auto_excluded"):
        return ""
    if last is not None:
        return last.decision
    return "include" if state == "included" else "exclude"


def _decided_by(rr: ReviewRecord, last: ScreeningDecision | None) -> str:
    if rr.state not in ("included", "excluded", "auto_excluded"):
        return ""
    if last is not None:
        return last.source
    if rr.state == "auto_excluded":
        return "rule" if rr.rule else "model"
    return "baseline"


def _reason(rr: ReviewRecord, last: ScreeningDecision | None) -> str:
    if rr.state not in ("excluded", "auto_excluded"):
        return ""
    return (last.reason if last and last.reason else rr.reason) or ""


def records_csv(*, session: Session, review: Review) -> str:
    """Every record of the review as CSV (RECORD_COLUMNS), formula-like cells neutralised."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(RECORD_COLUMNS)
    for row in record_rows(session=session, review=review):
        writer.writerow([safe_cell(row[c]) for c in RECORD_COLUMNS])
    return out.getvalue()


def prisma_csv(counts: PrismaCounts) -> str:
    """The PRISMA 2020 flow (updated reviews) as rows ``section,box,count``, in diagram order,
    ready for the PRISMA2020 Shiny app or a spreadsheet."""
    rows: list[tuple[str, str, int]] = [
        ("previous", "Studies included in previous version of review", counts.previous_studies),
        ("previous", "Reports of studies included in previous version", counts.previous_reports),
        ("previous", "Previous studies retracted since", counts.previous_retracted),
        ("identification", "Records identified from PubMed", counts.identified),
    ]
    rows += [
        ("identification", f"Records identified by update {u.date or 'baseline'}", u.identified)
        for u in counts.per_update
    ]
    rows += [
        ("identification", "Duplicate records (linked to included studies)", counts.duplicates),
        ("identification", "Records excluded by rules", counts.auto_excluded_rule),
        ("identification", "Records excluded by the classifier", counts.auto_excluded_model),
        ("identification", "Records awaiting automatic pre-screening", counts.awaiting_automation),
        ("identification", "Records removed for other reasons (deleted from PubMed)",
         counts.removed_deleted),
        ("screening", "Records screened", counts.screened),
        ("screening", "Records awaiting screening", counts.awaiting),
        ("screening", "Records excluded at title and abstract", counts.excluded_title_abstract),
        ("screening", "Reports sought for retrieval", counts.sought),
        ("screening", "Reports not retrieved", counts.not_retrieved),
        ("screening", "Reports awaiting full-text screening", counts.awaiting_full_text),
        ("screening", "Reports assessed for eligibility", counts.full_text_assessed),
    ]
    rows += [
        ("screening", f"Reports excluded: {reason}", n)
        for reason, n in counts.excluded_full_text.items()
    ]
    rows += [
        ("included", "New studies included in review", counts.new_studies),
        ("included", "New studies retracted (left out)", counts.new_retracted),
        ("included", "Total studies included in review", counts.total_studies),
        ("included", "Studies with outcome data", counts.with_outcome_data),
        ("included", "Studies in the pooled estimate (k)", counts.pooled_k or 0),
    ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "box", "count"])
    writer.writerows([section, safe_cell(box), n] for section, box, n in rows)
    return out.getvalue()


def records_ris(*, session: Session, review: Review) -> str:
    """Every record as RIS (TY JOUR … ER), decision and reason in N1 and KW. Every value is
    folded to one line, so no text from PubMed or a reviewer can start a tag or a record."""
    lines: list[str] = []
    for row in record_rows(session=session, review=review):
        record_authors = [_one_line(a) for a in row["authors"].split("; ")]
        lines.append("TY  - JOUR")
        lines.append(f"TI  - {_one_line(row['title'])}")
        lines.extend(f"AU  - {a}" for a in record_authors if a)
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
        waiting = row["state"] if row["state"] in ("linked", "deleted") else "pending"
        status = row["decision"] or waiting
        lines.append(f"KW  - screening:{status}")
        note = f"Screening: {status} ({row['stage']})"
        if row["reason"]:
            note += f"; reason: {row['reason']}"
        lines.append(f"N1  - {_one_line(note)}")
        lines.append("ER  - ")
        lines.append("")
    return "\r\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
