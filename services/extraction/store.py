"""Keep proposals with their records (table ``extraction_proposals``).

Functions take ``*, session``, may flush and never commit: the caller owns the unit of work.
One row per (review, record, extractor version); proposing again replaces that row's fields, so
a re-run after a crash adds no duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ExtractionProposal, Record, ReviewRecord
from services.extraction.core import propose
from services.extraction.proposal import Proposal
from services.extraction.schema import ExtractionSchema

logger = logging.getLogger(__name__)


def record_metadata(record: Record) -> dict[str, Any]:
    """The PubMed metadata the extractor reads (affiliations, publication types)."""
    return {
        "affiliations": list(record.affiliations or []),
        "publication_types": list(record.publication_types or []),
    }


def propose_record(record: Record, schema: ExtractionSchema | None = None) -> Proposal:
    """The proposal for a stored record (no database access beyond the loaded row)."""
    return propose(
        record.title or "", record.abstract or "", metadata=record_metadata(record), schema=schema
    )


def store_proposal(
    *, session: Session, review_id: int, record_id: int, proposal: Proposal
) -> ExtractionProposal:
    """Insert or update the proposal row of (review, record, extractor version); flushes."""
    fields = proposal.to_dict()["fields"]
    row = session.scalar(
        select(ExtractionProposal).where(
            ExtractionProposal.review_id == review_id,
            ExtractionProposal.record_id == record_id,
            ExtractionProposal.extractor_version == proposal.extractor_version,
        )
    )
    if row is None:
        row = ExtractionProposal(
            review_id=review_id,
            record_id=record_id,
            extractor_version=proposal.extractor_version,
            fields=fields,
        )
        session.add(row)
    else:
        row.fields = fields
    session.flush()
    return row


def propose_included(
    *,
    session: Session,
    review_id: int,
    schema: ExtractionSchema | None = None,
    record_ids: Iterable[int] | None = None,
) -> int:
    """Propose and store extractions for the review's included records that have none yet
    (from this extractor version); ``record_ids`` limits it to some records. Returns the count."""
    have = select(ExtractionProposal.record_id).where(
        ExtractionProposal.review_id == review_id,
        ExtractionProposal.extractor_version == Proposal().extractor_version,
    )
    query = (
        select(Record)
        .join(ReviewRecord, ReviewRecord.record_id == Record.id)
        .where(
            ReviewRecord.review_id == review_id,
            ReviewRecord.state == "included",
            Record.id.not_in(have),
        )
        .order_by(Record.id)
    )
    if record_ids is not None:
        query = query.where(Record.id.in_(list(record_ids)))
    done = 0
    for record in session.scalars(query):
        store_proposal(
            session=session,
            review_id=review_id,
            record_id=record.id,
            proposal=propose_record(record, schema),
        )
        done += 1
    logger.info("review %s: proposed extractions for %d included records", review_id, done)
    return done
