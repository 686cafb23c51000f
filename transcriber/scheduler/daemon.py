"""Wiring: lock, recovery, watcher, queue, dispatcher slots, housekeeping, shutdown.

``Daemon`` is what the CLI runs and what the API (same process) talks to:
``submit``, ``cancel``, ``job`` and ``queue_position`` are its public face.
Nothing here imports torch; inference lives in the worker processes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from transcriber.config import Config
from transcriber.domain.edits import Edits
from transcriber.domain.job import (
    PRIORITY_API,
    Job,
    JobStatus,
    Source,
    await_file,
    file_complete,
    new_job,
    requeue_with_settings,
    retry_due,
)
from transcriber.domain.recovery import Action, recover
from transcriber.domain.retry import RetryPolicy
from transcriber.domain.settings import TranscriptionSettings
from transcriber.domain.task_filter import TaskFilter
from transcriber.engine.asr import WhisperXEngine
from transcriber.engine.base import EngineFactory, EngineOptions
from transcriber.engine.capabilities import host_capabilities
from transcriber.engine.model_files import installed_models, resolve_model
from transcriber.errors import ConfigError, MirrorDisabled, ModelError, UnsupportedSettingError
from transcriber.folder import sidecars
from transcriber.folder.layout import SharedFolder
from transcriber.folder.lock import InstanceLock
from transcriber.folder.sidecars import utc_now
from transcriber.folder.watcher import Watcher
from transcriber.mirror.database import Database
from transcriber.mirror.mirror import Mirror
from transcriber.scheduler.dispatcher import AfterInterrupt, Slot, SlotTiming
from transcriber.scheduler.events import EventKind, Listener
from transcriber.scheduler.queue import JobQueue
from transcriber.scheduler.snapshot import DaemonSnapshot, WatcherState, WorkerState
from transcriber.scheduler.store import JobStore
from transcriber.worker.handle import WorkerHandle
from transcriber.worker.protocol import WorkerLimits

log = logging.getLogger("Daemon")

HOUSEKEEPING_INTERVAL_SECONDS = 0.05
RETRY_CHECK_INTERVAL_SECONDS = 0.5


def default_settings(config: Config) -> TranscriptionSettings:
    w = config.whisperx
    return TranscriptionSettings(
        model_size=w.model_size, language=w.language, temperature=w.temperature,
        compute_type=w.compute_type, device=w.device, word_timestamps=w.word_timestamps, diarize=w.diarize,
        min_speakers=w.min_speakers, max_speakers=w.max_speakers,
    )


def engine_options(config: Config) -> EngineOptions:
    w = config.whisperx
    return EngineOptions(
        models_dir=str(config.models.dir), cache_dir=str(config.models.cache_dir),
        allow_download=config.models.allow_download, batch_size=w.batch_size, beam_size=w.beam_size,
        cpu_threads=w.cpu_threads, hf_token=w.hf_token.get_secret_value(),
        diarization_backend=config.diarization.backend, pyannote_pipeline=config.diarization.pyannote_pipeline,
    )


def worker_limits(config: Config) -> WorkerLimits:
    return WorkerLimits(
        idle_unload_seconds=config.whisperx.model_idle_unload_seconds,
        progress_interval_seconds=config.processing.progress_interval_seconds,
        model_load_timeout_seconds=config.processing.model_load_timeout_seconds,
        nice=config.processing.worker_nice,
        log_level=config.logging.level,
        idle_memory_limit_mb=config.processing.worker_idle_memory_limit_mb,
    )


class Daemon:
    def __init__(self, config: Config, engine_factory: EngineFactory = WhisperXEngine) -> None:
        self.config = config
        self.engine_factory = engine_factory
        self.settings = default_settings(config)
        self.folder = SharedFolder(config.shared_directory, config.watch.extensions, config.watch.recursive)
        self.store = JobStore(self.folder, config.output.json_indent, config.output.write_formats)
        self.queue = JobQueue()
        self.policy = RetryPolicy(config.processing.retry_backoff_seconds, config.processing.retry_backoff_max_seconds)
        self.lock = InstanceLock(self.folder.lock_path)
        self.watcher = Watcher(self.folder, config.watch, self._on_file_ready, self._has_job)
        self.slots: list[Slot] = []
        url = config.database.url.get_secret_value()
        self.mirror = Mirror(url, self.folder) if url else None
        if self.mirror is not None:
            self.store.add_listener(self.mirror.on_event)
        self.stopping = threading.Event()
        self.force_stop = threading.Event()  # a second signal: skip the grace period
        self._housekeeping = threading.Thread(target=self._housekeeping_loop, name="housekeeping", daemon=True)
        self._paused = False
        self._next_retry_check = 0.0

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Raises ConfigError (settings this host cannot run), AlreadyRunningError, ModelError
        or OSError before anything runs."""
        try:
            host_capabilities().check(self.settings)
        except UnsupportedSettingError as exc:
            raise ConfigError(f"config error: whisperx.{exc.setting}: {exc.message}") from exc
        self.folder.prepare()
        self.lock.acquire()
        try:
            self.engine_factory.verify(self.settings, engine_options(self.config))
            if self.config.processing.cleanup_temp_files:
                self.folder.remove_stale_temp_files()
            self._recover()
            if self.mirror is not None:
                self.mirror.start()  # reconciles with the folder as soon as the database answers
            self._start_slots()
            self.watcher.start()
            self.watcher.tick()  # the startup scan, before we report ready
            self._housekeeping.start()
        except BaseException:
            self.lock.release()
            raise
        log.info("Daemon started on %s (pid lock %s)", self.folder.root, self.folder.lock_path.name)

    def stop(self, grace_seconds: float | None = None) -> None:
        """Stop taking jobs; let running ones finish within the grace period,
        then interrupt them (they stay queued on disk). Nothing is lost."""
        if self.stopping.is_set():
            return
        grace = self.config.processing.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        log.info("Shutting down (grace period %g s)", grace)
        self.stopping.set()
        for slot in self.slots:
            slot.stopping.set()
            slot.worker.warm_settings = None  # an interrupted worker is not respawned now
        deadline = time.monotonic() + grace
        for slot in self.slots:
            while slot.running_filename is not None and time.monotonic() < deadline:
                if self.force_stop.wait(0.05):
                    break
            slot.interrupt_current()
            slot.join(10.0)
            slot.worker.stop()
        self.watcher.stop()
        if self._housekeeping.is_alive():
            self._housekeeping.join(5.0)
        if self.mirror is not None:
            self.mirror.stop()
        self.lock.release()
        log.info("Stopped")

    def _start_slots(self) -> None:
        options, limits = engine_options(self.config), worker_limits(self.config)
        timing = SlotTiming(self.config.processing.timeout_seconds, self.config.processing.progress_interval_seconds)
        for number in range(1, self.config.processing.max_concurrent_tasks + 1):
            worker = WorkerHandle(
                self.engine_factory, options, limits, self.config.processing.worker_memory_limit_mb,
                name=f"worker-{number}",
            )
            worker.on_model_load = lambda loaded, name=worker.name: self.store.announce(None, EventKind.ENGINE_LOAD, {
                "worker": name, "model": loaded.model, "seconds": round(loaded.seconds, 3), "ok": loaded.ok})
            if self.config.whisperx.preload_model:
                worker.preload(self.settings)
            else:
                worker.start()
            slot = Slot(f"slot-{number}", worker, self.store, self.queue, self.folder, self.policy, timing,
                        self.config.analysis.min_silence_seconds)
            slot.start()
            self.slots.append(slot)

    # -- what the API uses ---------------------------------------------------

    def submit(
        self, filename: str, settings: TranscriptionSettings | None = None, source: Source = Source.API,
        detected_at: datetime | None = None, complete: bool = True, debug: bool | None = None,
    ) -> Job:
        """Queue ``filename`` (already validated, relative to the folder) unless it is active;
        an API request for a file already queued by the scan moves it up to priority 1.

        ``complete=False``: the file may still be arriving (the watcher has not found
        it complete yet); the job waits out of the queue until the watcher does."""
        with self.store.locked():
            existing = self.store.get(filename)
            if existing is not None:
                if existing.waiting_for_file and source is Source.SCAN:  # the watcher: complete now
                    released = self.store.save(file_complete(existing))
                    if released is not None:
                        self.queue.put(filename, released.priority)
                    return released or existing
                if source is Source.API and existing.priority > PRIORITY_API:
                    promoted = self.store.save(replace(existing, priority=PRIORITY_API, source=Source.API))
                    self.queue.reprioritise(filename, PRIORITY_API)
                    return promoted or existing
                return existing
            job = new_job(
                filename, settings or self.settings, source, self.config.processing.max_retry_attempts, utc_now(),
                detected_at, self.config.api.debug if debug is None else debug,
            )
            if not complete:
                job = await_file(job)
            self.store.add(job, durable=source is not Source.SCAN)
            if complete:
                self.queue.put(filename, job.priority)
            else:
                self.watcher.look_at(filename)
            return job

    def change_settings(self, filename: str, settings: TranscriptionSettings) -> bool:
        """Give an active job new settings; True when a running attempt was
        interrupted for it (it goes back to the queue with the new settings)."""

        def requeue(job: Job) -> None:
            updated = requeue_with_settings(job, settings, PRIORITY_API, Source.API)
            if self.store.save(updated) is not None and not updated.waiting_for_file:
                self.queue.put(filename, PRIORITY_API)

        for slot in self.slots:
            if slot.interrupt(filename, requeue):
                return True
        job = self.store.get(filename)
        if job is not None:
            self.queue.remove(filename)
            requeue(job)
        return False

    def cancel(self, filename: str, after: AfterInterrupt | None = None) -> bool:
        """Remove ``filename`` from the queue, or interrupt it when running.

        ``after`` receives the interrupted job (default: forget it and its
        sidecar).  True when there was something to cancel.
        """
        job = self.store.get(filename)
        if job is None:
            return False
        self.queue.remove(filename)
        finish = after or (lambda interrupted: self.store.drop(interrupted, "cancelled"))
        for slot in self.slots:
            if slot.interrupt(filename, finish):
                return True
        with self.store.locked():
            # A slot may have taken it from the queue and put it back meanwhile (it
            # found the folder paused); slots do that under this lock, so after this
            # block no stale entry can come back.
            self.queue.remove(filename)
            current = self.store.get(filename)
            if current is not None and current.status is not JobStatus.PROCESSING:
                finish(current)
        return True

    def job(self, filename: str) -> Job | None:
        return self.store.get(filename)

    def queue_position(self, filename: str) -> int | None:
        return self.queue.position(filename)

    def workers(self) -> list[WorkerState]:
        return [
            WorkerState(s.worker.name, s.worker.pid, s.worker.is_alive(), s.worker.memory_bytes(),
                        s.worker.restarts, s.running_filename, tuple(sorted(s.worker.models_loaded)),
                        s.worker.crash_looping, s.worker.last_death, tuple(s.worker.model_load_seconds),
                        s.worker.last_load_ok)
            for s in self.slots
        ]

    def join(self, filename: str, settings: TranscriptionSettings) -> Job | None:
        """Ask again, through the API, for the active job of ``filename`` with the
        same settings (it is promoted to the API's priority); None if it has ended."""
        with self.store.locked():  # join the job only while it still exists
            if self.store.get(filename) is None:
                return None
            return self.submit(filename, settings, Source.API)

    def result_is_current(self, filename: str) -> bool:
        """The ``.result`` beside ``filename`` was made from the audio as it is now."""
        return self.watcher.result_is_current(filename)

    @property
    def write_formats(self) -> tuple[str, ...]:
        """The renderings written beside every ``.result`` (``output.write_formats``)."""
        return tuple(self.store.write_formats)

    def save_edits(self, filename: str, edits: Edits, based_on: int, task_id: str) -> Edits:
        """Replace the corrections of ``filename``'s transcript ``task_id`` (made on version
        ``based_on``); raises EditConflict when stale, OSError when the folder refuses."""
        return self.store.save_edits(filename, edits, based_on, task_id)

    def announce_deleted(self, task_id: str, filename: str, deleted_files: list[str]) -> None:
        """A finished file (no job left) was deleted through the API: the listeners (the mirror) hear of it."""
        self.store.announce(None, EventKind.FILE_DELETED,
                            {"task_id": task_id, "filename": filename, "deleted_files": deleted_files})

    def health_snapshot(self) -> DaemonSnapshot:
        """Everything /health and /metrics show, read once."""
        watcher = self.watcher
        return DaemonSnapshot(
            workers=tuple(self.workers()),
            watcher=WatcherState(watcher.is_alive(), watcher.observer_kind, watcher.last_scan_seconds,
                                 watcher.last_scan_files),
            queue_depth_by_priority=self.queue.depth_by_priority(),
            refused_writes=self.store.refused_writes(),
            paused=self.paused,
            mirror=self.mirror.health() if self.mirror is not None else None,
        )

    def add_listener(self, listener: Listener) -> None:
        """Be told of every job change and engine activity (``scheduler.events``)."""
        self.store.add_listener(listener)

    def check_settings(self, settings: TranscriptionSettings) -> None:
        """Raise UnsupportedSettingError (naming the setting and what is supported)
        when this host cannot run ``settings``: its device, compute type or model."""
        models = self.config.models
        try:
            resolve_model(settings.model_size, models.dir, models.allow_download, verify=False)
        except ModelError as exc:
            raise UnsupportedSettingError("model_size", exc.message, tuple(installed_models(models.dir))) from exc
        host_capabilities().check(settings)

    def list_tasks(self, where: TaskFilter, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        """The mirror's tasks; DatabaseUnavailable when it is off or cannot be reached."""
        return self._database().list_tasks(where, limit, offset)

    def search(self, query: str, limit: int, offset: int, speaker: str | None = None) -> list[dict[str, Any]]:
        """Full-text search of the mirrored transcripts; DatabaseUnavailable as for ``list_tasks``."""
        return self._database().search(query, limit, offset, speaker)

    def _database(self) -> Database:
        if self.mirror is None:
            raise MirrorDisabled("the PostgreSQL mirror is off (set database.url / DATABASE_URL to turn it on)")
        return self.mirror.db

    @property
    def paused(self) -> bool:
        return self._paused

    # -- internals -----------------------------------------------------------

    def _recover(self) -> None:
        snapshot = self.folder.snapshot()
        now = utc_now()
        for filename in sorted(snapshot.in_progress):
            job = sidecars.read_in_progress(self.folder.audio_path(filename))
            if job is None:
                continue  # unreadable: treated as absent, the scan finds the audio again
            finished = filename in snapshot.results and self._is_own_result(job)
            outcome = recover(job, filename in snapshot.audio, finished, now, self.policy)
            self._apply_recovery(outcome.action, outcome.job)

    def _is_own_result(self, job: Job) -> bool:
        """The ``.result`` beside the sidecar is this very task's: the run stopped between
        writing it and removing the ``.in_progress``.  A result of another task is the
        transcript that a forced re-run (a new task) is to replace; discarding that job
        lost the re-run a client had been told was queued (tests/integration/test_restart.py)."""
        result = sidecars.read_json(sidecars.result_path(self.folder.audio_path(job.filename)))
        return result is not None and result.get("task_id") == job.task_id

    def _apply_recovery(self, action: Action, job: Job) -> None:
        log.info("Recovered %s: %s (was %s)", job.filename, action.value, job.status.value)
        if action is Action.DISCARD:
            sidecars.remove_in_progress(self.folder.audio_path(job.filename))
        elif action is Action.QUARANTINE:
            self.store.add(job)
            self.store.quarantine(job)
        else:
            self.store.add(job)
            if action is Action.ENQUEUE:
                self.queue.put(job.filename, job.priority)

    def _on_file_ready(self, filename: str, detected_at: datetime) -> None:
        if not self.stopping.is_set():
            self.submit(filename, source=Source.SCAN, detected_at=detected_at)

    def _has_job(self, filename: str) -> bool:
        """Whether the watcher can leave the file alone (whether a .result is current, it
        decides itself); a job waiting for its file needs the watcher to say it is complete."""
        job = self.store.get(filename)
        return job is not None and not job.waiting_for_file

    def _housekeeping_loop(self) -> None:
        while not self.stopping.wait(HOUSEKEEPING_INTERVAL_SECONDS):
            try:
                self._note_pause()
                self.watcher.tick()
                self._promote_due_retries()
            except OSError as exc:  # e.g. the share went away for a moment; try again next tick
                log.error("Housekeeping failed: %s", exc)

    def _note_pause(self) -> None:
        paused = self.folder.is_paused()
        if paused != self._paused:
            self._paused = paused
            log.info("Paused: %s exists, no new job starts" if paused else "Resumed: %s removed",
                     self.folder.pause_path.name)

    def _promote_due_retries(self) -> None:
        now_monotonic = time.monotonic()
        if now_monotonic < self._next_retry_check:
            return
        self._next_retry_check = now_monotonic + RETRY_CHECK_INTERVAL_SECONDS
        now = utc_now()
        for job in self.store.active():
            try:
                self._promote(job, now)
            except OSError as exc:  # the folder refuses writes: /health says so; the next check tries again
                log.debug("Cannot update %s yet: %s", job.filename, exc)

    def _promote(self, job: Job, now: datetime) -> None:
        if job.status is JobStatus.ERROR:  # its move to manual_review/ was refused (disk trouble): again
            self.store.quarantine(job)
            return
        if job.waiting_for_file and not self.folder.audio_path(job.filename).exists():
            self.store.drop(job, "the audio file disappeared before it was complete")
            return
        if job.waiting_for_file and self.watcher.result_is_current(job.filename):
            # Copied in with its transcript (rsync -a of audio and .result): the watcher
            # leaves a file with a current result alone, so nothing would release the job.
            self.store.drop(job, "a transcript of this very audio appeared beside it")
            return
        due = job.status is JobStatus.RETRY_WAIT and job.next_attempt_at is not None and job.next_attempt_at <= now
        if due and self.store.save(retry_due(job)) is not None:
            self.queue.put(job.filename, job.priority)
