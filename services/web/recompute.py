"""The recompute after confirmations, off the request and debounced, in the web process.

Without a worker (no ``REDIS_URL``) the web app owns the recompute a confirmation asks for. It
never runs on the request: :meth:`LocalRecompute.request` records the confirmation and returns;
a timer thread recomputes once the review's confirmations have been quiet for ``delay`` seconds
(``RECOMPUTE_DEBOUNCE_SECONDS``; at most ``max_wait`` after the first of a burst), so three
confirmations in a minute give one snapshot and one digest, as the Redis debouncer of
:mod:`workers.debounce` does for workers. The recompute holds the review's lock (the same file
lock an in-process ``living-review update`` takes); a busy review is tried again after ``delay``.
At shutdown, :meth:`LocalRecompute.close` runs what is still waiting, so no confirmation is left
without its estimate.

With a worker the app asks ``workers.tasks.request_recompute`` instead (see :func:`request`).
Errors: none raised to the caller; a failed recompute is logged and the confirmation stays saved.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from services.locks import LockError, ReviewLock
from services.meta_analysis import MetaAnalysisError
from services.protocol import ProtocolError
from services.screening import on_extraction_confirmed

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    first: float
    last: float
    timer: threading.Timer | None = None


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

    def __post_init__(self) -> None:
        self._idle = threading.Condition(self._mutex)
        if self.max_wait is None:
            self.max_wait = 10 * self.delay

    def request(self, review_id: int) -> None:
        """Record a confirmation of ``review_id``; the recompute follows after the quiet time."""
        now = time.monotonic()
        with self._mutex:
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
            if not self._recompute(review_id):
                self.request(review_id)  # the review was busy: try again after the delay
        finally:
            with self._mutex:
                self._running -= 1
                self._idle.notify_all()

    def _recompute(self, review_id: int) -> bool:
        """One recompute under the review's lock; False when another holder has the review."""
        token = f"web-recompute:{review_id}:{threading.get_ident()}"
        try:
            self.lock.acquire(review_id, token, 600)
        except LockError as exc:
            logger.info("review %s: recompute postponed: %s", review_id, exc)
            return False
        try:
            with self.sessions.begin() as session:
                on_extraction_confirmed(
                    session, review_id, base_url=self.base_url, mail_domain=self.mail_domain
                )
        except (MetaAnalysisError, ProtocolError, ValidationError) as exc:
            logger.warning("review %s: recompute after confirmation failed: %s", review_id, exc)
        finally:
            self.lock.release(review_id, token)
        return True

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
        """Run every waiting recompute now (at shutdown), then return."""
        with self._mutex:
            waiting = list(self._pending.items())
            self._pending.clear()
        for review_id, pending in waiting:
            if pending.timer is not None:
                pending.timer.cancel()
            self._recompute(review_id)
