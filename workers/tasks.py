"""Celery tasks: thin wrappers that take IDs, open sessions, call one service function.

An update is a chain, one task per step of :mod:`services.update`::

    start_update → harvest → <later steps> → finish_update → send_digests

``start_update`` takes the review's lock (:class:`services.locks.RedisReviewLock`) with a token
derived from its own task id, creates (or, after a crash, resumes) the ``running`` search run and
sends the chain *after* its transaction committed. Each step refreshes the lock with the same
token, so a step redelivered after a worker crash carries on, while a second update of the same
review is refused with :class:`services.locks.ReviewBusyError` naming the holder. The last step
releases the lock; a step that fails for good marks the run failed and releases it too.

The run itself is started or resumed, and settled after a failure, by the run engine
(:mod:`services.runs`), exactly as in-process: ``start_update`` calls :func:`services.runs.begin`
and a step that fails for good calls :func:`services.runs.settle` (failed, or held for a person).

Retries happen in one layer: E-utilities requests are retried by the client; a task retries only
a lost database or Redis connection, with exponential backoff and jitter, and the run is settled
only when the last attempt failed (so a retried step never finds its run already failed). A
message delivered more than ``MAX_DELIVERIES`` times (a task that keeps killing its process) is
dropped with an error in the log instead of looping.

Errors raised here: the services' own (``ReviewBusyError``, ``LockLostError``, ``UpdateError``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import Task, chain
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.models import AuditLog, EstimateSnapshot, Review
from services import runs, update
from services.digest import send_pending
from services.digest.estimates import pool_review, store_pooled
from services.digest.outbox import mail_domain_of
from services.locks import LockLostError, ReviewBusyError
from services.meta_analysis.store import Pooled
from services.pipeline import PipelineOptions
from services.protocol import ProtocolError, load_protocol
from services.pubmed.client import EntrezClient
from services.runs import UpdateError
from workers.celery_app import app, runtime, smtp_config
from workers.debounce import Debouncer

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, RedisConnectionError)
MAX_DELIVERIES = 10
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": True, "retry_backoff_max": 600,
         "retry_jitter": True, "max_retries": 6}


class PipelineTask(Task):
    """Base of the update steps: on final failure, mark the run failed and free the review."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        if len(args) >= 3 and not isinstance(exc, ReviewBusyError | LockLostError):
            review_id, run_id, token = args[0], args[1], args[2]
            runs.settle(runtime().session_factory, run_id, exc)
            runtime().lock.release(review_id, token)


def _too_many_deliveries(task: Task) -> bool:
    key = f"{runtime().settings.redis_key_prefix}deliveries:{task.request.id}"
    count = runtime().redis.incr(key)
    runtime().redis.expire(key, 86400)
    if count > MAX_DELIVERIES:
        logger.error("task %s %s delivered %d times; dropped", task.name, task.request.id, count)
        return True
    return False


def _hold(review_id: int, token: str) -> None:
    rt = runtime()
    rt.lock.refresh(review_id, token, rt.settings.update_lock_ttl)


def entrez_client() -> EntrezClient:
    """An E-utilities client configured from the settings (rate limit shared via Redis)."""
    return PipelineOptions.from_settings(runtime().settings).make_client()


@app.task(bind=True, name="living_review.start_update", **RETRY)
def start_update(self: Task, review_id: int, until: str | None = None) -> int | None:
    """Lock the review, create or resume its running run, send the step chain; the run id.

    When another update holds the review, nothing is started: the refusal is logged and written
    to the audit log (``update.refused``) with the holder, and None is returned.
    """
    if _too_many_deliveries(self):
        return None
    return begin_update(review_id, f"update:{review_id}:{self.request.id}", until)


def begin_update(review_id: int, token: str, until: str | None = None) -> int | None:
    """Take the lock for ``token``, create or resume the run, send the chain after commit."""
    rt = runtime()
    try:
        rt.lock.acquire(review_id, token, rt.settings.update_lock_ttl)
    except ReviewBusyError as exc:
        logger.warning("update refused: %s", exc)
        with rt.session_factory.begin() as session:
            session.add(AuditLog(review_id=review_id, action="update.refused", entity="review",
                                 entity_id=review_id, detail={"holder": exc.holder or ""}))
        return None
    end = dt.date.fromisoformat(until) if until else dt.date.today()
    try:
        with rt.session_factory.begin() as session:
            slug = session.get_one(Review, review_id).slug
            protocol = load_protocol(rt.settings.reviews_dir, slug)
            run_id = runs.begin(session, protocol, end).id
    except runs.WindowCoveredError as exc:
        logger.info("review %s: no update needed: %s", review_id, exc)
        rt.lock.release(review_id, token)
        return None
    except (ProtocolError, UpdateError) as exc:
        logger.error("review %s: update not started: %s", review_id, exc)
        with rt.session_factory.begin() as session:
            session.add(AuditLog(review_id=review_id, action="update.refused", entity="review",
                                 entity_id=review_id, detail={"error": str(exc)}))
        rt.lock.release(review_id, token)
        return None
    chain(*pipeline(review_id, run_id, token)).apply_async()
    logger.info("review %s: update run %s started (%s)", review_id, run_id, token)
    return run_id


def pipeline(review_id: int, run_id: int, token: str) -> list[Any]:
    """The step signatures of one update, in order."""
    args = (review_id, run_id, token)
    return [harvest.si(*args), prescreen.si(*args), propose.si(*args), recompute.si(*args),
            finish_update.si(*args)]


@app.task(bind=True, base=PipelineTask, name="living_review.harvest", **RETRY)
def harvest(self: Task, review_id: int, run_id: int, token: str) -> None:
    """Step 1: search and store the run's window (idempotent per run)."""
    if _too_many_deliveries(self):
        return
    _hold(review_id, token)
    update.harvest(runtime().session_factory, run_id, entrez_client())


@app.task(bind=True, base=PipelineTask, name="living_review.prescreen", **RETRY)
def prescreen(self: Task, review_id: int, run_id: int, token: str) -> dict[str, Any] | None:
    """Step 2: protocol rules, then the model at the recall target, for every new record."""
    if _too_many_deliveries(self):
        return None
    _hold(review_id, token)
    return update.prescreen(runtime().session_factory, run_id)


@app.task(bind=True, base=PipelineTask, name="living_review.propose", **RETRY)
def propose(self: Task, review_id: int, run_id: int, token: str) -> dict[str, Any] | None:
    """Step 3: machine-proposed extractions for included records that have none yet."""
    if _too_many_deliveries(self):
        return None
    _hold(review_id, token)
    return update.propose(runtime().session_factory, run_id)


@app.task(bind=True, base=PipelineTask, name="living_review.recompute", **RETRY)
def recompute(self: Task, review_id: int, run_id: int, token: str) -> None:
    """Step: snapshot the pooled estimate and queue its digest, once per run."""
    if _too_many_deliveries(self):
        return
    _hold(review_id, token)
    s = runtime().settings
    update.recompute(runtime().session_factory, run_id, base_url=s.base_url,
                     mail_domain=mail_domain_of(s.mail_from))


def _snapshot_and_digest(session: Session, review_id: int,
                         pooled: Pooled) -> tuple[EstimateSnapshot, list[Any]]:
    s = runtime().settings
    return store_pooled(
        session, session.get_one(Review, review_id), pooled, trigger="confirmation",
        base_url=s.base_url, mail_domain=mail_domain_of(s.mail_from))


@app.task(bind=True, base=PipelineTask, name="living_review.finish_update", **RETRY)
def finish_update(self: Task, review_id: int, run_id: int, token: str) -> None:
    """Last step: mark the run succeeded, free the review, send the digests it queued."""
    if _too_many_deliveries(self):
        return
    _hold(review_id, token)
    update.finish(runtime().session_factory, run_id)
    runtime().lock.release(review_id, token)
    send_digests.delay()


@app.task(bind=True, name="living_review.scheduled_update", **RETRY)
def scheduled_update(self: Task, review_id: int) -> int | None:
    """Beat's entry point: start the review's update unless one is running (then say so)."""
    if _too_many_deliveries(self):
        return None
    return begin_update(review_id, f"update:{review_id}:{self.request.id}")


@app.task(bind=True, name="living_review.send_digests", **RETRY)
def send_digests(self: Task) -> dict[str, Any]:
    """Deliver pending outbox rows; a failed SMTP server leaves them for the next run."""
    report = send_pending(runtime().session_factory, smtp_config(runtime().settings))
    return {"sent": report.sent, "failed": report.failed}


def debouncer() -> Debouncer:
    """The recompute debouncer of this process."""
    rt = runtime()
    return Debouncer(rt.redis, rt.settings.recompute_debounce_seconds,
                     prefix=rt.settings.redis_key_prefix)


def request_recompute(review_id: int) -> bool:
    """Ask for a recompute after a confirmation (call after the confirmation committed).

    Debounced: only the first request of a burst schedules the task; True when it did.
    """
    if not debouncer().touch(review_id):
        return False
    recompute_after_confirmations.apply_async(
        (review_id,), countdown=runtime().settings.recompute_debounce_seconds)
    return True


@app.task(bind=True, name="living_review.recompute_after_confirmations", **RETRY)
def recompute_after_confirmations(self: Task, review_id: int) -> int | None:
    """Recompute once the confirmations have been quiet for the debounce delay; snapshot id.

    While an update holds the review, try again after the delay (its own recompute step may
    already have run before the confirmations).
    """
    rt = runtime()
    wait = debouncer().settle(review_id)
    if wait is not None:
        self.apply_async((review_id,), countdown=wait)
        return None
    token = f"recompute:{review_id}:{self.request.id}"
    try:
        rt.lock.acquire(review_id, token, rt.settings.update_lock_ttl)
    except ReviewBusyError as exc:
        logger.info("recompute of review %s postponed: %s", review_id, exc)
        if debouncer().touch(review_id):
            self.apply_async((review_id,), countdown=rt.settings.recompute_debounce_seconds)
        return None
    try:
        with rt.session_factory() as session:  # pool first: the GLMM is slow
            pooled = pool_review(session, session.get_one(Review, review_id))
        with rt.session_factory.begin() as session:
            snapshot, rows = _snapshot_and_digest(session, review_id, pooled)
            snapshot_id = snapshot.id
    finally:
        rt.lock.release(review_id, token)
    if rows:
        send_digests.delay()
    return snapshot_id
