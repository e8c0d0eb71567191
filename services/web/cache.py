"""What the dashboard draws, kept per estimate snapshot: a snapshot never changes once written,
so its forest plot and derived lines are computed once and served from memory after.

Bounded (least recently used out first), so a long-lived process does not grow without end.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class SnapshotCache:
    """A small thread-safe LRU keyed by (what, snapshot id)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._mutex = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value for ``key``, made (outside the lock) the first time it is asked for."""
        with self._mutex:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[return-value]
        value = make()
        with self._mutex:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)
