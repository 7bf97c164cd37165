"""Report results shared between page views for a short while.

A weekly review has several people open the same overview within minutes; the reports behind
it scan the events table many times (the rollups of a later change make that cheap). Results
are kept for ``ttl_s`` seconds per (report, parameters, k), so a page may be up to that old
(pages say so). Values are immutable report Structs.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final, TypeVar

T = TypeVar("T")
DEFAULT_TTL_S: Final = 60.0
DEFAULT_MAX_ENTRIES: Final = 512


@dataclass(frozen=True, slots=True)
class _Entry:
    value: object
    computed_at: float


class ResultCache:
    """A small LRU of computed results that expire after ``ttl_s`` seconds."""

    def __init__(
        self,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value for ``key``, or ``compute()`` (run outside the lock: two callers
        may both compute a missing entry, which costs time but never a wrong answer)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.computed_at < self.ttl_s:
                self._entries.move_to_end(key)
                return entry.value  # type: ignore[return-value]  # stored by this key's compute
        value = compute()
        with self._lock:
            self._entries[key] = _Entry(value, self._clock())
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
