"""Store harvested PubMed records for a review: upsert by PMID, keep versions, link duplicates.

``store_records`` runs inside the caller's transaction and never commits. Records are keyed by
PMID, so storing the same batch twice adds nothing. A record whose content changed gets a new
revision and its old content is kept in ``record_versions``. A record new to the review is
linked to an included study when it is the same paper (DOI, else normalised title + year + first
author) and then not queued again. Retractions of linked studies are flagged on the study.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from db.models import AuditLog, Record, RecordVersion, ReviewRecord, SearchRun, Study, utcnow
from services.pubmed.parse import PubMedRecord, title_key

logger = logging.getLogger(__name__)
CHUNK = 500


@dataclass(frozen=True)
class Matchable:
    """What de-duplication needs of a record."""

    id: int
    doi: str | None
    title_key: str | None
    year: int | None
    first_author: str | None


@dataclass
class StoreCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    linked: int = 0
    deleted: int = 0
    retractions: list[int] = field(default_factory=list)


class StudyIndex:
    """The review's studies by DOI and by (title key, year, first author) for matching."""

    def __init__(self, studies: Iterable[Study]) -> None:
        self.by_doi: dict[str, Study] = {}
        self.by_title: dict[tuple[str, int | None, str], Study] = {}
        self.by_record: dict[int, Study] = {}
        for study in studies:
            self.add(study)

    def add(self, study: Study) -> None:
        if study.doi:
            self.by_doi[study.doi.lower()] = study
        if study.title_key:
            self.by_title[(study.title_key, study.year, _surname(study.first_author))] = study
        if study.record_id is not None:
            self.by_record[study.record_id] = study

    def match(self, record: Matchable | Record) -> Study | None:
        if record.id in self.by_record:
            return self.by_record[record.id]
        if record.doi and record.doi.lower() in self.by_doi:
            return self.by_doi[record.doi.lower()]
        if record.title_key:
            return self.by_title.get((record.title_key, record.year, _surname(record.first_author)))
        return None


def _surname(name: str | None) -> str:
    return (name or "").split(" ")[-1].lower()


def _columns(parsed: PubMedRecord, digest: str) -> dict[str, Any]:
    """The ``records`` columns for a parsed record."""
    return {
        "pmid": parsed.pmid,
        "doi": parsed.doi,
        "title": parsed.title,
        "abstract": parsed.abstract,
        "abstract_sections": parsed.abstract_sections,
        "journal": parsed.journal,
        "year": parsed.year,
        "pub_date": parsed.pub_date,
        "create_date": parsed.create_date,
        "authors": parsed.authors,
        "affiliations": parsed.affiliations,
        "languages": parsed.languages,
        "publication_types": parsed.publication_types,
        "mesh": parsed.mesh,
        "keywords": parsed.keywords,
        "comments_corrections": parsed.comments_corrections,
        "is_retracted": parsed.is_retracted,
        "title_key": title_key(parsed.title),
        "first_author": parsed.first_author,
        "pubmed_version": parsed.pubmed_version,
        "content_hash": digest,
        "updated_at": utcnow(),
    }


def _snapshot(row: Record) -> dict[str, Any]:
    return {
        "doi": row.doi,
        "title": row.title,
        "abstract": row.abstract,
        "journal": row.journal,
        "year": row.year,
        "pub_date": row.pub_date,
        "authors": row.authors,
        "languages": row.languages,
        "publication_types": row.publication_types,
        "mesh": row.mesh,
        "keywords": row.keywords,
        "comments_corrections": row.comments_corrections,
        "is_retracted": row.is_retracted,
        "pubmed_version": row.pubmed_version,
    }


def store_records(
    session: Session,
    *,
    review_id: int,
    run: SearchRun,
    records: list[PubMedRecord],
    deleted: Iterable[int] = (),
) -> StoreCounts:
    """Upsert ``records`` and link them to the review; flush, never commit."""
    counts = StoreCounts()
    unique = {r.pmid: r for r in records}  # overlapping windows can repeat a PMID
    index = StudyIndex(session.scalars(select(Study).where(Study.review_id == review_id)))
    pmids = sorted(unique)
    for start in range(0, len(pmids), CHUNK):
        chunk = pmids[start : start + CHUNK]
        rows = _upsert_chunk(session, [unique[p] for p in chunk], run, counts)
        _link_chunk(session, review_id, run, rows, index, counts)
    counts.deleted = _mark_deleted(session, list(deleted))
    _flag_retractions(session, review_id, unique.values(), index, counts)
    session.flush()
    return counts


def _upsert_chunk(
    session: Session, parsed: list[PubMedRecord], run: SearchRun, counts: StoreCounts
) -> list[Matchable]:
    """Insert new records in bulk, revise changed ones; returns every record's match keys."""
    existing = {
        r.pmid: r
        for r in session.scalars(select(Record).where(Record.pmid.in_([p.pmid for p in parsed])))
    }
    fresh: list[dict[str, Any]] = []
    out: list[Matchable] = []
    for item in parsed:
        digest = item.content_hash()
        row = existing.get(item.pmid)
        if row is None:
            fresh.append(
                _columns(item, digest)
                | {"revision": 1, "is_deleted": False, "first_seen_at": utcnow()}
            )
            continue
        if row.content_hash != digest:
            session.add(
                RecordVersion(
                    record_id=row.id,
                    revision=row.revision,
                    content_hash=row.content_hash,
                    data=_snapshot(row),
                    search_run_id=run.id,
                )
            )
            for key, value in _columns(item, digest).items():
                setattr(row, key, value)
            row.revision += 1
            counts.updated += 1
        else:
            counts.unchanged += 1
        out.append(Matchable(row.id, row.doi, row.title_key, row.year, row.first_author))
    if fresh:
        # a plain executemany, then one SELECT for the ids: several times faster on PostgreSQL
        # than INSERT … RETURNING, which SQLAlchemy must keep in parameter order
        session.execute(insert(Record), fresh)
        ids = dict(
            session.execute(
                select(Record.pmid, Record.id).where(Record.pmid.in_([c["pmid"] for c in fresh]))
            ).all()
        )
        counts.new += len(fresh)
        out.extend(
            Matchable(ids[c["pmid"]], c["doi"], c["title_key"], c["year"], c["first_author"])
            for c in fresh
        )
    session.flush()
    return out


def _link_chunk(
    session: Session,
    review_id: int,
    run: SearchRun,
    rows: list[Matchable],
    index: StudyIndex,
    counts: StoreCounts,
) -> None:
    known = set(
        session.scalars(
            select(ReviewRecord.record_id).where(
                ReviewRecord.review_id == review_id,
                ReviewRecord.record_id.in_([r.id for r in rows]),
            )
        )
    )
    links: list[dict[str, Any]] = []
    for row in rows:
        if row.id in known:
            continue
        link: dict[str, Any] = {
            "review_id": review_id,
            "record_id": row.id,
            "search_run_id": run.id,
            "state": "new",
            "stage": "title_abstract",
            "flags": [],
            "priority": 0.0,
            "audit_sample": False,
            "study_id": None,
            "reason": None,
            "created_at": utcnow(),
            "updated_at": utcnow(),
        }
        study = index.match(row)
        if study is not None:
            how = "DOI" if row.doi and study.doi and row.doi.lower() == study.doi else "title"
            link |= {
                "state": "linked",
                "study_id": study.id,
                "reason": f"same study as {study.label} (matched by {how})",
            }
            if study.record_id is None:
                study.record_id = row.id
                index.add(study)
            counts.linked += 1
        links.append(link)
    if links:
        session.execute(insert(ReviewRecord), links)


def _mark_deleted(session: Session, pmids: list[int]) -> int:
    if not pmids:
        return 0
    rows = list(session.scalars(select(Record).where(Record.pmid.in_(pmids))))
    for row in rows:
        row.is_deleted = True
    return len(rows)


def _flag_retractions(
    session: Session,
    review_id: int,
    records: Iterable[PubMedRecord],
    index: StudyIndex,
    counts: StoreCounts,
) -> None:
    """Flag included studies whose record is retracted, or named by a retraction notice."""
    retracted = {r.pmid for r in records if r.is_retracted}
    notices = {p: r.pmid for r in records for p in r.retracts}
    targets = retracted | set(notices)
    if not targets:
        return
    rows = list(session.scalars(select(Record).where(Record.pmid.in_(targets))))
    links = session.scalars(
        select(ReviewRecord).where(
            ReviewRecord.review_id == review_id, ReviewRecord.record_id.in_([r.id for r in rows])
        )
    )
    for link in links:
        if "retracted" not in link.flags:
            link.flags = [*link.flags, "retracted"]
    for row in rows:
        row.is_retracted = True
        study = index.match(row)
        if study is None or study.status != "included":
            continue  # not an included study (a cited reference), or already flagged
        study.status = "retracted"
        study.flags = [
            *study.flags,
            {
                "flag": "retracted",
                "pmid": row.pmid,
                "notice_pmid": notices.get(row.pmid),
                "at": dt.date.today().isoformat(),
            },
        ]
        counts.retractions.append(study.id)
        session.add(
            AuditLog(
                review_id=review_id,
                action="study.retracted",
                entity="study",
                entity_id=study.id,
                detail={"pmid": row.pmid},
            )
        )
        logger.warning(
            "review %s: included study %s retracted (PMID %s)", review_id, study.id, row.pmid
        )
