"""The priority queue: priority 1 (API) before 2 (scan), FIFO within one.

Holds filenames only, each at most once; the job records live in the
daemon's job table.  Thread-safe; ``take`` blocks until an entry is
available or the timeout passes.
"""

from __future__ import annotations

import heapq
import itertools
import threading


class JobQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._entries: dict[str, tuple[int, int]] = {}  # filename -> (priority, sequence)
        self._sequence = itertools.count()
        self._front_sequence = itertools.count(-1, -1)
        self._condition = threading.Condition()

    def __len__(self) -> int:
        with self._condition:
            return len(self._entries)

    def __contains__(self, filename: str) -> bool:
        with self._condition:
            return filename in self._entries

    def put(self, filename: str, priority: int) -> bool:
        """Add ``filename``; False if it is already queued (its place is kept,
        or moved up when the new priority is higher)."""
        with self._condition:
            current = self._entries.get(filename)
            if current is not None:
                if priority < current[0]:
                    self._push(filename, priority)
                return False
            self._push(filename, priority)
            self._condition.notify()
            return True

    def put_back(self, filename: str, priority: int) -> None:
        """Return a just-taken file to the head of its priority (the taker could not start it)."""
        with self._condition:
            key = (priority, next(self._front_sequence))
            self._entries[filename] = key
            heapq.heappush(self._heap, (*key, filename))
            self._condition.notify()

    def reprioritise(self, filename: str, priority: int) -> bool:
        """Move a queued file to ``priority`` (to the back of that priority)."""
        with self._condition:
            if filename not in self._entries:
                return False
            self._push(filename, priority)
            return True

    def remove(self, filename: str) -> bool:
        """Cancel a queued file; its stale heap entry is skipped lazily."""
        with self._condition:
            return self._entries.pop(filename, None) is not None

    def take(self, timeout: float | None = None) -> str | None:
        with self._condition:
            if not self._entries:
                self._condition.wait(timeout)
            while self._heap:
                priority, sequence, filename = heapq.heappop(self._heap)
                if self._entries.get(filename) == (priority, sequence):
                    del self._entries[filename]
                    return filename
            return None

    def position(self, filename: str) -> int | None:
        """1-based place in the queue, or None when not queued."""
        with self._condition:
            key = self._entries.get(filename)
            if key is None:
                return None
            return 1 + sum(1 for other in self._entries.values() if other < key)

    def depth_by_priority(self) -> dict[int, int]:
        with self._condition:
            depths: dict[int, int] = {}
            for priority, _ in self._entries.values():
                depths[priority] = depths.get(priority, 0) + 1
            return depths

    def _push(self, filename: str, priority: int) -> None:
        key = (priority, next(self._sequence))
        self._entries[filename] = key
        heapq.heappush(self._heap, (*key, filename))
