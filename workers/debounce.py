"""Debounced recompute: ten confirmations in a minute cause one recompute, not ten.

Two Redis keys per review: ``last`` (time of the latest confirmation) and ``pending`` (a recompute
task is scheduled). :meth:`Debouncer.touch` records a confirmation and tells the caller whether to
schedule the task (only when none is pending, with ``countdown=delay``). When the task runs,
:meth:`Debouncer.settle` says how long to wait again if a confirmation came in the last ``delay``
seconds (the task re-schedules itself for that long), or ``None``: quiet, go — it clears
``pending`` first, so a confirmation arriving during the recompute schedules a fresh one and is
never lost. ``max_wait`` bounds the delay under a steady stream of confirmations. The delay must
stay well below the broker's visibility timeout (a countdown longer than it runs twice).
"""

from __future__ import annotations

import time
from typing import Any

PREFIX = "living-review:"


class Debouncer:
    """Trailing-edge debounce per review id, state in Redis."""

    def __init__(
        self, client: Any, delay: float, max_wait: float | None = None, prefix: str = PREFIX
    ) -> None:
        self.client = client
        self._prefix = f"{prefix}recompute:"
        self.delay = delay
        self.max_wait = max_wait if max_wait is not None else 10 * delay
        self._ttl = int(self.max_wait + 3 * delay + 3600)

    def _keys(self, review_id: int) -> tuple[str, str]:
        return f"{self._prefix}last:{review_id}", f"{self._prefix}pending:{review_id}"

    def touch(self, review_id: int, now: float | None = None) -> bool:
        """Record a confirmation; True when the caller must schedule the recompute task."""
        now = time.time() if now is None else now
        last, pending = self._keys(review_id)
        self.client.set(last, repr(now), ex=self._ttl)
        return bool(self.client.set(pending, repr(now), nx=True, ex=self._ttl))

    def settle(self, review_id: int, now: float | None = None) -> float | None:
        """Seconds to wait before trying again, or None: recompute now (pending cleared)."""
        now = time.time() if now is None else now
        last_key, pending_key = self._keys(review_id)
        last = _float(self.client.get(last_key))
        first = _float(self.client.get(pending_key))
        quiet = now - last if last is not None else self.delay
        waited = now - first if first is not None else self.max_wait
        if quiet < self.delay and waited < self.max_wait:
            return max(self.delay - quiet, 0.05)
        self.client.delete(pending_key)
        return None


def _float(value: Any) -> float | None:
    if value is None:
        return None
    return float(value.decode() if isinstance(value, bytes) else value)
