"""Store harvested PubMed records for a review: upsert by PMID, keep versions, link duplicates.

``store_records`` runs inside the caller's transaction and never commits. Records are keyed by
PMID, so storing the same batch twice adds nothing. Records are shared by every review while
the update lock is per review, so two reviews may store the same PMIDs at once: new records are
written with ``INSERT … ON CONFLICT (pmid) DO NOTHING`` (the constraint decides, never a
SELECT), all inserts first and in PMID order, then the existing rows are locked in PMID order
(``FOR UPDATE`` on PostgreSQL) to be revised, so two such transactions neither collide nor
deadlock. The harvest calls it once per chunk of a staged window (:mod:`services.staging`), each
in its own short transaction, so the order holds within every transaction; a retraction notice
stored before the record it retracts is applied again by ``flag_retractions`` at the end.
Articles that could not be read are kept by ``store_quarantined``. A record whose content changed gets a new
revision and its old content is kept in ``record_versions``. A record new to the review is
linked to an included study when it is the same paper (DOI, else normalised title + year + first
author) and then not queued again. Retractions of linked studies are flagged on the study.

A PMID PubMed deleted (``DeleteCitation``) marks its record ``is_deleted``; the review's links
to it that still wait (``new``, ``queued``) move to state ``deleted`` (out of the queue, counted
by PRISMA as removed before screening), every link gets the flag ``deleted``, an included study
whose record it is gets a ``deleted`` flag (its status is left to a person), and each change is
written to the audit log. Doing it again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import (
    AuditLog,
    QuarantinedRecord,
    Record,
    RecordVersion,
    ReviewRecord,
    SearchRun,
    Study,
    utcnow,
)
from services.pubmed.parse import RETRACTION_REFS, PubMedRecord, Quarantined, title_key

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
    # what the deletions did to the review: one dict per deleted PMID with a link to the review
    deletions: list[dict[str, Any]] = field(default_factory=list)


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
        "vernacular_title": parsed.vernacular_title,
        "other_abstracts": parsed.other_abstracts,
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
        "vernacular_title": row.vernacular_title,
        "other_abstracts": row.other_abstracts,
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
    chunks = [pmids[i : i + CHUNK] for i in range(0, len(pmids), CHUNK)]
    stamp = utcnow()  # the first_seen_at of the rows this call inserts: tells them apart
    attempted: set[int] = set()
    for chunk in chunks:  # every insert first, in PMID order ...
        attempted |= _insert_new(session, [unique[p] for p in chunk], stamp)
    for chunk in chunks:  # ... then the existing rows, locked in PMID order
        items = [unique[p] for p in chunk]
        rows = _revise_chunk(session, items, attempted, stamp, run, counts)
        _link_chunk(session, review_id, run, rows, index, counts)
    counts.deleted = _mark_deleted(session, review_id, list(deleted), index, counts)
    _flag_retractions(session, review_id, unique.values(), index, counts)
    session.flush()
    return counts


def _insert(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT, for the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _insert_new(session: Session, parsed: list[PubMedRecord], stamp: dt.datetime) -> set[int]:
    """Insert the records not stored yet (first seen at ``stamp``); the PMIDs it tried.

    A PMID another transaction inserts meanwhile is left to it (ON CONFLICT DO NOTHING; on
    PostgreSQL the statement waits for that transaction to end) and revised afterwards. A plain
    executemany, not INSERT … RETURNING, which is several times slower on PostgreSQL.
    """
    known = set(
        session.scalars(select(Record.pmid).where(Record.pmid.in_([p.pmid for p in parsed])))
    )
    fresh = [
        _columns(item, item.content_hash())
        | {"revision": 1, "is_deleted": False, "first_seen_at": stamp}
        for item in parsed
        if item.pmid not in known
    ]
    if fresh:
        statement = _insert(session, Record.__table__)
        session.execute(statement.on_conflict_do_nothing(index_elements=["pmid"]), fresh)
    return {c["pmid"] for c in fresh}


def _revise_chunk(
    session: Session,
    parsed: list[PubMedRecord],
    attempted: set[int],
    stamp: dt.datetime,
    run: SearchRun,
    counts: StoreCounts,
) -> list[Matchable]:
    """Revise the changed records of a chunk (old content kept); every record's match keys.

    A row this call tried to insert is its own when its first_seen_at is ``stamp``; otherwise
    another transaction stored it first, and it is revised like any existing row.
    """
    out: list[Matchable] = []
    raced: set[int] = set()
    query = select(
        Record.pmid,
        Record.first_seen_at,
        Record.id,
        Record.doi,
        Record.title_key,
        Record.year,
        Record.first_author,
    ).where(Record.pmid.in_([p.pmid for p in parsed if p.pmid in attempted]))
    for pmid, seen, row_id, doi, key, year, author in session.execute(query):
        if seen.replace(tzinfo=None) == stamp.replace(tzinfo=None):
            out.append(Matchable(row_id, doi, key, year, author))
            counts.new += 1
        else:
            raced.add(pmid)
    others = [p.pmid for p in parsed if p.pmid not in attempted or p.pmid in raced]
    if not others:
        return out
    rows = session.scalars(
        select(Record).where(Record.pmid.in_(others)).order_by(Record.pmid).with_for_update()
    )
    by_pmid = {item.pmid: item for item in parsed}
    for row in rows:
        item = by_pmid[row.pmid]
        digest = item.content_hash()
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
    session.flush()
    return out


def store_quarantined(
    session: Session, *, review_id: int, run: SearchRun, items: Iterable[Quarantined]
) -> list[dict[str, Any]]:
    """Keep unreadable articles with their reasons (once per review and XML); flush only.

    Returns what the run reports of them: PMID as written and reason, one per article.
    """
    rows = [
        {
            "review_id": review_id,
            "search_run_id": run.id,
            "pmid": item.pmid,
            "reason": item.reason,
            "xml": item.xml,
            "xml_hash": item.xml_hash,
            "created_at": utcnow(),
        }
        for item in items
    ]
    if rows:
        statement = _insert(session, QuarantinedRecord.__table__)
        session.execute(
            statement.on_conflict_do_nothing(index_elements=["review_id", "xml_hash"]),
            rows,
        )
        for row in rows:
            logger.warning(
                "review %s: PMID %s quarantined: %s", review_id, row["pmid"], row["reason"]
            )
    unique = {(r["pmid"], r["reason"]): None for r in rows}
    return [{"pmid": pmid, "reason": reason} for pmid, reason in unique]


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
            same_doi = row.doi and study.doi and row.doi.lower() == study.doi.lower()
            how = "DOI" if same_doi else "title"
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
        statement = _insert(session, ReviewRecord.__table__)
        session.execute(
            statement.on_conflict_do_nothing(index_elements=["review_id", "record_id"]),
            links,
        )


def flag_retractions(session: Session, review_id: int, records: Iterable[PubMedRecord]) -> list[int]:
    """Flag what ``records`` retract (as :func:`store_records` does) once more; the studies newly
    flagged. For a window stored in chunks: a notice stored before the record it retracts."""
    counts = StoreCounts()
    index = StudyIndex(session.scalars(select(Study).where(Study.review_id == review_id)))
    _flag_retractions(session, review_id, records, index, counts)
    session.flush()
    return counts.retractions


PENDING_STATES = ("new", "queued")


def _mark_deleted(
    session: Session, review_id: int, pmids: list[int], index: StudyIndex, counts: StoreCounts
) -> int:
    """Mark the records of ``pmids`` deleted and take the review's pending links out of the
    queue; flag included studies. The number of records marked."""
    if not pmids:
        return 0
    rows = list(
        session.scalars(select(Record).where(Record.pmid.in_(sorted(set(pmids)))))
    )
    for row in rows:
        row.is_deleted = True
    links = {
        link.record_id: link
        for link in session.scalars(
            select(ReviewRecord).where(
                ReviewRecord.review_id == review_id,
                ReviewRecord.record_id.in_([r.id for r in rows]),
            )
        )
    }
    for row in rows:
        link = links.get(row.id)
        if link is None:
            continue
        # the study this record is of: its link's, else the study whose record it is
        study = session.get(Study, link.study_id) if link.study_id else None
        _delete_link(session, review_id, row, link, study or index.by_record.get(row.id), counts)
    return len(rows)


def _delete_link(
    session: Session,
    review_id: int,
    row: Record,
    link: ReviewRecord,
    study: Study | None,
    counts: StoreCounts,
) -> None:
    changed = False
    before = link.state
    if "deleted" not in link.flags:
        link.flags = [*link.flags, "deleted"]
        changed = True
    if link.state in PENDING_STATES:
        link.state = "deleted"
        link.reason = f"PubMed deleted PMID {row.pmid} (DeleteCitation)"
        link.updated_at = utcnow()
        changed = True
    flagged = False
    flags = study.flags if study is not None else []
    known = any(isinstance(f, dict) and f.get("flag") == "deleted" for f in flags)
    if study is not None and study.status == "included" and not known:
        study.flags = [
            *study.flags,
            {"flag": "deleted", "pmid": row.pmid, "at": dt.date.today().isoformat()},
        ]
        flagged = changed = True
    if not changed:
        return
    detail = {"pmid": row.pmid, "state_before": before, "study_id": study.id if study else None}
    counts.deletions.append(detail | {"state": link.state, "study_flagged": flagged})
    session.add(
        AuditLog(
            review_id=review_id,
            action="record.deleted",
            entity="review_record",
            entity_id=link.id,
            detail=detail,
        )
    )
    logger.warning(
        "review %s: PubMed deleted PMID %s (%s → %s)", review_id, row.pmid, before, link.state
    )


def _flag_retractions(
    session: Session,
    review_id: int,
    records: Iterable[PubMedRecord],
    index: StudyIndex,
    counts: StoreCounts,
) -> None:
    """Flag included studies whose record is retracted, or named by a retraction notice."""
    retracted = {r.pmid for r in records if r.is_retracted}
    records = list(records)
    notices = {p: r.pmid for r in records for p in r.retracts}
    # the record's own link to its notice ("RetractionIn"), when no notice was harvested with it
    linked_notices = {
        r.pmid: c["pmid"]
        for r in records
        for c in r.comments_corrections
        if c["type"] in RETRACTION_REFS and c.get("pmid")
    }
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
                "notice_pmid": notices.get(row.pmid) or linked_notices.get(row.pmid),
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
