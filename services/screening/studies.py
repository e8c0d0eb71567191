"""The study a record becomes when screening includes it, and its removal when that is undone.

Errors: NotFoundError (the record is gone), ConflictError (the study already has confirmed
data, so only an admin may withdraw it). Functions flush, never commit.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import AuditLog, Extraction, Record, Review, ReviewRecord, Study
from services.screening.errors import ConflictError, NotFoundError
from services.screening.retractions import retraction_notice
from services.screening.rules import author_names

logger = logging.getLogger(__name__)


def ensure_study(session: Session, review: Review, rr: ReviewRecord) -> None:
    """Give an included review record its study (labelled "<first author> et al., <year>")."""
    if rr.study_id is not None:
        return
    record = session.get(Record, rr.record_id)
    if record is None:
        raise NotFoundError(f"record {rr.record_id} is missing")
    author = record.first_author or "Anonymous"
    study = Study(
        review_id=review.id,
        record_id=record.id,
        label=f"{author} et al., {record.year or 'n.d.'}",
        title=record.title,
        first_author=record.first_author,
        journal=record.journal,
        year=record.year,
        doi=record.doi,
        title_key=record.title_key,
        source="screening",
        authors="; ".join(author_names(record.authors)),
    )
    if record.is_retracted:
        _mark_retracted(session, review, study, record)
    session.add(study)
    session.flush()
    rr.study_id = study.id
    logger.info("review %s: record pmid %s included as study %s", review.id, record.pmid, study.id)


def _mark_retracted(session: Session, review: Review, study: Study, record: Record) -> None:
    """A record already known retracted becomes a retracted study: shown as such everywhere
    and left out of pooling (its data can still be confirmed, for the sensitivity estimate)."""
    study.status = "retracted"
    study.flags = [
        {"flag": "retracted", "pmid": record.pmid, "notice_pmid": retraction_notice(session, record)}
    ]
    session.add(
        AuditLog(
            review_id=review.id,
            action="study.retracted",
            entity="record",
            entity_id=record.id,
            detail={"pmid": record.pmid, "at": "inclusion"},
        )
    )
    logger.warning("review %s: record pmid %s is retracted; included as retracted", review.id,
                   record.pmid)


def drop_study(session: Session, rr: ReviewRecord) -> None:
    """Remove the study screening made for ``rr``; ConflictError once it has confirmed data."""
    if rr.study_id is None:
        return
    study = session.get(Study, rr.study_id)
    if study is None or study.source != "screening":
        return
    has_data = session.scalar(
        select(func.count(Extraction.id)).where(Extraction.study_id == study.id)
    )
    if has_data:
        raise ConflictError(
            f"record {rr.id} is included with confirmed data (study {study.id}); "
            "an admin must withdraw the study first"
        )
    rr.study_id = None
    session.flush()
    session.delete(study)
    session.flush()
