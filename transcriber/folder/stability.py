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
    closed: bool = False  # the writer closed it (or renamed it into place) since the last change


class StabilityTracker:
    """``window_seconds`` of quiet make a file complete; after its writer closed
    it (inotify's IN_CLOSE_WRITE, or a rename into place) ``closed_window_seconds``
    are enough, since the usual reason to wait, a copy in progress, is over."""

    def __init__(self, window_seconds: float, closed_window_seconds: float | None = None) -> None:
        self.window_seconds = window_seconds
        self.closed_window_seconds = window_seconds if closed_window_seconds is None else min(
            closed_window_seconds, window_seconds)
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

    def mark_closed(self, filename: str) -> None:
        """The writer closed the file; a later change of its stat clears this."""
        candidate = self._candidates.get(filename)
        if candidate is not None:
            candidate.closed = True

    def touch(self, filename: str, now: float) -> None:
        """An event says the file was written to: restart its window even if
        the stat looks the same (coarse mtime on some network shares)."""
        candidate = self._candidates.get(filename)
        if candidate is not None:
            candidate.stable_since = now
            candidate.closed = False

    def forget(self, filename: str) -> None:
        self._candidates.pop(filename, None)

    def tracked(self) -> list[str]:
        return list(self._candidates)

    def pop_ready(self, now: float) -> list[str]:
        """Files unchanged for the whole window, oldest first (by mtime, then
        name), so files found together are queued in the order they arrived."""
        ready = sorted(
            (name for name, candidate in self._candidates.items()
             if now - candidate.stable_since >= (
                 self.closed_window_seconds if candidate.closed else self.window_seconds)),
            key=lambda name: (self._candidates[name].signature.mtime_ns, name),
        )
        for name in ready:
            del self._candidates[name]
        return ready
