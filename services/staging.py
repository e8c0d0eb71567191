"""A harvest's staging area: each efetch batch is staged as it arrives, then applied in chunks.

Every function runs inside the caller's transaction and never commits; the harvest step
(:func:`services.update.harvest`) gives each batch and each chunk its own short transaction,
so a writer beside it (a reviewer's decision on SQLite) waits at most one chunk.

``stage`` writes one parsed batch to ``harvest_staging``, keyed by run, kind and PMID (the XML's
hash for an unreadable article), so a record fetched twice in a window is staged once (the later
answer wins, as it did when the window was held in a dict). Nothing reaches ``records`` while
the window is fetched: a harvest failing then leaves ``records`` and ``review_records`` as they
were. ``apply_chunk`` applies the next chunk of one kind through
:func:`services.harvest.store_records` / :func:`services.harvest.store_quarantined` (their
guarantees kept: ON CONFLICT, PMID lock order, versions, links, retraction flags); chunks go in
key order and the last key applied is written to the run in the chunk's own transaction, so a
harvest killed while applying resumes with the next chunk and stores nothing twice, and no
staged row is ever rewritten (rewriting each row's JSON to mark it made applying three times
slower on SQLite). ``delete_some`` clears a run's rows in chunks once it is
harvested.

Errors: none of its own; database errors propagate to the caller, which settles the run.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import HarvestStaging, SearchRun
from services.harvest import flag_retractions, store_quarantined, store_records
from services.pubmed.parse import ArticleSet, PubMedRecord, Quarantined

logger = logging.getLogger(__name__)
CHUNK = 500
RECORD, DELETED, QUARANTINED, SKIPPED = "record", "deleted", "quarantined", "skipped"
APPLIED_IN_ORDER = (RECORD, DELETED, QUARANTINED)  # records first, then deletions (as before)


@dataclass
class Applied:
    """What the applied chunks of a run did so far (kept on the run between chunks)."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    linked: int = 0
    deleted: int = 0
    retracted_studies: list[int] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)  # what deletions did to the review
    through: dict[str, str] = field(default_factory=dict)  # kind -> last staged key applied

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> Applied:
        # a copy: lists changed in place would leave the run's JSON equal to what it was, and
        # SQLAlchemy would write nothing
        return cls(**copy.deepcopy(data or {}))

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def stage(session: Session, run_id: int, batch: ArticleSet) -> int:
    """Stage one parsed efetch answer for run ``run_id``; the rows written (after de-dup)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for record in batch.records:
        rows[(RECORD, str(record.pmid))] = _row(
            run_id, RECORD, str(record.pmid), record.pmid, record.content(),
            notice=bool(record.retracts),
        )
    for pmid in batch.deleted:
        rows[(DELETED, str(pmid))] = _row(run_id, DELETED, str(pmid), pmid, {})
    for item in batch.quarantined:
        data = {"pmid": item.pmid, "reason": item.reason, "xml": item.xml}
        rows[(QUARANTINED, item.xml_hash)] = _row(run_id, QUARANTINED, item.xml_hash, None, data)
    for skipped in batch.skipped:
        key = hashlib.sha256(f"{skipped.pmid}\x00{skipped.reason}".encode()).hexdigest()
        data = {"pmid": skipped.pmid, "reason": skipped.reason}
        rows[(SKIPPED, key)] = _row(run_id, SKIPPED, key, None, data)
    if not rows:
        return 0
    insert = _insert(session)
    statement = insert.on_conflict_do_update(
        index_elements=["search_run_id", "kind", "key"],
        set_={"data": insert.excluded.data, "notice": insert.excluded.notice},
    )
    session.execute(statement, list(rows.values()))
    return len(rows)


def staged_count(session: Session, run_id: int, kind: str = RECORD) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                HarvestStaging.search_run_id == run_id, HarvestStaging.kind == kind
            )
        )
        or 0
    )


def apply_chunk(session: Session, run: SearchRun, kind: str, chunk: int = CHUNK) -> int:
    """Apply the next ``chunk`` staged rows of ``kind`` (in key order, after the last key
    applied); how many (0 when every row of that kind is applied). Counts and the last key go
    to ``run.stats["applied"]``, in the caller's transaction with the chunk's writes."""
    applied = Applied.of((run.stats or {}).get("applied"))
    query = select(HarvestStaging).where(
        HarvestStaging.search_run_id == run.id, HarvestStaging.kind == kind
    )
    if kind in applied.through:
        query = query.where(HarvestStaging.key > applied.through[kind])
    rows = list(session.scalars(query.order_by(HarvestStaging.key).limit(chunk)))
    if not rows:
        return 0
    if kind == RECORD:
        records = [record_of(row.data) for row in rows]
        counts = store_records(session, review_id=run.review_id, run=run, records=records)
        applied.new += counts.new
        applied.updated += counts.updated
        applied.unchanged += counts.unchanged
        applied.linked += counts.linked
        applied.retracted_studies += counts.retractions
    elif kind == DELETED:
        pmids = [row.pmid for row in rows if row.pmid is not None]
        counts = store_records(session, review_id=run.review_id, run=run, records=[], deleted=pmids)
        applied.deleted += counts.deleted
        applied.deletions += counts.deletions
    else:
        items = [_quarantined(row.data) for row in rows]
        applied.quarantined += store_quarantined(
            session, review_id=run.review_id, run=run, items=items
        )
    applied.through[kind] = rows[-1].key
    run.stats = {**(run.stats or {}), "applied": applied.to_dict()}
    return len(rows)


def flag_notices(session: Session, run: SearchRun) -> list[int]:
    """Flag again the targets of the run's retraction notices, once every chunk is applied:
    a notice applied before the record it retracts was stored finds it now. The studies
    newly flagged."""
    notices = session.scalars(
        select(HarvestStaging.data).where(
            HarvestStaging.search_run_id == run.id,
            HarvestStaging.kind == RECORD,
            HarvestStaging.notice.is_(True),
        )
    )
    records = [record_of(data) for data in notices]
    return flag_retractions(session, run.review_id, records) if records else []


def skipped_items(session: Session, run_id: int) -> list[dict[str, Any]]:
    """The skipped items staged for a run: PMID as written and reason."""
    rows = session.scalars(
        select(HarvestStaging.data)
        .where(HarvestStaging.search_run_id == run_id, HarvestStaging.kind == SKIPPED)
        .order_by(HarvestStaging.key)
    )
    return [{"pmid": data.get("pmid"), "reason": data.get("reason")} for data in rows]


def delete_some(session: Session, run_id: int, chunk: int = CHUNK) -> int:
    """Delete up to ``chunk`` staged rows of a run; how many (0 when none is left)."""
    keys = session.execute(
        select(HarvestStaging.kind, HarvestStaging.key)
        .where(HarvestStaging.search_run_id == run_id)
        .limit(chunk)
    ).all()
    by_kind: dict[str, list[str]] = {}
    for kind, key in keys:
        by_kind.setdefault(kind, []).append(key)
    for kind, batch in by_kind.items():
        session.execute(
            delete(HarvestStaging).where(
                HarvestStaging.search_run_id == run_id,
                HarvestStaging.kind == kind,
                HarvestStaging.key.in_(batch),
            )
        )
    return len(keys)


def stale_runs(session: Session) -> list[int]:
    """Runs with staged rows that no harvest will apply: runs no longer ``started`` (failed,
    held, or harvested before their rows were cleared)."""
    return list(
        session.scalars(
            select(HarvestStaging.search_run_id)
            .join(SearchRun, SearchRun.id == HarvestStaging.search_run_id)
            .where(SearchRun.status != "started")
            .distinct()
        )
    )


def record_of(data: dict[str, Any]) -> PubMedRecord:
    """The parsed record a staged row holds."""
    created = data.get("create_date")
    return PubMedRecord(
        **{**data, "create_date": dt.date.fromisoformat(created) if created else None}
    )


def _quarantined(data: dict[str, Any]) -> Quarantined:
    return Quarantined(data.get("pmid"), str(data["reason"]), str(data["xml"]))


def _row(
    run_id: int, kind: str, key: str, pmid: int | None, data: dict[str, Any], *, notice: bool = False
) -> dict[str, Any]:
    return {
        "search_run_id": run_id,
        "kind": kind,
        "key": key,
        "pmid": pmid,
        "notice": notice,
        "data": data,
    }


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(HarvestStaging)
    return sqlite.insert(HarvestStaging)
