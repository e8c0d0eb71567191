"""Re-check the review's older records at each update: revisions, retractions, errata, deletions.

The window harvest only sees records *created* in its window (plus the overlap), so a change to
an older record (an included study's record becomes a "Retracted Publication", an erratum is
linked to it, PubMed deletes a queued record, an abstract is corrected) would never be fetched.
At each update, before the window, :func:`recheck` looks again at the records that matter to the
review now: its queued and included records, the records linked to its included studies and
the records of those studies.

How (NCBI's rules: few requests, POST for long identifier lists). The records are asked about
in chunks of :data:`CHUNK` PMIDs with two esearches each: ``(1[uid] OR 2[uid] …)`` tells which
PMIDs PubMed still has, and the same term ``AND since:until[mdat]`` which of them were modified
since the last re-check (less the protocol's overlap; the first re-check goes back to when the
oldest of them was stored). Only those modified, and those PubMed no longer finds, are then
efetched by id (POST, in the client's batches). Compared with efetching every tracked record at
each update this costs 2 small requests per chunk instead of the whole records again: a review
with 5,000 tracked records makes 40 esearches and efetches the few that changed. Bio.Entrez
sends a request as POST once its parameters pass 1,000 characters (and an id list from 200
ids), so a chunk's term goes by POST. An epost of all PMIDs and one esearch on the history
server would make fewer requests still, but the replay server has no epost yet.

What is fetched is stored through the normal path (:func:`services.harvest.store_records`): a
revised record gets a new revision with its old content in ``record_versions``, a record that
became a Retracted Publication (or names its retraction notice) flags and retracts its included
study, and a ``DeleteCitation`` takes the record out of the queue and flags its study. A PMID
PubMed neither finds nor answers with a ``DeleteCitation`` is *not* deleted (a short answer is
not a deletion): it is listed as ``not_returned``. A record already marked deleted (by another
review's update) is applied to this review without asking PubMed.

The network part (:func:`fetch_changes`) runs outside any transaction; the store part
(:func:`store_changes`) in one short transaction, once per run: its summary is kept in
``run.stats["recheck"]`` (what changed, for the digest, in ``changes``) and asking again
returns it.

Errors: those of :mod:`services.pubmed.errors` propagate untouched (nothing is stored); the
caller settles the run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select, union
from sqlalchemy.orm import Session, sessionmaker

from db.models import AuditLog, Record, Review, ReviewRecord, SearchRun, Study
from services.harvest import store_quarantined, store_records
from services.pubmed.client import EntrezClient
from services.pubmed.parse import ArticleSet, PubMedRecord
from services.reviews import protocol_of

logger = logging.getLogger(__name__)

CHUNK = 250  # PMIDs per esearch term (by POST)
TRACKED_STATES = ("queued", "included")
# CommentsCorrections types that tell a reader of an included study something new
NOTICES = {
    "ErratumIn": "erratum",
    "CorrectedandRepublishedIn": "corrected and republished",
    "ExpressionOfConcernIn": "expression of concern",
    "UpdateIn": "updated version",
}
RETRACTION_LINKS = ("RetractionIn", "RetractedandRepublishedIn")


@dataclass
class Plan:
    """What one re-check asks PubMed: the review's tracked PMIDs and the mdat range."""

    pmids: list[int]
    already_deleted: list[int]
    since: dt.date
    until: dt.date


@dataclass
class Fetched:
    """What PubMed answered for a plan."""

    plan: Plan
    modified: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    articles: ArticleSet = field(default_factory=lambda: ArticleSet(records=[], deleted=[]))
    requests: int = 0


def recheck(factory: sessionmaker[Session], run_id: int, client: EntrezClient) -> dict[str, Any]:
    """Re-check the run's review's older records (network, then one transaction); once per run."""
    with factory() as session:
        run = session.get_one(SearchRun, run_id)
        if "recheck" in (run.stats or {}):
            return dict(run.stats["recheck"])
        plan = plan_recheck(session, run)
    fetched = fetch_changes(client, plan)
    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        return store_changes(session, run, fetched)


def plan_recheck(session: Session, run: SearchRun) -> Plan:
    """The review's tracked records and the modification-date range to ask about."""
    review_id = run.review_id
    included = select(Study.id).where(Study.review_id == review_id, Study.status == "included")
    linked = select(ReviewRecord.record_id).where(
        ReviewRecord.review_id == review_id,
        or_(
            ReviewRecord.state.in_(TRACKED_STATES),
            and_(ReviewRecord.state == "linked", ReviewRecord.study_id.in_(included)),
        ),
    )
    of_studies = select(Study.record_id).where(
        Study.review_id == review_id, Study.status == "included", Study.record_id.is_not(None)
    )
    ids = union(linked, of_studies).subquery()
    rows = session.execute(
        select(Record.pmid, Record.is_deleted, Record.updated_at)
        .where(Record.id.in_(select(ids.c[0])))
        .order_by(Record.pmid)
    ).all()
    until = run.window_end
    review = session.get_one(Review, review_id)
    overlap = dt.timedelta(days=protocol_of(review).search.overlap_days)
    last = _last_until(session, run)
    if last is not None:
        since = last - overlap
    else:  # the first re-check: back to when the oldest tracked record was stored
        stored = [_date(at) for _, _, at in rows] or [until]
        since = min(min(stored), until) - overlap
    return Plan(
        pmids=[pmid for pmid, gone, _ in rows if not gone],
        already_deleted=[pmid for pmid, gone, _ in rows if gone],
        since=since,
        until=until,
    )


def _date(at: dt.datetime | dt.date) -> dt.date:
    return at.date() if isinstance(at, dt.datetime) else at


def _last_until(session: Session, run: SearchRun) -> dt.date | None:
    """The ``until`` of the review's latest earlier re-check, if any."""
    earlier = session.scalars(
        select(SearchRun.stats)
        .where(SearchRun.review_id == run.review_id, SearchRun.id < run.id)
        .order_by(SearchRun.id.desc())
        .limit(50)
    )
    for stats in earlier:
        until = ((stats or {}).get("recheck") or {}).get("until")
        if until:
            return dt.date.fromisoformat(until)
    return None


def fetch_changes(client: EntrezClient, plan: Plan) -> Fetched:
    """Ask PubMed which tracked records changed or vanished, and efetch those (network only)."""
    before = client.requests
    fetched = Fetched(plan)
    dates = f"{plan.since:%Y/%m/%d}:{plan.until:%Y/%m/%d}[mdat]"
    for start in range(0, len(plan.pmids), CHUNK):
        chunk = plan.pmids[start : start + CHUNK]
        term = "(" + " OR ".join(f"{pmid}[uid]" for pmid in chunk) + ")"
        present = set(client.search_ids(term, retmax=len(chunk)))
        modified: set[int] = set()
        if present:
            modified = set(client.search_ids(f"{term} AND {dates}", retmax=len(chunk)))
        fetched.modified += sorted(modified & set(chunk))
        fetched.missing += sorted(set(chunk) - present)
    wanted = sorted(set(fetched.modified) | set(fetched.missing))
    if wanted:
        fetched.articles = client.fetch_pmids(wanted)
    fetched.requests = client.requests - before
    logger.info(
        "re-check of %d records (%s..%s): %d modified, %d not found, %d requests",
        len(plan.pmids), plan.since, plan.until, len(fetched.modified), len(fetched.missing),
        fetched.requests,
    )
    return fetched


def store_changes(session: Session, run: SearchRun, fetched: Fetched) -> dict[str, Any]:
    """Store what the re-check fetched and say what changed; flush only, once per run."""
    if "recheck" in (run.stats or {}):
        return dict(run.stats["recheck"])
    articles = fetched.articles
    records = articles.records
    old = _before(session, [r.pmid for r in records])
    deleted = sorted(set(articles.deleted) | set(fetched.plan.already_deleted))
    counts = store_records(
        session, review_id=run.review_id, run=run, records=records, deleted=deleted
    )
    quarantined = store_quarantined(
        session, review_id=run.review_id, run=run, items=articles.quarantined
    )
    answered = {r.pmid for r in records} | set(articles.deleted)
    answered |= {int(q.pmid) for q in articles.quarantined if q.pmid and q.pmid.isdigit()}
    wanted = set(fetched.modified) | set(fetched.missing)
    studies = _studies_of(session, run.review_id, [r.pmid for r in records] + deleted)
    changes = _changes(records, old, studies) + _deletions(counts.deletions, studies)
    summary: dict[str, Any] = {
        "since": fetched.plan.since.isoformat(),
        "until": fetched.plan.until.isoformat(),
        "checked": len(fetched.plan.pmids),
        "modified": fetched.modified,
        "not_found": fetched.missing,
        "fetched": len(records),
        "revised": counts.updated,
        "unchanged": counts.unchanged,
        "deleted": [d["pmid"] for d in counts.deletions],
        "not_returned": sorted(wanted - answered),
        "quarantined": quarantined,
        "retracted_studies": counts.retractions,
        "requests": fetched.requests,
        "changes": changes,
    }
    run.stats = {**(run.stats or {}), "recheck": summary}
    if changes:
        session.add(
            AuditLog(
                review_id=run.review_id,
                action="run.rechecked",
                entity="search_run",
                entity_id=run.id,
                detail={k: summary[k] for k in ("checked", "revised", "deleted", "not_returned")},
            )
        )
    if summary["not_returned"]:
        logger.warning(
            "review %s: PubMed returned nothing for PMIDs %s (not marked deleted)",
            run.review_id, summary["not_returned"],
        )
    return dict(summary)


@dataclass(frozen=True)
class _Old:
    title: str
    abstract: str
    links: frozenset[tuple[str, int | None]]
    retracted: bool


def _links(items: Iterable[dict[str, Any]]) -> frozenset[tuple[str, int | None]]:
    return frozenset((str(c.get("type")), c.get("pmid")) for c in items)


def _before(session: Session, pmids: list[int]) -> dict[int, _Old]:
    """The stored content of ``pmids`` before the re-check writes (plain values, not rows)."""
    if not pmids:
        return {}
    rows = session.execute(
        select(
            Record.pmid, Record.title, Record.abstract, Record.comments_corrections,
            Record.is_retracted,
        ).where(Record.pmid.in_(pmids))
    )
    return {
        pmid: _Old(title or "", abstract or "", _links(links or []), bool(retracted))
        for pmid, title, abstract, links, retracted in rows
    }


@dataclass(frozen=True)
class _StudyOf:
    study_id: int | None
    label: str
    state: str | None


def _studies_of(session: Session, review_id: int, pmids: list[int]) -> dict[int, _StudyOf]:
    """PMID → the review's study of it (label, id) or the record's title, and its link state."""
    if not pmids:
        return {}
    rows = session.execute(
        select(Record.pmid, Record.title, ReviewRecord.state, Study.id, Study.label)
        .outerjoin(
            ReviewRecord,
            and_(ReviewRecord.record_id == Record.id, ReviewRecord.review_id == review_id),
        )
        .outerjoin(
            Study,
            and_(
                Study.review_id == review_id,
                or_(Study.id == ReviewRecord.study_id, Study.record_id == Record.id),
            ),
        )
        .where(Record.pmid.in_(pmids))
    )
    out: dict[int, _StudyOf] = {}
    for pmid, title, state, study_id, label in rows:
        if pmid in out and out[pmid].study_id is not None:
            continue
        short = title if len(title or "") <= 90 else title[:87].rstrip() + "…"
        out[pmid] = _StudyOf(study_id, label or f"“{short}”", state)
    return out


def _change(kind: str, pmid: int, study: _StudyOf | None, **detail: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "pmid": pmid,
        "study_id": study.study_id if study else None,
        "label": study.label if study else f"PMID {pmid}",
        "state": study.state if study else None,
    } | detail


def _changes(
    records: list[PubMedRecord], old: dict[int, _Old], studies: dict[int, _StudyOf]
) -> list[dict[str, Any]]:
    """What changed in each re-fetched record that a reader should hear about."""
    out: list[dict[str, Any]] = []
    for record in sorted(records, key=lambda r: r.pmid):
        before = old.get(record.pmid)
        if before is None:
            continue
        study = studies.get(record.pmid)
        added = _links(record.comments_corrections) - before.links
        if record.is_retracted and not before.retracted:
            notice = next((p for t, p in added if t in RETRACTION_LINKS and p), None)
            out.append(_change("retracted", record.pmid, study, notice_pmid=notice))
        for kind, pmid in sorted(added, key=lambda x: (x[0], x[1] or 0)):
            if kind in NOTICES:
                out.append(
                    _change("correction", record.pmid, study, notice=NOTICES[kind],
                            ref_type=kind, notice_pmid=pmid)
                )
        revised = [
            name
            for name, was, now in (
                ("title", before.title, record.title),
                ("abstract", before.abstract, record.abstract),
            )
            if was != now
        ]
        if revised:
            out.append(_change("revised", record.pmid, study, fields=revised))
    return out


def _deletions(
    deletions: list[dict[str, Any]], studies: dict[int, _StudyOf]
) -> list[dict[str, Any]]:
    return [
        _change(
            "deleted", d["pmid"], studies.get(d["pmid"]), state_before=d["state_before"],
            study_flagged=d["study_flagged"],
        )
        for d in deletions
    ]
