"""Request-rate limiters for NCBI: at most N requests in any one-second window.

Bio.Entrez spaces requests only within one process. :class:`RedisRateLimiter` keeps the limit
across every worker process and machine that shares the Redis server (a sliding-window log in a
sorted set, updated atomically by a Lua script on Redis's own clock).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Protocol

# A little over one second: the server's clock sees our requests a few ms later or earlier.
WINDOW_SECONDS = 1.05


class RateLimiter(Protocol):
    def acquire(self) -> None:
        """Block until one more request may be sent."""


class NoRateLimit:
    """No limit (benchmarks against the local replay server)."""

    def acquire(self) -> None:
        return None


class LocalRateLimiter:
    """At most ``rate`` requests in any window, within this process (threads share it)."""

    def __init__(self, rate: float, window: float = WINDOW_SECONDS) -> None:
        self._max = max(1, int(rate))
        self._window = window
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self._window:
                    self._sent.popleft()
                if len(self._sent) < self._max:
                    self._sent.append(now)
                    return
                time.sleep(self._window - (now - self._sent[0]))


_SLIDING_WINDOW = """
local key, limit, window_us = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_us)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, now .. '-' .. ARGV[3])
  redis.call('PEXPIRE', key, math.ceil(window_us / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return (tonumber(oldest[2]) + window_us - now)
"""


class RedisRateLimiter:
    """At most ``rate`` requests in any window across all processes sharing ``redis``."""

    def __init__(
        self,
        redis: Any,
        rate: float,
        key: str = "living-review:ncbi-rate",
        window: float = WINDOW_SECONDS,
    ) -> None:
        self._redis = redis
        self._max = max(1, int(rate))
        self._window_us = int(window * 1_000_000)
        self._key = key
        self._script = redis.register_script(_SLIDING_WINDOW)
        self._counter = 0

    def acquire(self) -> None:
        while True:
            self._counter += 1
            token = f"{id(self)}-{threading.get_ident()}-{self._counter}"
            wait_us = int(self._script(keys=[self._key], args=[self._max, self._window_us, token]))
            if wait_us <= 0:
                return
            time.sleep(wait_us / 1_000_000)


def make_rate_limiter(
    rate: float, redis_url: str | None, key_prefix: str = "living-review:"
) -> RateLimiter:
    """The limiter the settings ask for: none (rate 0), shared in Redis, or in-process."""
    if rate <= 0:
        return NoRateLimit()
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=10)
        return RedisRateLimiter(client, rate, key=f"{key_prefix}ncbi-rate")
    return LocalRateLimiter(rate)
