"""The steps of one update of a review, each idempotent and in its own short transaction.

:mod:`services.runs` owns the run's states, its start or resumption and its failure policy; the
steps here do the work of one state each, and both the in-process path (:mod:`services.pipeline`)
and the Celery tasks (:mod:`workers.tasks`) call them in the order of :data:`STEPS`:

1. ``harvest``    re-checks the review's older records first (:mod:`services.recheck`: revised,
   retracted, corrected or deleted since the last update; its own short transaction, once per
   run), then searches and fetches the whole window (network, outside any transaction), then
   stores every record in one transaction (``started → harvested``). A search answering 0
   records where every earlier window found some holds the run for a person.
2. ``prescreen``  fits the model outside any transaction, then applies rules and model to the
   review's new records (``harvested → screened``).
3. ``propose``    proposes extractions for included records that have none (stays ``screened``).
4. ``recompute``  pools outside any transaction, then snapshots the estimate and queues its
   digest in one short one (``screened → recomputed``).
5. ``finish``     marks the run ``succeeded``.

A step asked again of a run past its state returns what it did; asked of a run that has ended it
raises :class:`services.runs.RunClosedError`. Errors of PubMed (:mod:`services.pubmed.errors`)
propagate untouched: the caller settles the run (:func:`services.runs.settle`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import AuditLog, SearchRun
from services.harvest import store_quarantined, store_records
from services.pubmed.client import EntrezClient
from services.pubmed.parse import ArticleSet
from services.recheck import recheck
from services.reviews import protocol_of
from services.runs import RunHeldError, RunStatus, advance, at_least, review_of

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]
STEPS = ("harvest", "prescreen", "propose", "recompute", "finish")


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
    *,
    accept_empty: bool = False,
) -> dict[str, Any]:
    """Fetch the run's window and store it in one transaction; idempotent per run.

    RunHeldError when the search found 0 records although every earlier window found some,
    unless ``accept_empty`` (a person checked the search and PubMed).
    """
    with factory() as session:
        run = session.get_one(SearchRun, run_id)
        if at_least(run, RunStatus.HARVESTED):
            return dict(run.stats)
        term, start, end, review_id = run.query, run.window_start, run.window_end, run.review_id
    recheck(factory, run_id, client)  # older records first (services.recheck; issue 18)
    before = client.requests
    articles, windows = fetch_window(client, term, start, end, progress)
    found = sum(w["count"] for w in windows)
    if found == 0 and not accept_empty:
        _hold_if_unexpectedly_empty(factory, review_id, start, end)
    return store_harvest(factory, run_id, articles, windows, client.requests - before)


def _hold_if_unexpectedly_empty(
    factory: sessionmaker[Session], review_id: int, start: dt.date, end: dt.date
) -> None:
    with factory() as session:
        earlier = session.execute(
            select(func.count(), func.min(SearchRun.n_found)).where(
                SearchRun.review_id == review_id, SearchRun.status == RunStatus.SUCCEEDED
            )
        ).one()
    runs, smallest = earlier
    if runs and smallest:
        raise RunHeldError(
            f"esearch found 0 records for {start}..{end} although each of the {runs} earlier "
            "windows found some: check the query and PubMed, then run the update again "
            "(the window is kept; `living-review update --accept-empty` accepts an empty one)"
        )


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
        if at_least(run, RunStatus.HARVESTED):
            return dict(run.stats)
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
        accounted = len(records) + len(articles.quarantined) + len(articles.skipped)
        run.stats = {
            **_recheck_stats(run),  # kept from the re-check (issue 18)
            "deletions": counts.deletions,
            "unchanged": counts.unchanged,
            "retracted_studies": counts.retractions,
            "quarantined": quarantined,
            "skipped": skipped,
            "unaccounted": max(run.n_found - accounted, 0),
        }
        advance(run, RunStatus.HARVESTED)
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


def _recheck_stats(run: SearchRun) -> dict[str, Any]:
    return {"recheck": run.stats["recheck"]} if "recheck" in (run.stats or {}) else {}


def prescreen(factory: sessionmaker[Session], run_id: int, *, seed: int = 0) -> dict[str, Any]:
    """Rules, then the model (or the cold-start ranking), for every new record; idempotent.

    The model is fitted before the write transaction opens (5-fold cross-validation is slow).
    """
    from services.prescreen import fit_model, prescreen_new, training_set

    with factory() as session:
        run, review = review_of(session, run_id)
        if at_least(run, RunStatus.SCREENED):
            return dict(run.stats.get("prescreen") or {})
        protocol = protocol_of(review)
        texts, labels = training_set(session, review.id)
    fitted = fit_model(texts, labels, protocol.screening, seed=seed)
    with factory.begin() as session:
        run, review = review_of(session, run_id)
        if at_least(run, RunStatus.SCREENED):
            return dict(run.stats.get("prescreen") or {})
        summary = prescreen_new(session, review_id=review.id, protocol=protocol, fitted=fitted)
        run.stats = {**(run.stats or {}), "prescreen": summary.to_dict()}
        advance(run, RunStatus.SCREENED)
        return summary.to_dict()


def propose(factory: sessionmaker[Session], run_id: int) -> dict[str, Any]:
    """Propose extractions for the review's included records that have none yet; idempotent."""
    from services.extraction.schema import schema_of
    from services.extraction.store import propose_included

    with factory.begin() as session:
        run, review = review_of(session, run_id)
        at_least(run, RunStatus.SCREENED)
        proposed = propose_included(
            session=session, review_id=review.id, schema=schema_of(protocol_of(review))
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

    Pooling runs on the studies read before the write transaction; the snapshot and its digest
    rows are then written in one short transaction (transactional outbox).
    """
    from services.digest.estimates import pool_review, store_pooled

    with factory() as session:
        run, review = review_of(session, run_id)
        pooled = None if at_least(run, RunStatus.RECOMPUTED) else pool_review(session, review)
    with factory.begin() as session:
        run, review = review_of(session, run_id)
        queued = 0
        if pooled is not None and not at_least(run, RunStatus.RECOMPUTED):
            snapshot, rows = store_pooled(
                session, review, pooled, trigger="update", search_run_id=run_id,
                base_url=base_url, mail_domain=mail_domain,
            )
            queued = len(rows)
            run.stats = {**(run.stats or {}), "snapshot": snapshot.id, "digests_queued": queued}
            advance(run, RunStatus.RECOMPUTED)
        return _snapshot_summary(session, run)


def _snapshot_summary(session: Session, run: SearchRun) -> dict[str, Any]:
    from db.models import EstimateSnapshot

    snapshot = session.get_one(EstimateSnapshot, run.stats["snapshot"])
    return {
        "snapshot": snapshot.id,
        "k": snapshot.k,
        "estimate": snapshot.estimate,
        "ci": [snapshot.ci_low, snapshot.ci_high],
        "digests_queued": int(run.stats.get("digests_queued", 0)),
        "changed": bool((snapshot.changes or {}).get("notify")),
    }


def finish(factory: sessionmaker[Session], run_id: int) -> SearchRun:
    """Mark a recomputed run succeeded (a succeeded run is returned as it is)."""
    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        if not at_least(run, RunStatus.SUCCEEDED):
            advance(run, RunStatus.SUCCEEDED)
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
