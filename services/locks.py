"""Per-review locks: at most one update of a review runs at a time, on one machine or many.

Two implementations share one small interface (``acquire`` / ``refresh`` / ``release`` /
``holder``), each keyed by review id and owned by an opaque *token*:

- :class:`RedisReviewLock` — a Redis key set with ``SET NX PX`` holding the token, with a TTL so a
  crashed holder cannot block the review forever; refresh and release are compare-and-set Lua
  scripts, so a holder whose lock expired and was taken by someone else cannot free the new lock.
  Acquiring again with the *same* token succeeds (re-entrant), which is what a task redelivered
  after a worker crash needs: it carries the token of the update it belongs to.
- :class:`FileReviewLock` — an ``flock`` on ``<data_dir>/locks/review-<id>.lock`` for the embedded,
  Redis-less default (several processes on one machine, e.g. two ``living-review update``).

Errors: :class:`LockError` (base); :class:`ReviewBusyError` when another token holds the review
(the message names the holder); :class:`LockLostError` when a token's lock expired and another
token now holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

logger = logging.getLogger(__name__)

KEY_PREFIX = "living-review:"

_REFRESH = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


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

    def acquire(self, review_id: int, token: str, ttl: float) -> None: ...
    def refresh(self, review_id: int, token: str, ttl: float) -> None: ...
    def release(self, review_id: int, token: str) -> bool: ...
    def holder(self, review_id: int) -> str | None: ...


class RedisReviewLock:
    """Review lock in Redis: token-valued key with a TTL (seconds)."""

    def __init__(self, client: Any, prefix: str = KEY_PREFIX) -> None:
        self._client = client
        self._prefix = f"{prefix}lock:review:"
        self._refresh = client.register_script(_REFRESH)
        self._release = client.register_script(_RELEASE)

    def key(self, review_id: int) -> str:
        return f"{self._prefix}{review_id}"

    def acquire(self, review_id: int, token: str, ttl: float) -> None:
        """Take the lock for ``token``, or raise ReviewBusyError naming the current holder."""
        ms = max(1, int(ttl * 1000))
        if self._client.set(self.key(review_id), token, nx=True, px=ms):
            logger.info("review %s: lock taken by %s", review_id, token)
            return
        if self._refresh(keys=[self.key(review_id)], args=[token, ms]):
            return  # re-entrant: the same update (a redelivered task) holds it already
        raise ReviewBusyError(review_id, self.holder(review_id))

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
        released = bool(self._release(keys=[self.key(review_id)], args=[token]))
        logger.info("review %s: lock of %s released=%s", review_id, token, released)
        return released

    def holder(self, review_id: int) -> str | None:
        value = self._client.get(self.key(review_id))
        if isinstance(value, bytes):
            return value.decode()
        return None if value is None else str(value)


class FileReviewLock:
    """Review lock as an ``flock`` on a file: one machine, any number of processes.

    The lock lives as long as this object keeps the file open (the TTL is not needed: the kernel
    frees the lock when the process dies).
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._held: dict[int, tuple[str, IO[str]]] = {}

    def _path(self, review_id: int) -> Path:
        return self._folder / f"review-{review_id}.lock"

    def acquire(self, review_id: int, token: str, ttl: float = 0) -> None:
        """Take the lock, or raise ReviewBusyError naming the holder written in the file."""
        held = self._held.get(review_id)
        if held is not None:
            if held[0] == token:
                return
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
        handle.truncate()
        handle.write(f"{token} (pid {os.getpid()}, since {time.strftime('%H:%M:%S')})")
        handle.flush()
        self._held[review_id] = (token, handle)

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


@contextlib.contextmanager
def holding(lock: ReviewLock, review_id: int, token: str, ttl: float) -> Iterator[None]:
    """Hold ``lock`` for the block (used by the in-process update); always released after."""
    lock.acquire(review_id, token, ttl)
    try:
        yield
    finally:
        lock.release(review_id, token)


def make_review_lock(
    redis_url: str | None, data_dir: Path, key_prefix: str = KEY_PREFIX
) -> ReviewLock:
    """The lock for the configuration: Redis when REDIS_URL is set, a file lock otherwise."""
    if redis_url:
        import redis

        return RedisReviewLock(redis.Redis.from_url(redis_url, socket_timeout=10), key_prefix)
    return FileReviewLock(data_dir / "locks")
