"""Deciding when a file is complete: unchanged size and mtime for a window.

Pure bookkeeping; the watcher feeds it observations and asks what is ready.
A file being copied keeps changing size or mtime, so it is never ready
before the copy ends.  Times are monotonic seconds passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    size: int
    mtime_ns: int


@dataclass
class _Candidate:
    signature: Signature
    stable_since: float


class StabilityTracker:
    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self._candidates: dict[str, _Candidate] = {}

    def __contains__(self, filename: str) -> bool:
        return filename in self._candidates

    def __len__(self) -> int:
        return len(self._candidates)

    def observe(self, filename: str, signature: Signature, now: float) -> None:
        """Record what the file looks like now; any change restarts its window."""
        candidate = self._candidates.get(filename)
        if candidate is None or candidate.signature != signature:
            self._candidates[filename] = _Candidate(signature, now)

    def touch(self, filename: str, now: float) -> None:
        """An event says the file was written to: restart its window even if
        the stat looks the same (coarse mtime on some network shares)."""
        candidate = self._candidates.get(filename)
        if candidate is not None:
            candidate.stable_since = now

    def forget(self, filename: str) -> None:
        self._candidates.pop(filename, None)

    def tracked(self) -> list[str]:
        return list(self._candidates)

    def pop_ready(self, now: float) -> list[str]:
        """Files unchanged for the whole window, oldest first (by mtime, then
        name), so files found together are queued in the order they arrived."""
        ready = sorted(
            (name for name, candidate in self._candidates.items()
             if now - candidate.stable_since >= self.window_seconds),
            key=lambda name: (self._candidates[name].signature.mtime_ns, name),
        )
        for name in ready:
            del self._candidates[name]
        return ready
