"""The recompute after confirmations, off the request and debounced, in the web process.

Without a worker (no ``REDIS_URL``) the web app owns the recompute a confirmation asks for. It
never runs on the request: :meth:`LocalRecompute.request` records the confirmation and returns;
a timer thread recomputes once the review's confirmations have been quiet for ``delay`` seconds
(``RECOMPUTE_DEBOUNCE_SECONDS``; at most ``max_wait`` after the first of a burst), so three
confirmations in a minute give one snapshot and one digest, as the Redis debouncer of
:mod:`workers.debounce` does for workers. The recompute holds the review's lock (the same file
lock an in-process ``living-review update`` takes); a busy review is tried again after ``delay``.
A recompute that meets a database error (SQLite busy past its wait, PostgreSQL gone for a
moment) is logged and tried again, up to ``RETRIES`` times with a growing wait, so a busy moment
does not leave a confirmation without its estimate. At shutdown, :meth:`LocalRecompute.close`
runs what is still waiting and waits for the recompute under way, so none outlives the app.

With a worker the app asks ``workers.tasks.request_recompute`` instead (see :func:`request`).
Errors: none raised to the caller, nor left to kill the timer thread; a failed recompute is
logged and the confirmation stays saved.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.locks import LockError, ReviewLock
from services.meta_analysis import MetaAnalysisError
from services.protocol import ProtocolError
from services.screening import on_extraction_confirmed

logger = logging.getLogger(__name__)

RETRIES = 5  # tries again after a database error; then the error is logged and left
RETRY_WAIT = 1.0  # seconds before the first try again (at least the quiet time), doubling
CLOSE_WAIT = 60.0  # seconds close() waits for a recompute under way


@dataclass
class _Pending:
    first: float
    last: float
    timer: threading.Timer | None = None
    failures: int = 0  # database errors met by this review's recompute so far


@dataclass
class LocalRecompute:
    """Trailing-edge debounce of recomputes per review, in this process (thread timers)."""

    sessions: sessionmaker[Session]
    lock: ReviewLock
    delay: float
    base_url: str = ""
    mail_domain: str = "living-review.local"
    max_wait: float | None = None
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _idle: threading.Condition = field(init=False)
    _running: int = 0
    _closed: bool = False

    def __post_init__(self) -> None:
        self._idle = threading.Condition(self._mutex)
        if self.max_wait is None:
            self.max_wait = 10 * self.delay

    def request(self, review_id: int) -> None:
        """Record a confirmation of ``review_id``; the recompute follows after the quiet time."""
        now = time.monotonic()
        with self._mutex:
            if self._closed:  # shutting down: the next update or confirmation recomputes it
                logger.info("review %s: recompute not scheduled, the app is shutting down", review_id)
                return
            pending = self._pending.get(review_id)
            if pending is not None:
                pending.last = now
                return
            self._pending[review_id] = _Pending(first=now, last=now)
            self._schedule(review_id, self.delay)

    def _schedule(self, review_id: int, wait: float) -> None:
        timer = threading.Timer(wait, self._fire, (review_id,))
        timer.daemon = True
        timer.name = f"recompute-review-{review_id}"
        self._pending[review_id].timer = timer
        timer.start()

    def _fire(self, review_id: int) -> None:
        now = time.monotonic()
        with self._mutex:
            pending = self._pending.get(review_id)
            if pending is None:
                return
            quiet, waited = now - pending.last, now - pending.first
            if quiet < self.delay and waited < (self.max_wait or 0):
                self._schedule(review_id, max(self.delay - quiet, 0.05))
                return
            del self._pending[review_id]  # a confirmation from now on starts a new burst
            self._running += 1
        try:
            outcome = self._recompute(review_id)
            if outcome == "busy":
                self.request(review_id)  # another holder has the review: after the delay
            elif outcome == "failed":
                self._try_again(review_id, pending.failures + 1)
        finally:
            with self._mutex:
                self._running -= 1
                self._idle.notify_all()

    def _try_again(self, review_id: int, failures: int) -> None:
        """Schedule another try after a database error, unless tries ran out or the app closed."""
        if failures > RETRIES:
            logger.error(
                "review %s: recompute after confirmation left after %d database errors; "
                "the next confirmation or update recomputes it", review_id, failures
            )
            return
        with self._mutex:
            if self._closed or review_id in self._pending:  # a newer confirmation is waiting
                return
            now, wait = time.monotonic(), max(RETRY_WAIT, self.delay) * 2 ** (failures - 1)
            self._pending[review_id] = _Pending(first=now, last=now, failures=failures)
            self._schedule(review_id, wait)
        logger.info("review %s: recompute tried again in %.1f s (%d of %d)", review_id, wait,
                    failures, RETRIES)

    def _recompute(self, review_id: int) -> str:
        """One recompute under the review's lock: "done", "busy" (another holder has the
        review) or "failed" (a database error: worth trying again)."""
        token = f"web-recompute:{review_id}:{threading.get_ident()}"
        try:
            self.lock.acquire(review_id, token, 600)
        except LockError as exc:
            logger.info("review %s: recompute postponed: %s", review_id, exc)
            return "busy"
        try:
            with self.sessions.begin() as session:
                on_extraction_confirmed(
                    session, review_id, base_url=self.base_url, mail_domain=self.mail_domain
                )
        except (MetaAnalysisError, ProtocolError, ValidationError) as exc:
            logger.warning("review %s: recompute after confirmation failed: %s", review_id, exc)
        except OperationalError as exc:
            logger.warning(
                "review %s: recompute after confirmation met a database error: %s",
                review_id, str(exc.orig).strip() or type(exc.orig).__name__,
            )
            return "failed"
        except Exception:
            logger.exception("review %s: recompute after confirmation failed", review_id)
        finally:
            self.lock.release(review_id, token)
        return "done"

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending or running; True when that happened within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def close(self) -> None:
        """At shutdown: run every waiting recompute now, wait for the one under way, return.

        Nothing is scheduled afterwards; a recompute that fails here is logged and left.
        """
        with self._mutex:
            self._closed = True
            waiting = list(self._pending.items())
            self._pending.clear()
        for review_id, pending in waiting:
            if pending.timer is not None:
                pending.timer.cancel()
            self._recompute(review_id)
        if not self.wait_idle(CLOSE_WAIT):
            logger.warning("a recompute was still running %.0f s after shutdown began", CLOSE_WAIT)
