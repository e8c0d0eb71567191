"""The steps of one update of a review, each idempotent and in its own short transaction.

:mod:`services.runs` owns the run's states, its start or resumption and its failure policy; the
steps here do the work of one state each, and both the in-process path (:mod:`services.pipeline`)
and the Celery tasks (:mod:`workers.tasks`) call them in the order of :data:`STEPS`:

1. ``harvest``    re-checks the review's older records first (:mod:`services.recheck`: revised,
   retracted, corrected or deleted since the last update; its own short transaction, once per
   run), then searches the window and fetches it batch by batch, each batch parsed and
   staged (:mod:`services.staging`) in its own short transaction as it arrives, so memory holds
   one batch whatever the window; a batch answering fewer records than asked is made up by
   asking for the missing PMIDs by id, and the run fails if some stay missing. Only a window
   staged whole is applied to ``records``, in chunks of short transactions, resumable; the run
   becomes ``harvested`` when every chunk is applied (``started → harvested``). A search
   answering 0 records where every earlier window found some holds the run for a person.
2. ``prescreen``  fits the model and works out every new record's outcome outside any
   transaction, then writes them 500 records per short transaction (``harvested → screened``
   once all are written).
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
from services import staging
from services.pubmed.client import EntrezClient, FetchTally
from services.recheck import recheck
from services.reviews import protocol_of
from services.runs import RunHeldError, RunStatus, advance, at_least, review_of

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]
STEPS = ("harvest", "prescreen", "propose", "recompute", "finish")
PRESCREEN_CHUNK = 500  # records per pre-screening write transaction
PRESCREEN_PARTIAL = "prescreen_partial"  # the counts of the chunks written so far


@dataclass
class UpdateResult:
    """What one update did; the JSON of ``living-review update --json``."""

    review: str
    run_id: int
    status: str
    window_start: str
    window_end: str
    found: int = 0
    fetched: int = 0
    new: int = 0
    updated: int = 0
    linked: int = 0
    deleted: int = 0
    requests: int = 0
    steps: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    resumed: dict[str, Any] | None = None  # an interrupted run this update finished first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stage_window(
    factory: sessionmaker[Session],
    run_id: int,
    client: EntrezClient,
    window: tuple[str, dt.date, dt.date],
    progress: Progress | None = None,
) -> tuple[list[dict[str, Any]], FetchTally]:
    """Search the window, then fetch and stage it batch by batch (a transaction per batch);
    the sub-windows used and what efetch answered.

    Only one batch is held in memory at a time. Errors of PubMed propagate, leaving the run's
    staged rows to be cleared (:func:`_clear_stale`) and ``records`` untouched.
    """
    term, start, end = window
    plan = client.plan(term, start, end)
    windows = [
        {"start": s.start.isoformat(), "end": s.end.isoformat(), "count": s.count} for s in plan
    ]
    total = sum(s.count for s in plan)
    tally = FetchTally()
    fetched = 0
    for search in plan:
        for batch in client.fetch(search, tally):
            with factory.begin() as session:
                staging.stage(session, run_id, batch)
            fetched += len(batch.records)
            if progress:
                progress(f"fetched {fetched}/{total} records")
    return windows, tally


def harvest(
    factory: sessionmaker[Session],
    run_id: int,
    client: EntrezClient,
    progress: Progress | None = None,
    *,
    accept_empty: bool = False,
    chunk: int = staging.CHUNK,
) -> dict[str, Any]:
    """Fetch the run's window into staging, then apply it to ``records`` in chunks of ``chunk``
    (a short transaction each); idempotent per run, resumable after a crash.

    A run whose window was staged completely resumes applying it; one that was not fetches it
    again (its earlier batches cleared first). RunHeldError when the search found 0 records
    although every earlier window found some, unless ``accept_empty`` (a person checked the
    search and PubMed). :class:`services.pubmed.errors.IncompleteFetchError` when records
    esearch found stay missing from efetch's answers: nothing is stored then.
    """
    _clear_stale(factory, chunk)
    with factory() as session:
        run = session.get_one(SearchRun, run_id)
        if at_least(run, RunStatus.HARVESTED):
            return dict(run.stats)
        staged = bool((run.stats or {}).get("staged"))
        window = (run.query, run.window_start, run.window_end)
        review_id = run.review_id
    recheck(factory, run_id, client)  # older records first (services.recheck), once per run
    if not staged:
        _clear(factory, run_id, chunk)  # batches of an attempt that did not finish fetching
        before = client.requests
        windows, tally = stage_window(factory, run_id, client, window, progress)
        found = sum(w["count"] for w in windows)
        if found == 0 and not accept_empty:
            _hold_if_unexpectedly_empty(factory, review_id, window[1], window[2])
        _mark_staged(factory, run_id, windows, tally, client.requests - before)
    return apply_staged(factory, run_id, progress, chunk=chunk)


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


def _mark_staged(
    factory: sessionmaker[Session],
    run_id: int,
    windows: list[dict[str, Any]],
    tally: FetchTally,
    requests: int,
) -> None:
    """The whole window is staged: from now on the harvest only applies it."""
    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        at_least(run, RunStatus.STARTED)  # a run settled meanwhile raises RunClosedError
        run.windows = windows
        run.n_found = sum(w["count"] for w in windows)
        run.n_requests = requests
        run.stats = {**_recheck_stats(run), "staged": True, "efetch": tally.to_dict()}


def apply_staged(
    factory: sessionmaker[Session],
    run_id: int,
    progress: Progress | None = None,
    *,
    chunk: int = staging.CHUNK,
) -> dict[str, Any]:
    """Apply a staged window chunk by chunk, then mark the run ``harvested``; resumable.

    Unreadable articles go to quarantine and skipped ones are listed on the run, so the run's
    ``found`` is ``fetched`` + quarantined + skipped (+ ``unaccounted``, e.g. DeleteCitation
    answers). The run's staged rows are cleared once it is harvested.
    """
    with factory() as session:
        total = staging.staged_count(session, run_id)
    done = 0
    for kind in staging.APPLIED_IN_ORDER:
        while True:
            with factory.begin() as session:
                run = session.get_one(SearchRun, run_id)
                if at_least(run, RunStatus.HARVESTED):
                    return dict(run.stats)
                applied = staging.apply_chunk(session, run, kind, chunk)
            if not applied:
                break
            if kind == staging.RECORD:
                done += applied
                if progress:
                    progress(f"stored {done}/{total} records")
    stats = _finish_harvest(factory, run_id)
    _clear(factory, run_id, chunk)
    return stats


def _finish_harvest(factory: sessionmaker[Session], run_id: int) -> dict[str, Any]:
    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        if at_least(run, RunStatus.HARVESTED):
            return dict(run.stats)
        retracted = staging.flag_notices(session, run)
        applied = staging.Applied.of(run.stats.get("applied"))
        skipped = staging.skipped_items(session, run_id)
        run.n_fetched = staging.staged_count(session, run_id)
        run.n_new, run.n_updated, run.n_linked = applied.new, applied.updated, applied.linked
        run.n_deleted = applied.deleted
        accounted = run.n_fetched + len(applied.quarantined) + len(skipped)
        run.stats = {
            **_recheck_stats(run),  # kept from the re-check
            "deletions": applied.deletions,
            "unchanged": applied.unchanged,
            "retracted_studies": applied.retracted_studies + retracted,
            "quarantined": applied.quarantined,
            "skipped": skipped,
            "unaccounted": max(run.n_found - accounted, 0),
            "efetch": run.stats.get("efetch", {}),
        }
        advance(run, RunStatus.HARVESTED)
        session.add(
            AuditLog(
                review_id=run.review_id,
                action="run.harvested",
                entity="search_run",
                entity_id=run_id,
                detail={"new": applied.new, "updated": applied.updated},
            )
        )
        return dict(run.stats)


def _clear(factory: sessionmaker[Session], run_id: int, chunk: int) -> None:
    """Delete a run's staged rows, a chunk per transaction."""
    while True:
        with factory.begin() as session:
            if not staging.delete_some(session, run_id, chunk):
                return


def _clear_stale(factory: sessionmaker[Session], chunk: int) -> None:
    """Clear the rows staged by runs that are no longer harvesting: runs that failed or were
    held, and runs harvested before their rows were cleared (a crash)."""
    with factory() as session:
        stale = staging.stale_runs(session)
    for run_id in stale:
        logger.info("clearing the staged rows left by run %s", run_id)
        _clear(factory, run_id, chunk)


def _recheck_stats(run: SearchRun) -> dict[str, Any]:
    return {"recheck": run.stats["recheck"]} if "recheck" in (run.stats or {}) else {}


def prescreen(
    factory: sessionmaker[Session], run_id: int, *, seed: int = 0, chunk: int = PRESCREEN_CHUNK
) -> dict[str, Any]:
    """Rules, then the model (or the cold-start ranking), for every new record; idempotent.

    The model is fitted and every record's outcome worked out before any write transaction
    opens (5-fold cross-validation is slow); the outcomes are then written ``chunk`` records per
    short transaction, each also adding its counts to the run (``stats.prescreen_partial``), so
    reviewers' writes wait for one chunk at most and a re-run after a crash skips what was
    written and counts it once. The run becomes ``screened`` when every chunk is written.
    """
    from services.prescreen import (
        PrescreenSummary,
        apply_outcomes,
        fit_model,
        plan_prescreen,
        training_set,
    )

    with factory() as session:
        run, review = review_of(session, run_id)
        if at_least(run, RunStatus.SCREENED):
            return dict(run.stats.get("prescreen") or {})
        protocol = protocol_of(review)
        review_id = review.id
        texts, labels = training_set(session, review_id)
    fitted = fit_model(texts, labels, protocol.screening, seed=seed)
    with factory() as session:
        plan = plan_prescreen(session, review_id=review_id, protocol=protocol, fitted=fitted)
    for start in range(0, len(plan.outcomes), max(1, chunk)):
        with factory.begin() as session:
            run = session.get_one(SearchRun, run_id)
            if at_least(run, RunStatus.SCREENED):
                return dict(run.stats.get("prescreen") or {})
            done = apply_outcomes(
                session, review_id=review_id, plan=plan, outcomes=plan.outcomes[start : start + chunk]
            )
            partial = (run.stats or {}).get(PRESCREEN_PARTIAL)
            base = plan.summary if partial is None else PrescreenSummary.from_dict(partial)
            run.stats = {**(run.stats or {}), PRESCREEN_PARTIAL: base.counted(done).to_dict()}
    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        if at_least(run, RunStatus.SCREENED):
            return dict(run.stats.get("prescreen") or {})
        stats = dict(run.stats or {})
        summary = stats.pop(PRESCREEN_PARTIAL, None) or plan.summary.to_dict()
        run.stats = {**stats, "prescreen": summary}
        advance(run, RunStatus.SCREENED)
        return dict(summary)


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
        fetched=run.n_fetched,
        new=run.n_new,
        updated=run.n_updated,
        linked=run.n_linked,
        deleted=run.n_deleted,
        requests=run.n_requests,
        steps=steps or {},
        error=run.error,
    )
