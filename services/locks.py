"""Per-review locks: at most one update of a review runs at a time, on one machine or many.

Two implementations share one small interface (``acquire`` / ``refresh`` / ``release`` /
``holder``), each keyed by review id and owned by an opaque *token*:

- :class:`RedisReviewLock` — a Redis key set with ``SET NX PX`` holding the token, with a short
  TTL (a *lease*, ``UPDATE_LOCK_LEASE``, 90 s by default) that the holder's :class:`Heartbeat`
  renews every third of it while it works, so a holder that died frees the review within one
  lease. Acquire, refresh and release are Lua scripts (compare-and-set on the token), so a holder
  whose lock expired and was taken by someone else cannot free the new lock. Acquiring again with
  the *same* token succeeds (re-entrant), which is what a task redelivered after a worker crash
  needs: it carries the token of the update it belongs to. Beside the lock a second key keeps the
  holder's token and last heartbeat until it releases; finding it when the lock itself had expired
  means the holder died, and :meth:`RedisReviewLock.acquire` returns it (:class:`DeadHolder`).
- :class:`FileReviewLock` — an ``flock`` on ``<data_dir>/locks/review-<id>.lock`` for the embedded,
  Redis-less default (several processes on one machine, e.g. two ``living-review update``). The
  kernel frees it when the process dies; the holder's line left in the file (a clean release
  empties it) names the dead holder to the next one.

:func:`holding` takes a lock, keeps it with a :class:`Heartbeat` and releases it; the block calls
:meth:`Heartbeat.check` before it writes more, which raises :class:`LockLostError` once the lock
was lost.

Errors: :class:`LockError` (base); :class:`ReviewBusyError` when another token holds the review
(the message names the holder); :class:`LockLostError` when a token's lock expired and another
token now holds it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

logger = logging.getLogger(__name__)

KEY_PREFIX = "living-review:"
DEFAULT_LEASE = 90.0
HOLDER_NOTE_TTL_MS = 7 * 86400 * 1000  # the last holder's note outlives any lease

# KEYS: the lock, the holder's note. ARGV: token, lease (ms), note, note TTL (ms).
# Returns {1, previous note} when it took a free lock, {2, ""} when the token held it already,
# {0, holder} when another token holds it.
_ACQUIRE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local last = redis.call('get', KEYS[2]) or ''
  redis.call('set', KEYS[2], ARGV[3], 'PX', ARGV[4])
  return {1, last}
end
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  redis.call('set', KEYS[2], ARGV[3], 'PX', ARGV[4])
  return {2, ''}
end
return {0, redis.call('get', KEYS[1]) or ''}
"""
_RELEASE = """
local released = 0
if redis.call('get', KEYS[1]) == ARGV[1] then
  released = redis.call('del', KEYS[1])
end
local note = redis.call('get', KEYS[2])
if note and cjson.decode(note)['token'] == ARGV[1] then
  redis.call('del', KEYS[2])
end
return released
"""


@dataclass(frozen=True)
class DeadHolder:
    """The holder a lock was taken over from: it stopped renewing and never released."""

    holder: str
    last_heartbeat: str | None = None

    def describe(self) -> str:
        seen = f", last heartbeat {self.last_heartbeat}" if self.last_heartbeat else ""
        return f"{self.holder}{seen}"


class LockError(Exception):
    """Base of the lock errors."""


class ReviewBusyError(LockError):
    """Another update holds the review's lock."""

    def __init__(self, review_id: int, holder: str | None) -> None:
        super().__init__(
            f"review {review_id} is already being updated (lock held by {holder or 'another run'});"
            " this update was refused — try again when that one has finished"
        )
        self.review_id = review_id
        self.holder = holder


class LockLostError(LockError):
    """The token's lock expired and another token holds the review now."""


class ReviewLock(Protocol):
    """What the update pipeline needs from a lock."""

    def acquire(self, review_id: int, token: str, ttl: float) -> DeadHolder | None: ...
    def refresh(self, review_id: int, token: str, ttl: float) -> None: ...
    def release(self, review_id: int, token: str) -> bool: ...
    def holder(self, review_id: int) -> str | None: ...


class RedisReviewLock:
    """Review lock in Redis: token-valued key with a TTL (seconds)."""

    def __init__(self, client: Any, prefix: str = KEY_PREFIX) -> None:
        self._client = client
        self._prefix = f"{prefix}lock:review:"
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def key(self, review_id: int) -> str:
        return f"{self._prefix}{review_id}"

    def note_key(self, review_id: int) -> str:
        """The key of the holder's note (token and last heartbeat), deleted by a clean release."""
        return f"{self._prefix}{review_id}:holder"

    def acquire(self, review_id: int, token: str, ttl: float) -> DeadHolder | None:
        """Take (or renew) the lock for ``token`` for ``ttl`` seconds; the dead holder it took
        over from, if any. ReviewBusyError naming the holder when another token holds it."""
        ms = max(1, int(ttl * 1000))
        note = json.dumps({"token": token, "heartbeat": _now()})
        code, value = self._acquire(
            keys=[self.key(review_id), self.note_key(review_id)],
            args=[token, ms, note, HOLDER_NOTE_TTL_MS],
        )
        text = value.decode() if isinstance(value, bytes) else str(value or "")
        if int(code) == 0:
            raise ReviewBusyError(review_id, text or None)
        if int(code) == 2:
            return None  # re-entrant: the same update (a redelivered task) holds it already
        logger.info("review %s: lock taken by %s", review_id, token)
        dead = _dead_holder(text, token)
        if dead is not None:
            logger.warning(
                "review %s: %s took over the lock from a dead holder (%s): its heartbeat stopped "
                "and it never released the lock", review_id, token, dead.describe(),
            )
        return dead

    def refresh(self, review_id: int, token: str, ttl: float) -> None:
        """Extend the TTL; re-take a lock that expired unclaimed; LockLostError if taken."""
        try:
            self.acquire(review_id, token, ttl)
        except ReviewBusyError as exc:
            raise LockLostError(
                f"review {review_id}: the lock of {token} expired and {exc.holder} holds it now"
            ) from exc

    def release(self, review_id: int, token: str) -> bool:
        """Free the lock if ``token`` still holds it; True when it did."""
        released = bool(
            self._release(keys=[self.key(review_id), self.note_key(review_id)], args=[token])
        )
        logger.info("review %s: lock of %s released=%s", review_id, token, released)
        return released

    def holder(self, review_id: int) -> str | None:
        value = self._client.get(self.key(review_id))
        if isinstance(value, bytes):
            return value.decode()
        return None if value is None else str(value)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _dead_holder(note: str, token: str) -> DeadHolder | None:
    """The holder named by a note left behind, unless it is ``token`` itself (its own lock
    expired while it was away, e.g. a task redelivered after an outage)."""
    if not note:
        return None
    try:
        data = json.loads(note)
    except ValueError:
        return DeadHolder(note)
    holder = str(data.get("token") or "")
    if not holder or holder == token:
        return None
    return DeadHolder(holder, data.get("heartbeat"))


class FileReviewLock:
    """Review lock as an ``flock`` on a file: one machine, any number of processes.

    The lock lives as long as this object keeps the file open (the TTL is not needed: the kernel
    frees the lock when the process dies). The holder writes its token in the file and a clean
    release empties it, so a line found there by the next holder names a holder that died.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._held: dict[int, tuple[str, IO[str]]] = {}

    def _path(self, review_id: int) -> Path:
        return self._folder / f"review-{review_id}.lock"

    def acquire(self, review_id: int, token: str, ttl: float = 0) -> DeadHolder | None:
        """Take the lock, or raise ReviewBusyError naming the holder written in the file; the
        holder that died holding it, if its line was left in the file."""
        held = self._held.get(review_id)
        if held is not None:
            if held[0] == token:
                return None
            raise ReviewBusyError(review_id, held[0])
        self._folder.mkdir(parents=True, exist_ok=True)
        handle = open(self._path(review_id), "a+", encoding="utf-8")  # noqa: SIM115
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or None
            handle.close()
            raise ReviewBusyError(review_id, holder) from None
        handle.seek(0)
        left = handle.read().strip()
        handle.seek(0)
        handle.truncate()
        handle.write(f"{token} (pid {os.getpid()}, since {time.strftime('%H:%M:%S')})")
        handle.flush()
        self._held[review_id] = (token, handle)
        if not left:
            return None
        logger.warning(
            "review %s: %s took over the lock from a dead holder (%s): it died without "
            "releasing the lock", review_id, token, left,
        )
        return DeadHolder(left)

    def refresh(self, review_id: int, token: str, ttl: float = 0) -> None:
        held = self._held.get(review_id)
        if held is None or held[0] != token:
            raise LockLostError(f"review {review_id}: {token} does not hold the lock")

    def release(self, review_id: int, token: str) -> bool:
        held = self._held.get(review_id)
        if held is None or held[0] != token:
            return False
        del self._held[review_id]
        handle = held[1]
        handle.seek(0)
        handle.truncate()
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()
        return True

    def holder(self, review_id: int) -> str | None:
        held = self._held.get(review_id)
        if held is not None:
            return held[0]
        path = self._path(review_id)
        if not path.exists():
            return None
        return path.read_text(encoding="utf-8").strip() or None


class Heartbeat:
    """Renews a held lock from a daemon thread every third of its lease until stopped.

    A renewal that fails for a passing reason (Redis unreachable) is tried again at the next
    beat; a lost lock (another token holds it now) stops the beat, and :meth:`check` raises
    :class:`LockLostError` from then on, so the holder stops before it writes more.
    """

    def __init__(self, lock: ReviewLock, review_id: int, token: str, ttl: float,
                 took_over: DeadHolder | None = None) -> None:
        self.lock, self.review_id, self.token, self.ttl = lock, review_id, token, ttl
        self.took_over = took_over
        self.lost: LockLostError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lock-heartbeat-{review_id}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(1.0, self.ttl))

    def check(self) -> None:
        """Raise LockLostError if the lock was lost; renew it now otherwise."""
        if self.lost is None:
            try:
                self.lock.refresh(self.review_id, self.token, self.ttl)
            except LockLostError as exc:
                self.lost = exc
        if self.lost is not None:
            raise self.lost

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.lock.refresh(self.review_id, self.token, self.ttl)
            except LockLostError as exc:
                logger.error("review %s: %s lost its lock: %s", self.review_id, self.token, exc)
                self.lost = exc
                return
            except Exception as exc:  # a passing fault (Redis unreachable): try at the next beat
                logger.warning(
                    "review %s: could not renew the lock of %s: %r", self.review_id, self.token,
                    exc,
                )


@contextlib.contextmanager
def holding(lock: ReviewLock, review_id: int, token: str, ttl: float) -> Iterator[Heartbeat]:
    """Hold ``lock`` for the block, renewed by a :class:`Heartbeat` (the block's value, whose
    ``took_over`` names a dead holder the lock was taken from); always released after."""
    took_over = lock.acquire(review_id, token, ttl)
    beat = Heartbeat(lock, review_id, token, ttl, took_over).start()
    try:
        yield beat
    finally:
        beat.stop()
        lock.release(review_id, token)


def make_review_lock(
    redis_url: str | None, data_dir: Path, key_prefix: str = KEY_PREFIX
) -> ReviewLock:
    """The lock for the configuration: Redis when REDIS_URL is set, a file lock otherwise."""
    if redis_url:
        import redis

        return RedisReviewLock(redis.Redis.from_url(redis_url, socket_timeout=10), key_prefix)
    return FileReviewLock(data_dir / "locks")
