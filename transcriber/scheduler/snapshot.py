"""What the daemon shows of itself: one consistent read for /health and /metrics.

The API never reaches into the daemon's watcher, store, queue, slots or
mirror; it asks ``Daemon.health_snapshot()`` for this record instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkerState:
    name: str
    pid: int | None
    alive: bool
    memory_bytes: int
    restarts: int
    running: str | None
    models_loaded: tuple[str, ...]
    crash_looping: bool = False  # died CRASH_LOOP_DEATHS times in a row on its own
    last_death: str | None = None
    model_load_seconds: tuple[float, ...] = ()
    last_load_ok: bool | None = None  # how its last model load ended; None: none yet


@dataclass(frozen=True)
class WatcherState:
    alive: bool
    observer: str  # "inotify" or "polling"
    last_scan_seconds: float
    files_seen: int


@dataclass(frozen=True)
class DaemonSnapshot:
    workers: tuple[WorkerState, ...]
    watcher: WatcherState
    queue_depth_by_priority: dict[int, int]
    refused_writes: dict[str, str]  # filename -> why the folder refused its sidecar
    paused: bool
    mirror: dict[str, Any] | None  # Mirror.health(), None when the mirror is off

    @property
    def queue_depth(self) -> int:
        return sum(self.queue_depth_by_priority.values())
