"""Finding files: events are hints, the scan is the detector (docs/ARCHITECTURE.md).

watchdog (inotify, or polling on network shares) reports names that may
have changed; a periodic full rescan catches whatever events missed.  Either
way a name only goes to the :class:`StabilityTracker`, and ``on_ready`` is
called once the file has kept its size and mtime for the stability window.
All tracker work happens in :meth:`Watcher.tick`, called by the daemon's
housekeeping thread, so the observer thread only fills a set.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from transcriber.config import WatchConfig
from transcriber.folder import sidecars
from transcriber.folder.layout import SharedFolder
from transcriber.folder.results import transcribed_signature
from transcriber.folder.stability import Signature, StabilityTracker

log = logging.getLogger("Watcher")

NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "afs", "ceph", "glusterfs", "9p", "virtiofs",
    "fuse.sshfs", "sshfs", "fuse.rclone", "fuse.s3fs", "fuse.glusterfs", "davfs", "fuse.davfs2", "lustre", "gpfs",
})


def filesystem_type(path: Path, mounts_file: Path = Path("/proc/mounts")) -> str | None:
    """The type of the filesystem holding ``path``, from the longest mount prefix."""
    try:
        lines = mounts_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, best_type = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fields[2]
    return best_type


def choose_observer(mode: str, fs_type: str | None) -> str:
    """'inotify' or 'polling': inotify never sees writes made by other hosts on a share."""
    if mode != "auto":
        return mode
    return "polling" if fs_type in NETWORK_FILESYSTEMS else "inotify"


class _Hints(FileSystemEventHandler):
    def __init__(self, sink: Callable[[str, bool], None]) -> None:
        self.sink = sink  # (path, finished writing)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type == EVENT_TYPE_CLOSED_NO_WRITE:
            return  # a reader closing the file (ffmpeg, a backup tool) says nothing
        if event.event_type == EVENT_TYPE_MOVED:
            self.sink(os.fsdecode(event.src_path), False)
            self.sink(os.fsdecode(event.dest_path), True)  # renamed into place: written in full
            return
        self.sink(os.fsdecode(event.src_path), event.event_type == EVENT_TYPE_CLOSED)


class Watcher:
    def __init__(
        self, folder: SharedFolder, config: WatchConfig, on_ready: Callable[[str, datetime], None],
        has_job: Callable[[str], bool],
    ) -> None:
        """``on_ready(filename, first_seen)`` receives complete files that need
        a job: ``has_job(filename)`` is False and no ``.result`` matches them."""
        self.folder = folder
        self.config = config
        self.on_ready = on_ready
        self.has_job = has_job
        self.tracker = StabilityTracker(config.stability_seconds, config.close_settle_seconds)
        self.observer_kind = choose_observer(config.observer, filesystem_type(folder.root))
        self._observer: BaseObserver | None = None
        self._hints: dict[str, bool] = {}  # filename -> its writer closed it
        self._hints_lock = threading.Lock()
        self._first_seen: dict[str, datetime] = {}
        self._asked: set[str] = set()  # look_at() names, for the next tick (any thread may ask)
        self._results: dict[str, tuple[int, Signature | None]] = {}  # filename -> (.result mtime_ns, made from)
        self._next_rescan = 0.0
        self._next_restat = 0.0
        self.last_scan_seconds = 0.0
        self.last_scan_files = 0
        self.scans_completed = 0  # full rescans finished since start (for tests to wait on)

    def start(self) -> None:
        """Start the observer; the first :meth:`tick` runs the startup scan."""
        if self.observer_kind == "polling":
            observer: BaseObserver = PollingObserver(timeout=self.config.polling_interval_seconds)
        else:
            observer = Observer()
        observer.schedule(_Hints(self._hint), str(self.folder.root), recursive=self.config.recursive)
        observer.daemon = True
        observer.start()
        self._observer = observer
        log.info("Watching %s with %s (rescan every %g s)", self.folder.root, self.observer_kind,
                 self.config.rescan_interval_seconds)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5.0)

    def is_alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def look_at(self, filename: str) -> None:
        """Start timing ``filename``'s stability at the next tick, unless already timed
        (a job waits for it: the API asked for a file the watcher had not released)."""
        with self._hints_lock:
            self._asked.add(filename)

    def tick(self, now: float | None = None) -> None:
        """Handle hints, re-check tracked files, rescan when due, release ready files."""
        now = time.monotonic() if now is None else now
        if now >= self._next_rescan:
            self.rescan(now)
            self._next_rescan = now + self.config.rescan_interval_seconds
        with self._hints_lock:
            asked, self._asked = self._asked, set()
        for filename in asked:
            if filename not in self.tracker and not self._settled(filename):
                self._observe(filename, now)
        self._absorb_hints(now)
        if now >= self._next_restat:
            self._restat_tracked(now)
            self._next_restat = now + min(0.5, max(self.config.stability_seconds / 4, 0.05))
        for filename in self.tracker.pop_ready(now):
            first_seen = self._first_seen.pop(filename, None) or datetime.now(UTC)
            if self._still_there(filename) and not self._settled(filename):
                if filename in self._results:
                    log.info("%s changed after it was transcribed; transcribing it again", filename)
                self.on_ready(filename, first_seen)

    def rescan(self, now: float) -> None:
        started = time.perf_counter()
        snapshot = self.folder.snapshot()
        for filename, stat in snapshot.audio.items():
            if filename in self.tracker or self.has_job(filename):
                continue
            if filename in snapshot.results and self.result_is_current(filename, stat):
                continue
            self._first_seen.setdefault(filename, datetime.now(UTC))
            self.tracker.observe(filename, Signature(stat.st_size, stat.st_mtime_ns), now)
        for gone in self._results.keys() - snapshot.results:
            del self._results[gone]
        self.last_scan_seconds = time.perf_counter() - started
        self.last_scan_files = len(snapshot.audio)
        self.scans_completed += 1
        log.debug("Rescan: %d audio files in %.3f s", len(snapshot.audio), self.last_scan_seconds)

    def _hint(self, path: str, closed: bool) -> None:
        filename = self.folder.filename_of(Path(path))
        if filename is not None:
            with self._hints_lock:
                self._hints[filename] = closed  # the latest event decides

    def _absorb_hints(self, now: float) -> None:
        with self._hints_lock:
            hints, self._hints = self._hints, {}
        for filename, closed in hints.items():
            if filename in self.tracker and not closed:
                self.tracker.touch(filename, now)
            if not self._settled(filename):
                self._observe(filename, now)
                if closed:
                    self.tracker.mark_closed(filename)

    def _settled(self, filename: str) -> bool:
        return self.has_job(filename) or self.result_is_current(filename)

    def result_is_current(self, filename: str, audio: os.stat_result | None = None) -> bool:
        """A ``.result`` exists and was made from the audio as it is now (any thread may ask).

        A result that does not say what it was made from (older versions,
        hand-made) counts as current, as before; so does one whose audio is gone.
        """
        audio_path = self.folder.audio_path(filename)
        result = sidecars.result_path(audio_path)
        try:
            written = result.stat().st_mtime_ns
        except OSError:
            return False
        cached = self._results.get(filename)
        if cached is None or cached[0] != written:  # read each version of a result once
            cached = (written, transcribed_signature(sidecars.read_json(result)))
            self._results[filename] = cached
        made_from = cached[1]
        if made_from is None:
            return True
        try:
            audio = audio or os.stat(audio_path)
        except OSError:
            return True
        return Signature(audio.st_size, audio.st_mtime_ns) == made_from

    def _restat_tracked(self, now: float) -> None:
        for filename in self.tracker.tracked():
            self._observe(filename, now)

    def _observe(self, filename: str, now: float) -> None:
        try:
            stat = os.stat(self.folder.audio_path(filename))
        except OSError:
            self.tracker.forget(filename)  # deleted or renamed away
            self._first_seen.pop(filename, None)
            return
        self._first_seen.setdefault(filename, datetime.now(UTC))
        self.tracker.observe(filename, Signature(stat.st_size, stat.st_mtime_ns), now)

    def _still_there(self, filename: str) -> bool:
        return self.folder.audio_path(filename).is_file()
