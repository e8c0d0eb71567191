"""Learning from the baseline search period: ``living-review backfill``.

The review's query is run again over the period its baseline searched (create dates up to the
day before the protocol's start date) through the normal harvest
(:func:`services.update.harvest`): records are stored, versioned and linked to included studies
exactly as an update stores them. Records of that period that are neither included studies nor
carry an imported decision are then *inferred excludes*: the baseline's authors saw them and
did not include them. They are stored as state ``inferred_excluded`` with a decision of source
``inferred`` (never a person's, never counted as screening), and the model trains on them.

The run is kept with status ``backfilled`` so the update windows (which follow harvested runs)
are not moved by it. Re-running is safe: the harvest is idempotent and only records still
``new`` from before the start date are marked.

Errors: :class:`BackfillError`; PubMed errors propagate after the run is marked failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import AuditLog, Record, ReviewRecord, ScreeningDecision, SearchRun, utcnow
from services import update as steps
from services.pipeline import review_by_slug
from services.protocol import Protocol
from services.pubmed.client import EntrezClient
from services.runs import RunStatus, settle

logger = logging.getLogger(__name__)
EARLIEST = dt.date(1900, 1, 1)
INFERRED_REASON = (
    "inferred exclude: found by the review's query in the baseline search period, not among "
    "its included studies or imported decisions"
)


class BackfillError(Exception):
    """The backfill cannot run as asked."""


@dataclass
class BackfillResult:
    """What a backfill did (the ``--json`` output)."""

    review: str
    run_id: int
    window_start: str
    window_end: str
    found: int
    new: int
    linked: int
    inferred_excludes: int
    requests: int


def backfill(
    factory: sessionmaker[Session],
    protocol: Protocol,
    client: EntrezClient,
    *,
    since: dt.date = EARLIEST,
    progress: steps.Progress | None = None,
) -> BackfillResult:
    """Harvest the baseline period and mark its unmatched records as inferred excludes."""
    end = protocol.search.start_date - dt.timedelta(days=1)
    if since > end:
        raise BackfillError(
            f"--since {since} is after the baseline period's end ({end}, the day before the "
            "protocol's start date)"
        )
    with factory.begin() as session:
        review = review_by_slug(session, protocol.slug)
        run = SearchRun(review_id=review.id, status=RunStatus.STARTED, query=protocol.search.term,
                        protocol_hash=review.protocol_hash, window_start=since, window_end=end,
                        windows=[], stats={"backfill": True})
        session.add(run)
        session.flush()
        run_id, review_id = run.id, review.id
    try:
        steps.harvest(factory, run_id, client, progress, accept_empty=True)
    except Exception as exc:  # the engine's failure policy: the run ends failed, with its reason
        settle(factory, run_id, exc)
        raise
    with factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        inferred = mark_inferred_excludes(session, review_id, before=protocol.search.start_date)
        # A backfill run ends here: its window lies before the protocol's start date, so it
        # never moves the living search's window (services.runs.next_window ignores it).
        run.status, run.finished_at = RunStatus.SUCCEEDED, utcnow()
        run.stats = {**(run.stats or {}), "inferred_excludes": inferred}
        session.add(AuditLog(review_id=review_id, action="run.backfilled", entity="search_run",
                             entity_id=run_id, detail={"inferred_excludes": inferred}))
        return BackfillResult(
            review=protocol.slug, run_id=run_id, window_start=since.isoformat(),
            window_end=end.isoformat(), found=run.n_found, new=run.n_new, linked=run.n_linked,
            inferred_excludes=inferred, requests=run.n_requests,
        )


def mark_inferred_excludes(session: Session, review_id: int, *, before: dt.date) -> int:
    """Records of the review still ``new`` and created before ``before`` become inferred
    excludes; returns how many. Flush, never commit."""
    links = list(session.scalars(
        select(ReviewRecord)
        .join(Record, Record.id == ReviewRecord.record_id)
        .where(
            ReviewRecord.review_id == review_id,
            ReviewRecord.state == "new",
            Record.create_date < before,
            ~exists().where(ScreeningDecision.review_record_id == ReviewRecord.id),
        )
    ))
    for link in links:
        link.state, link.reason, link.rule = "inferred_excluded", INFERRED_REASON, "backfill"
        link.updated_at = utcnow()
        session.add(ScreeningDecision(review_record_id=link.id, stage=link.stage,
                                      decision="exclude", reason=INFERRED_REASON,
                                      source="inferred"))
    session.flush()
    logger.info("review %s: %d inferred excludes", review_id, len(links))
    return len(links)
