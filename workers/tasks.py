"""Celery tasks: thin wrappers that take IDs, open sessions, call one service function.

An update is a chain, one task per step of :mod:`services.update`::

    start_update → harvest → <later steps> → finish_update → send_digests

``start_update`` takes the review's lock (:class:`services.locks.RedisReviewLock`) with a token
derived from its own task id, creates (or, after a crash, resumes) the ``running`` search run and
sends the chain *after* its transaction committed. The lock is a short lease
(``UPDATE_LOCK_LEASE``): each step renews it with the same token and a
:class:`services.locks.Heartbeat` keeps renewing it while the step works, so a step redelivered
after a worker crash carries on, a second update of the same review is refused with
:class:`services.locks.ReviewBusyError` naming the holder, and an update whose worker died frees
the review within one lease: the next one says it took the lock over from that dead holder (log
and audit ``lock.taken_over``). A step whose lock was lost meanwhile raises
:class:`services.locks.LockLostError` and the chain stops there. The last step releases the lock;
a step that fails for good marks the run failed and releases it too.

A resumed run whose window ends before the date the update was asked for is followed, in the same
update, by the next window: ``finish_update`` starts that run and its chain under the same lock.

A broker (Redis) outage is not a failure of the run: a step that fails because Redis is
unreachable (the chain's next message could not be sent, the lock could not be renewed) leaves
the run where its last committed step put it and the lock to expire; the unacknowledged message
is delivered again once Redis is back (the worker cancels late-acked tasks it can no longer
acknowledge, see :mod:`workers.celery_app`), or the next update resumes the run.

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

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from celery import Task, chain
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.models import AuditLog, EstimateSnapshot, Review
from services import runs, update
from services.digest import send_pending
from services.digest.estimates import pool_review, store_pooled
from services.digest.outbox import mail_domain_of
from services.locks import Heartbeat, LockLostError, ReviewBusyError
from services.meta_analysis.store import Pooled
from services.pipeline import PipelineOptions
from services.protocol import ProtocolError, load_protocol
from services.pubmed.client import EntrezClient
from services.runs import UpdateError
from workers.celery_app import app, runtime, smtp_config
from workers.debounce import Debouncer

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, RedisConnectionError)
BROKER_LOST = (BrokerError, RedisConnectionError, RedisTimeoutError)
MAX_DELIVERIES = 10
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": True, "retry_backoff_max": 600,
         "retry_jitter": True, "max_retries": 6}
# the next step's message is sent by the step before: ride out a short broker outage (~40 s)
CHAIN_PUBLISH_RETRY = {"max_retries": 10, "interval_start": 1, "interval_step": 1,
                       "interval_max": 5}


def broker_lost(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is Redis being unreachable: a broker outage."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BROKER_LOST):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class PipelineTask(Task):
    """Base of the update steps: on final failure, mark the run failed and free the review.

    Not when the failure is a broker outage (:func:`broker_lost`): the run stays at the step it
    committed, for the redelivered message or the next update to carry on from.
    """

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        if len(args) < 3 or isinstance(exc, ReviewBusyError | LockLostError):
            return
        review_id, run_id, token = args[0], args[1], args[2]
        if broker_lost(exc):
            logger.warning(
                "review %s: %s of run %s stopped by a broker outage (%r); the run stays where "
                "its last committed step left it, to be carried on when Redis is back",
                review_id, self.name, run_id, exc,
            )
            return
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


@contextlib.contextmanager
def _holding(review_id: int, token: str) -> Iterator[None]:
    """Renew the review's lock for one step and keep renewing it while the step works.

    LockLostError before the step when another update holds the review, and after it when the
    lock was lost meanwhile (the chain stops: the step's successor is not sent).
    """
    rt = runtime()
    lease = rt.settings.update_lock_lease
    rt.lock.refresh(review_id, token, lease)
    beat = Heartbeat(rt.lock, review_id, token, lease).start()
    try:
        yield
    finally:
        beat.stop()
    beat.check()


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
        dead = rt.lock.acquire(review_id, token, rt.settings.update_lock_lease)
    except ReviewBusyError as exc:
        logger.warning("update refused: %s", exc)
        with rt.session_factory.begin() as session:
            session.add(AuditLog(review_id=review_id, action="update.refused", entity="review",
                                 entity_id=review_id, detail={"holder": exc.holder or ""}))
        return None
    if dead is not None:
        with rt.session_factory.begin() as session:
            runs.audit_takeover(session, review_id, token, dead)
    end = dt.date.fromisoformat(until) if until else dt.date.today()
    return _start_run(review_id, token, end)


def _start_run(review_id: int, token: str, end: dt.date) -> int | None:
    """Under the lock ``token`` holds: create or resume the run, send its chain after commit.

    Frees the lock when there is nothing to do or the update cannot start (audit
    ``update.refused`` with the error).
    """
    rt = runtime()
    try:
        with rt.session_factory.begin() as session:
            slug = session.get_one(Review, review_id).slug
            protocol = load_protocol(rt.settings.reviews_dir, slug)
            run = runs.begin(session, protocol, end)
            run_id, window_end = run.id, run.window_end
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
    # a resumed run's window ends before `end`: its last step starts the next window
    follow = end.isoformat() if window_end < end else None
    chain(*pipeline(review_id, run_id, token, follow)).apply_async()
    logger.info("review %s: update run %s started (%s)", review_id, run_id, token)
    return run_id


def pipeline(review_id: int, run_id: int, token: str, until: str | None = None) -> list[Any]:
    """The step signatures of one update, in order (``until``: the window to search next once
    this run has succeeded)."""
    args = (review_id, run_id, token)
    steps = [harvest.si(*args), prescreen.si(*args), propose.si(*args), recompute.si(*args),
             finish_update.si(*args, until=until) if until else finish_update.si(*args)]
    return [step.set(retry_policy=CHAIN_PUBLISH_RETRY) for step in steps]


@app.task(bind=True, base=PipelineTask, name="living_review.harvest", **RETRY)
def harvest(self: Task, review_id: int, run_id: int, token: str) -> None:
    """Step 1: search and store the run's window (idempotent per run)."""
    if _too_many_deliveries(self):
        return
    with _holding(review_id, token):
        update.harvest(runtime().session_factory, run_id, entrez_client())


@app.task(bind=True, base=PipelineTask, name="living_review.prescreen", **RETRY)
def prescreen(self: Task, review_id: int, run_id: int, token: str) -> dict[str, Any] | None:
    """Step 2: protocol rules, then the model at the recall target, for every new record."""
    if _too_many_deliveries(self):
        return None
    with _holding(review_id, token):
        return update.prescreen(runtime().session_factory, run_id)


@app.task(bind=True, base=PipelineTask, name="living_review.propose", **RETRY)
def propose(self: Task, review_id: int, run_id: int, token: str) -> dict[str, Any] | None:
    """Step 3: machine-proposed extractions for included records that have none yet."""
    if _too_many_deliveries(self):
        return None
    with _holding(review_id, token):
        return update.propose(runtime().session_factory, run_id)


@app.task(bind=True, base=PipelineTask, name="living_review.recompute", **RETRY)
def recompute(self: Task, review_id: int, run_id: int, token: str) -> None:
    """Step: snapshot the pooled estimate and queue its digest, once per run."""
    if _too_many_deliveries(self):
        return
    s = runtime().settings
    with _holding(review_id, token):
        update.recompute(runtime().session_factory, run_id, base_url=s.base_url,
                         mail_domain=mail_domain_of(s.mail_from))


def _snapshot_and_digest(session: Session, review_id: int,
                         pooled: Pooled) -> tuple[EstimateSnapshot, list[Any]]:
    s = runtime().settings
    return store_pooled(
        session, session.get_one(Review, review_id), pooled, trigger="confirmation",
        base_url=s.base_url, mail_domain=mail_domain_of(s.mail_from))


@app.task(bind=True, base=PipelineTask, name="living_review.finish_update", **RETRY)
def finish_update(self: Task, review_id: int, run_id: int, token: str,
                  until: str | None = None) -> None:
    """Last step: mark the run succeeded, send the digests it queued; then start the window up
    to ``until`` if this was a resumed run that ended before it, else free the review."""
    if _too_many_deliveries(self):
        return
    rt = runtime()
    with _holding(review_id, token):
        update.finish(rt.session_factory, run_id)
    send_digests.delay()
    if until is not None:
        with rt.session_factory() as session:
            go_on = runs.needs_next_window(session, run_id, dt.date.fromisoformat(until))
        if go_on:
            logger.info("review %s: resumed run %s finished; next window up to %s",
                        review_id, run_id, until)
            _start_run(review_id, token, dt.date.fromisoformat(until))
            return
    rt.lock.release(review_id, token)


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
        rt.lock.acquire(review_id, token, rt.settings.update_lock_lease)
    except ReviewBusyError as exc:
        logger.info("recompute of review %s postponed: %s", review_id, exc)
        if debouncer().touch(review_id):
            self.apply_async((review_id,), countdown=rt.settings.recompute_debounce_seconds)
        return None
    beat = Heartbeat(rt.lock, review_id, token, rt.settings.update_lock_lease).start()
    try:
        with rt.session_factory() as session:  # pool first: the GLMM is slow
            pooled = pool_review(session, session.get_one(Review, review_id))
        beat.check()
        with rt.session_factory.begin() as session:
            snapshot, rows = _snapshot_and_digest(session, review_id, pooled)
            snapshot_id = snapshot.id
    finally:
        beat.stop()
        rt.lock.release(review_id, token)
    if rows:
        send_digests.delay()
    return snapshot_id
