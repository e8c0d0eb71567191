"""The run engine: one update of a review as explicit states, one failure policy, one lock.

A run (:class:`db.models.SearchRun`) moves through::

    started → harvested → screened → recomputed → succeeded
        any state before succeeded → failed(reason) | held(reason)

Only :func:`advance` changes the state of a run that is still going, and only to the next state;
:func:`settle` ends it ``failed`` or ``held`` with the reason. A run that has ended never
moves again, so a step retried after its run failed cannot mark it harvested or succeeded (the
retry stops with :class:`RunClosedError`).

The window of a new run starts after the last *succeeded* run (minus the protocol's overlap), so a
failed or held run leaves its window to be asked for again by the next one. A run that is still
going when a new update starts under the review's lock was interrupted (its process died): it is
resumed at the step it reached, whichever path (in-process or Celery) started it. Once the resumed
run has succeeded, the same update goes on with the next window up to the date it was asked for
(:func:`needs_next_window`), so an interruption never costs a window.

Every start refreshes the review's stored protocol from the file (:func:`begin`): an edited
``protocol.toml`` takes effect at the next update (audit ``review.protocol_changed``), and the run
keeps the hash of the protocol it ran under.

Failure policy (:func:`settle`), the same for the in-process path and the Celery tasks:
:class:`RunHeldError` holds the run for a person, anything else fails it with
``"<ErrorType>: <message>"``. Retries happen in one layer only: E-utilities requests are retried
by the client (:mod:`services.pubmed.client`); Celery retries only lost database or Redis
connections, and a run is settled only once the last attempt failed.

Errors: :class:`UpdateError` (base); :class:`UpdateInProgressError` (the review is locked);
:class:`RunError` with :class:`RunClosedError`, :class:`RunHeldError`, :class:`WindowError`
(and its :class:`WindowCoveredError`: nothing new to ask for, not a failure).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import RUN_STATES, AuditLog, Review, SearchRun, utcnow
from services.locks import DeadHolder
from services.protocol import Protocol
from services.reviews import ensure_review

logger = logging.getLogger(__name__)
REASON_LIMIT = 2000


class RunStatus(enum.StrEnum):
    """The states of a run; the database column has a CHECK constraint on these values."""

    STARTED = "started"
    HARVESTED = "harvested"
    SCREENED = "screened"
    RECOMPUTED = "recomputed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    HELD = "held"


NEXT = {
    RunStatus.STARTED: RunStatus.HARVESTED,
    RunStatus.HARVESTED: RunStatus.SCREENED,
    RunStatus.SCREENED: RunStatus.RECOMPUTED,
    RunStatus.RECOMPUTED: RunStatus.SUCCEEDED,
}
ACTIVE = tuple(NEXT)
if tuple(RunStatus) != RUN_STATES:  # the CHECK constraint of the database lists the same states
    raise ImportError("services.runs.RunStatus and db.models.RUN_STATES disagree")
ENDED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.HELD)


class UpdateError(Exception):
    """An update could not run or complete (base of the engine's errors)."""


class UpdateInProgressError(UpdateError):
    """Another update of the same review holds its lock."""


class RunError(UpdateError):
    """A run cannot take the step asked of it."""


class RunClosedError(RunError):
    """A step was asked of a run that has ended (failed, held or succeeded)."""


class RunHeldError(RunError):
    """A step found something a person must look at before the window is accepted."""


class WindowError(RunError):
    """The window asked for cannot be searched (ends before it starts, or in the future)."""


class WindowCoveredError(WindowError):
    """A succeeded run already searched up to the date asked for: there is nothing to do."""

    def __init__(self, run: SearchRun) -> None:
        super().__init__(
            f"already up to date: run {run.id} searched up to {run.window_end} "
            "(give a later --until for a new window)"
        )
        self.run_id = run.id


def advance(run: SearchRun, to: RunStatus) -> None:
    """Move ``run`` one state on; RunClosedError / RunError when that is not the next state."""
    current = RunStatus(run.status)
    if current in ENDED:
        raise RunClosedError(f"run {run.id} has ended ({current}); it cannot become {to}")
    if NEXT[current] != to:
        raise RunError(f"run {run.id} is {current}: the next state is {NEXT[current]}, not {to}")
    run.status = to
    if to == RunStatus.SUCCEEDED:
        run.finished_at = utcnow()


def at_least(run: SearchRun, status: RunStatus) -> bool:
    """True when a still-going run has reached ``status``; RunClosedError if it has ended."""
    current = RunStatus(run.status)
    if current in (RunStatus.FAILED, RunStatus.HELD):
        raise RunClosedError(f"run {run.id} has ended ({current}: {run.error})")
    order = [*ACTIVE, RunStatus.SUCCEEDED]
    return order.index(current) >= order.index(status)


def next_window(
    session: Session, review_id: int, protocol: Protocol, until: dt.date, today: dt.date
) -> tuple[dt.date, dt.date]:
    """The create-date window of a new run: after the last succeeded run, minus the overlap.

    Runs of the baseline period (a backfill: their window ends before the protocol's start
    date) do not count.
    """
    if until > today:
        raise WindowError(f"--until {until} is after today ({today}): PubMed has no such records yet")
    last = session.scalars(
        select(SearchRun)
        .where(
            SearchRun.review_id == review_id,
            SearchRun.status == RunStatus.SUCCEEDED,
            SearchRun.window_end >= protocol.search.start_date,
        )
        .order_by(SearchRun.window_end.desc(), SearchRun.id.desc())
    ).first()
    if last is None:
        start = protocol.search.start_date
    elif until <= last.window_end:
        raise WindowCoveredError(last)
    else:
        start = last.window_end - dt.timedelta(days=protocol.search.overlap_days)
    start = min(start, today)
    if until < start:
        raise WindowError(
            f"the window would end ({until}) before it starts ({start}): give a later --until"
        )
    return start, until


def begin(
    session: Session, protocol: Protocol, until: dt.date, today: dt.date | None = None
) -> SearchRun:
    """Refresh the review's stored protocol, then resume its unfinished run or start a new one.

    The caller holds the review's lock; flush, never commit. A run still going was interrupted
    and is resumed as it is (its window and the step it reached).
    """
    review = ensure_review(session, protocol)
    unfinished = session.scalars(
        select(SearchRun)
        .where(SearchRun.review_id == review.id, SearchRun.status.in_(ACTIVE))
        .order_by(SearchRun.id.desc())
    ).first()
    if unfinished is not None:
        logger.warning("review %s: resuming run %s (%s)", review.id, unfinished.id, unfinished.status)
        return unfinished
    start, end = next_window(session, review.id, protocol, until, today or dt.date.today())
    run = SearchRun(
        review_id=review.id,
        status=RunStatus.STARTED,
        query=protocol.search.term,
        protocol_hash=review.protocol_hash,
        window_start=start,
        window_end=end,
        windows=[],
        stats={},
    )
    session.add(run)
    session.flush()
    session.add(_audit(run, "run.started", {"window": [start.isoformat(), end.isoformat()]}))
    return run


def needs_next_window(session: Session, run_id: int, until: dt.date) -> bool:
    """True when the run ``run_id`` (just finished by an update asked to search up to ``until``)
    was a resumed one that succeeded with a window ending before ``until``, and no later run of
    its review exists yet: the update goes on with a new run for the rest. (A step finishing the
    run a second time, e.g. a redelivered task, finds that later run and starts nothing.)"""
    run = session.get_one(SearchRun, run_id)
    if RunStatus(run.status) != RunStatus.SUCCEEDED or run.window_end >= until:
        return False
    later = session.scalar(
        select(SearchRun.id).where(SearchRun.review_id == run.review_id, SearchRun.id > run.id)
    )
    return later is None


def audit_takeover(session: Session, review_id: int, token: str, dead: DeadHolder) -> None:
    """Write that ``token`` took the review's lock over from a holder that died (flush only)."""
    session.add(
        AuditLog(
            review_id=review_id, action="lock.taken_over", entity="review", entity_id=review_id,
            detail={"from": dead.holder, "last_heartbeat": dead.last_heartbeat or "", "by": token},
        )
    )


def reason_of(exc: BaseException) -> str:
    """The reason stored on a run for the error that ended it."""
    return f"{type(exc).__name__}: {exc}"[:REASON_LIMIT]


def settle(factory: sessionmaker[Session], run_id: int, exc: BaseException) -> RunStatus | None:
    """End a still-going run after ``exc``: ``held`` for RunHeldError, ``failed`` otherwise.

    Written in its own transaction; a run that has ended already is left as it is (None).
    """
    status = RunStatus.HELD if isinstance(exc, RunHeldError) else RunStatus.FAILED
    reason = str(exc) if isinstance(exc, RunHeldError) else reason_of(exc)
    with factory.begin() as session:
        run = session.get(SearchRun, run_id)
        if run is None or RunStatus(run.status) in ENDED:
            return None
        run.status, run.error, run.finished_at = status, reason, utcnow()
        session.add(_audit(run, f"run.{status}", {"error": reason}))
    logger.error("review run %s %s: %s", run_id, status, reason)
    return status


def review_of(session: Session, run_id: int) -> tuple[SearchRun, Review]:
    run = session.get_one(SearchRun, run_id)
    return run, session.get_one(Review, run.review_id)


def _audit(run: SearchRun, action: str, detail: dict[str, object]) -> AuditLog:
    return AuditLog(
        review_id=run.review_id, action=action, entity="search_run", entity_id=run.id,
        detail=detail,
    )
