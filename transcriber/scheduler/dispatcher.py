"""Running queued jobs on worker processes: where transitions meet I/O.

One :class:`Slot` per ``processing.max_concurrent_tasks``: a thread that owns
one worker process, takes the next filename from the queue (unless the
folder is paused), persists the attempt number, runs the worker with the
job's deadline, and records success, retry or quarantine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from transcriber.domain.analysis import DEFAULT_MIN_SILENCE_SECONDS
from transcriber.domain.job import (
    Job,
    JobStatus,
    Stage,
    fail_attempt,
    hold_unsaved,
    interrupt_attempt,
    report_progress,
    start_attempt,
    succeed_attempt,
)
from transcriber.domain.retry import RetryPolicy
from transcriber.errors import Interrupted, JobError, OutputWriteError
from transcriber.folder.layout import SharedFolder
from transcriber.folder.results import build_result
from transcriber.folder.sidecars import utc_now
from transcriber.folder.stability import Signature
from transcriber.scheduler.events import EventKind
from transcriber.scheduler.queue import JobQueue
from transcriber.scheduler.store import JobStore
from transcriber.worker.handle import WorkerHandle, WorkerOutcome

log = logging.getLogger("Dispatcher")

# Called with the interrupted job; None means "back to the queue".
AfterInterrupt = Callable[[Job], None]


@dataclass(frozen=True)
class SlotTiming:
    timeout_seconds: float
    progress_interval_seconds: float
    idle_poll_seconds: float = 0.2


class _Running:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.cancel = threading.Event()
        self.after_interrupt: AfterInterrupt | None = None
        self.finished = threading.Event()


class Slot(threading.Thread):
    def __init__(
        self, name: str, worker: WorkerHandle, store: JobStore, queue: JobQueue, folder: SharedFolder,
        policy: RetryPolicy, timing: SlotTiming, min_silence_seconds: float = DEFAULT_MIN_SILENCE_SECONDS,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.min_silence_seconds = min_silence_seconds  # analysis.min_silence_seconds, for the results
        self.worker = worker
        self.store = store
        self.queue = queue
        self.folder = folder
        self.policy = policy
        self.timing = timing
        self.stopping = threading.Event()
        self._running: _Running | None = None
        self._running_lock = threading.Lock()

    @property
    def running_filename(self) -> str | None:
        running = self._running
        return running.filename if running is not None else None

    def run(self) -> None:
        while not self.stopping.is_set():
            if self.folder.is_paused():
                self.worker.drain()
                self.stopping.wait(self.timing.idle_poll_seconds)
                continue
            filename = self.queue.take(timeout=self.timing.idle_poll_seconds)
            if filename is None:
                self.worker.drain()
                continue
            with self.store.locked():  # against a cancel dropping it right now
                job = self.store.get(filename)
                if job is None or job.status is not JobStatus.QUEUED:
                    continue  # cancelled or deleted while it waited
                if self.folder.is_paused():  # paused while we were waiting in take()
                    self.queue.put_back(filename, job.priority)
                    continue
                # Claimed under the same lock as the check: a settings change or a cancel
                # from now on finds it running and interrupts it, instead of requeueing a
                # job that this slot then starts with the old settings.
                running = self._claim(filename)
            self._process(job, running)

    def interrupt(self, filename: str, after: AfterInterrupt | None = None, wait: float = 10.0) -> bool:
        """Stop the running job if it is ``filename``; True once it has stopped."""
        with self._running_lock:
            running = self._running
            if running is None or running.filename != filename:
                return False
            running.after_interrupt = after
            running.cancel.set()
        return running.finished.wait(wait)

    def interrupt_current(self) -> None:
        """Shutdown: stop whatever runs; the job stays queued on disk for the next start."""
        running = self._running
        if running is not None:
            self.interrupt(running.filename)

    def _claim(self, filename: str) -> _Running:
        """Visible to interrupt() before the attempt is recorded, so a cancel
        arriving now is seen in _attempt and not lost."""
        running = _Running(filename)
        with self._running_lock:
            self._running = running
        return running

    def _process(self, job: Job, running: _Running) -> None:
        try:
            audio = self.folder.audio_path(job.filename)
            if not audio.is_file():
                self.store.drop(job, "the audio file disappeared before processing")
                return
            self._attempt(job, audio, running)
        finally:
            with self._running_lock:
                self._running = None
            running.finished.set()

    def _attempt(self, job: Job, audio: Path, running: _Running) -> None:
        now = utc_now()
        started = self._save(start_attempt(job, now), unsaved=job)
        if started is None:
            return  # dropped meanwhile, or the folder refused the write
        progress = _ProgressWriter(self, started)
        clock = time.monotonic()
        try:
            if running.cancel.is_set():
                raise Interrupted("cancelled before it started")
            # Taken before the worker reads the file: a change from here on makes
            # the result stale, and the watcher transcribes the file again.
            given = audio.stat()
            outcome = self.worker.run(
                started.task_id, audio, started.settings, self.timing.timeout_seconds, running.cancel, progress,
            )
        except Interrupted:
            self._engine_run(progress.job, clock, "interrupted")
            self._interrupted(progress.job, running.after_interrupt)
        except (JobError, OSError) as error:
            self._engine_run(progress.job, clock, "failed",
                             error.code if isinstance(error, JobError) else OutputWriteError.code)
            if not audio.exists():
                self.store.drop(progress.job, "the audio file was deleted while it was processed")
            elif isinstance(error, JobError):
                self._failed(progress.job, error)
            else:
                self._failed(progress.job, OutputWriteError(f"could not update the sidecar: {error}"))
        else:
            self._engine_run(progress.job, clock, "succeeded")
            self._succeeded(progress.job, outcome, now, Signature(given.st_size, given.st_mtime_ns))

    def _engine_run(self, job: Job, started: float, outcome: str, error_code: str | None = None) -> None:
        """The audit trail of calls to the engine (the mirror's task_events)."""
        details = {"worker": self.worker.name, "seconds": round(time.monotonic() - started, 3), "outcome": outcome,
                   "attempt": job.current_attempt, "model": job.settings.model_size}
        if error_code:
            details["error_code"] = error_code
        self.store.announce(job, EventKind.ENGINE_RUN, details)

    def _succeeded(self, job: Job, outcome: WorkerOutcome, started: datetime, audio: Signature) -> None:
        finished = utc_now()
        done = succeed_attempt(job, finished)
        result = build_result(done, outcome.transcript, outcome.duration_seconds, started, finished, audio,
                              self.min_silence_seconds)
        try:
            self.store.complete(done, result)
        except OSError as exc:
            self._failed(job, OutputWriteError(f"could not write the result: {exc}"))

    def _failed(self, job: Job, error: JobError) -> None:
        now = utc_now()
        failed = fail_attempt(job, error, now, self.policy.retry_at(job, error, now))
        log.warning("%s: attempt %d failed: %s: %s", job.filename, job.current_attempt, error.code, error.message)
        if failed.status is JobStatus.ERROR:
            try:
                self.store.quarantine(failed)
            except OSError as exc:
                log.error("Could not move %s to manual_review: %s", job.filename, exc)
                self.store.remember(failed)
            return
        self._save(failed)

    def _interrupted(self, job: Job, after: AfterInterrupt | None) -> None:
        interrupted = interrupt_attempt(job, utc_now())
        log.info("%s: interrupted", job.filename)
        if after is not None:
            after(interrupted)
            return
        if self._save(interrupted) is not None and not self.stopping.is_set():
            self.queue.put(interrupted.filename, interrupted.priority)

    def _save(self, job: Job, unsaved: Job | None = None) -> Job | None:
        """Persist, or when the folder refuses the write, hold the job in memory
        to be retried later (its sidecar on disk still says what it said).

        ``unsaved`` is what to hold instead of ``job`` then: an attempt that
        could not be recorded never started, and must not linger in the
        history as "running" (tests/reliability/test_disk_trouble.py)."""
        try:
            return self.store.save(job)
        except OSError as exc:
            log.error("Cannot write the sidecar of %s (%s); will retry", job.filename, exc)
            now = utc_now()
            held = unsaved or job
            self.store.remember(hold_unsaved(held, now + self.policy.delay(1)))
            return None


class _ProgressWriter:
    """Receives the worker's progress: kept in memory at once (GET /status),
    written to the sidecar on a new stage and at most every ``progress_interval_seconds``."""

    def __init__(self, slot: Slot, job: Job) -> None:
        self.slot = slot
        self.job = job
        self._last_write = time.monotonic()  # the attempt's start was just written

    def __call__(self, stage: Stage, percentage: float) -> None:
        new_stage = stage is not self.job.progress.stage
        self.job = report_progress(self.job, stage, percentage)
        now = time.monotonic()
        # A new stage shows in the sidecar at once (people watch the folder);
        # percentages at most every interval.  Never fsynced: it is only progress.
        persist = new_stage or now - self._last_write >= self.slot.timing.progress_interval_seconds
        if persist:
            self._last_write = now
        try:
            self.slot.store.update_progress(self.job, persist)
        except OSError as exc:
            log.warning("Cannot write progress of %s: %s", self.job.filename, exc)
