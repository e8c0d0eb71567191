"""One update of a review: a chain of idempotent steps, each in its own short transaction.

``run_update`` runs the chain in-process (the embedded default); the Celery tasks in ``workers``
call the same step functions one by one. Every step can be re-run after a crash:

1. ``start_run``  records the create-date window to ask for (from the last harvested run's upper
   bound minus the protocol's overlap, or the protocol's start date) as a ``running`` run.
2. ``harvest``    searches and fetches the whole window first (network, outside any
   transaction), then stores every record in one transaction: a failure stores nothing and the
   run is marked ``failed`` with the reason; the next run asks for the same window again.
3. later steps (pre-screen, propose, recompute, digest) act on the records the run brought.

Errors: :class:`UpdateError` (base), :class:`UpdateInProgressError` when another update of the
same review holds the lock; PubMed errors from :mod:`services.pubmed.errors` propagate after the
run is marked failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import AuditLog, Review, SearchRun, utcnow
from services.harvest import store_quarantined, store_records
from services.protocol import Protocol
from services.pubmed.client import EntrezClient
from services.pubmed.errors import PubMedError
from services.pubmed.parse import ArticleSet

logger = logging.getLogger(__name__)
HARVESTED = ("harvested", "succeeded")
Progress = Callable[[str], None]


class UpdateError(Exception):
    """An update could not run or complete."""


class UpdateInProgressError(UpdateError):
    """Another update of the same review is running."""


@dataclass
class UpdateResult:
    """What one update did; the JSON of ``living-review update --json``."""

    review: str
    run_id: int
    status: str
    window_start: str
    window_end: str
    found: int = 0
    new: int = 0
    updated: int = 0
    linked: int = 0
    deleted: int = 0
    requests: int = 0
    steps: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def review_by_slug(session: Session, slug: str) -> Review:
    review = session.scalars(select(Review).where(Review.slug == slug)).first()
    if review is None:
        raise UpdateError(
            f"review {slug!r} is not in the database: run `living-review init --review {slug}`"
        )
    return review


def next_window(
    session: Session, review: Review, protocol: Protocol, until: dt.date
) -> tuple[dt.date, dt.date]:
    """The create-date window of the next harvest: from the last good upper bound minus overlap."""
    last = session.scalars(
        select(SearchRun)
        .where(SearchRun.review_id == review.id, SearchRun.status.in_(HARVESTED))
        .order_by(SearchRun.window_end.desc(), SearchRun.id.desc())
    ).first()
    if last is None:
        start = protocol.search.start_date
    else:
        start = last.window_end - dt.timedelta(days=protocol.search.overlap_days)
    if until < start:
        raise UpdateError(
            f"the window would end ({until}) before it starts ({start}): check --until"
        )
    return start, until


def start_run(session: Session, review: Review, protocol: Protocol, until: dt.date) -> SearchRun:
    """Create the run row for the next window (status ``running``); flush, never commit.

    The caller holds the review's lock, so a run still marked ``running`` was interrupted (its
    process died): it is marked failed, and its window is asked for again.
    """
    for other in session.scalars(
        select(SearchRun).where(SearchRun.review_id == review.id, SearchRun.status == "running")
    ):
        other.status, other.finished_at = "failed", utcnow()
        other.error = "interrupted: the process running it stopped before it finished"
    start, end = next_window(session, review, protocol, until)
    run = SearchRun(
        review_id=review.id,
        status="running",
        query=protocol.search.term,
        window_start=start,
        window_end=end,
        windows=[],
        stats={},
    )
    session.add(run)
    session.flush()
    return run


def fetch_window(
    client: EntrezClient, term: str, start: dt.date, end: dt.date, progress: Progress | None = None
) -> tuple[ArticleSet, list[dict[str, Any]]]:
    """Every record created in [start, end] (with DeleteCitation PMIDs, unreadable and skipped
    articles) and the sub-windows used."""
    articles = ArticleSet(records=[], deleted=[])
    plan = client.plan(term, start, end)
    windows = [
        {"start": s.start.isoformat(), "end": s.end.isoformat(), "count": s.count} for s in plan
    ]
    total = sum(s.count for s in plan)
    for search in plan:
        for batch in client.fetch(search):
            articles.extend(batch)
            if progress:
                progress(f"fetched {len(articles.records)}/{total} records")
    return articles, windows


def harvest(
    factory: sessionmaker[Session],
    run_id: int,
    client: EntrezClient,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fetch the run's window and store it in one transaction; idempotent per run."""
    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        if run.status in HARVESTED:
            return dict(run.stats)
        term, start, end = run.query, run.window_start, run.window_end
    before = client.requests
    try:
        articles, windows = fetch_window(client, term, start, end, progress)
    except PubMedError as exc:
        _fail(factory, run_id, str(exc), client.requests - before)
        raise
    return store_harvest(factory, run_id, articles, windows, client.requests - before)


def store_harvest(
    factory: sessionmaker[Session],
    run_id: int,
    articles: ArticleSet,
    windows: list[dict[str, Any]],
    requests: int,
) -> dict[str, Any]:
    """Store a fetched window in one transaction and mark the run ``harvested``.

    Unreadable articles go to quarantine and skipped ones are listed on the run, so the run's
    ``found`` is ``fetched`` + quarantined + skipped (+ ``unaccounted``, what efetch did not
    return at all).
    """
    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        records = articles.records
        counts = store_records(
            session, review_id=run.review_id, run=run, records=records, deleted=articles.deleted
        )
        quarantined = store_quarantined(
            session, review_id=run.review_id, run=run, items=articles.quarantined
        )
        skipped = [{"pmid": s.pmid, "reason": s.reason} for s in articles.skipped]
        run.windows = windows
        run.n_found = sum(w["count"] for w in windows)
        run.n_fetched = len(records)
        run.n_new, run.n_updated, run.n_linked = counts.new, counts.updated, counts.linked
        run.n_deleted = counts.deleted
        run.n_requests = requests
        run.status = "harvested"
        accounted = len(records) + len(articles.quarantined) + len(articles.skipped)
        run.stats = {
            "unchanged": counts.unchanged,
            "retracted_studies": counts.retractions,
            "quarantined": quarantined,
            "skipped": skipped,
            "unaccounted": max(run.n_found - accounted, 0),
        }
        session.add(
            AuditLog(
                review_id=run.review_id,
                action="run.harvested",
                entity="search_run",
                entity_id=run_id,
                detail={"new": counts.new, "updated": counts.updated},
            )
        )
        return dict(run.stats)


def _fail(factory: sessionmaker[Session], run_id: int, reason: str, requests: int) -> None:
    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        run.status, run.error, run.finished_at = "failed", reason, utcnow()
        run.n_requests = requests
        session.add(
            AuditLog(
                review_id=run.review_id,
                action="run.failed",
                entity="search_run",
                entity_id=run_id,
                detail={"error": reason},
            )
        )
    logger.error("update run %s failed: %s", run_id, reason)


def finish(factory: sessionmaker[Session], run_id: int) -> SearchRun:
    """Mark a harvested run succeeded once every later step is done."""
    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        if run.status == "harvested":
            run.status, run.finished_at = "succeeded", utcnow()
        return run


def result_of(run: SearchRun, slug: str, steps: dict[str, Any] | None = None) -> UpdateResult:
    return UpdateResult(
        review=slug,
        run_id=run.id,
        status=run.status,
        window_start=run.window_start.isoformat(),
        window_end=run.window_end.isoformat(),
        found=run.n_found,
        new=run.n_new,
        updated=run.n_updated,
        linked=run.n_linked,
        deleted=run.n_deleted,
        requests=run.n_requests,
        steps=steps or {},
        error=run.error,
    )


def propose(factory: sessionmaker[Session], run_id: int) -> dict[str, Any]:
    """Propose extractions for the review's included records that have none yet; idempotent."""
    from services.extraction.schema import schema_from_mapping
    from services.extraction.store import propose_included

    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        review = session.get_one(Review, run.review_id)
        section = dict(review.protocol.get("extraction") or {})
        proposed = propose_included(
            session=session, review_id=review.id, schema=schema_from_mapping(section)
        )
    return {"proposed": proposed}


def recompute(
    factory: sessionmaker[Session],
    run_id: int,
    *,
    base_url: str = "",
    mail_domain: str = "living-review.local",
) -> dict[str, Any]:
    """Snapshot the pooled estimate for the run and queue its digest; once per run.

    The digest rows are written in the same transaction as the snapshot (transactional outbox).
    """
    from db.models import EstimateSnapshot
    from services.digest.estimates import recompute_and_queue

    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        snapshot = session.scalars(
            select(EstimateSnapshot).where(
                EstimateSnapshot.search_run_id == run_id, EstimateSnapshot.trigger == "update"
            )
        ).first()
        queued = 0
        if snapshot is None:
            snapshot, rows = recompute_and_queue(
                session,
                session.get_one(Review, run.review_id),
                trigger="update",
                search_run_id=run_id,
                base_url=base_url,
                mail_domain=mail_domain,
            )
            queued = len(rows)
        return {
            "snapshot": snapshot.id,
            "k": snapshot.k,
            "estimate": snapshot.estimate,
            "ci": [snapshot.ci_low, snapshot.ci_high],
            "digests_queued": queued,
            "changed": bool((snapshot.changes or {}).get("notify")),
        }


def prescreen(factory: sessionmaker[Session], run_id: int, *, seed: int = 0) -> dict[str, Any]:
    """Rules, then the model (or the cold-start ranking), for every new record; idempotent."""
    from services.prescreen import prescreen_new

    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        review = session.get_one(Review, run.review_id)
        summary = prescreen_new(session, review_id=review.id, protocol=review.protocol, seed=seed)
        run.stats = {**(run.stats or {}), "prescreen": summary.to_dict()}
        return summary.to_dict()
