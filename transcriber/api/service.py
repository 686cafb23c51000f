"""What the HTTP API asks of the daemon, in terms of files: request, status,
result, delete, health.  No HTTP here: errors are :class:`ApiError` values
that ``app.py`` turns into responses of the shape docs/API.md describes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil

from transcriber.domain.edits import Edits
from transcriber.domain.job import Job, JobStatus, Source
from transcriber.domain.settings import TranscriptionSettings
from transcriber.errors import EditConflict, ErrorCode, InvalidFilename, SidecarUnreadable, TranscriberError
from transcriber.folder import sidecars
from transcriber.folder.filenames import locate, validate
from transcriber.folder.layout import companion_suffixes
from transcriber.scheduler.daemon import Daemon
from transcriber.scheduler.snapshot import WorkerState


class ApiError(TranscriberError):
    """An answer other than success: its HTTP status, code, message, and extra fields of the body."""

    def __init__(self, http_status: int, code: ErrorCode, message: str, filename: str | None = None,
                 status: str = "error", **extra: Any) -> None:
        super().__init__(message)
        self.http_status, self.code = http_status, code
        self.filename, self.status, self.extra = filename, status, extra


def file_not_found(name: str, **extra: Any) -> ApiError:
    """The one ``404 file_not_found`` (``status`` "not_found" unless given)."""
    return ApiError(404, ErrorCode.FILE_NOT_FOUND, "no such file in the shared folder", name,
                    **{"status": "not_found", **extra})


class FileStatus(StrEnum):
    """A file's status as the API answers it (``status`` in ``/status``, ``/transcribe``)."""

    PENDING = "pending"  # in the folder, not picked up yet (still being written, or the scan is due)
    QUEUED = "queued"  # a job waits for a worker, or for its next attempt
    PROCESSING = "processing"
    COMPLETED = "completed"
    ERROR = "error"  # in manual_review/
    NOT_FOUND = "not_found"


def file_status(status: JobStatus) -> FileStatus:
    """The one mapping from a job's state to the file's: a job waiting to retry is queued."""
    return FileStatus.QUEUED if status is JobStatus.RETRY_WAIT else FileStatus(status.value)


@dataclass(frozen=True)
class FileState:
    """Where a requested file stands, from memory and the folder."""

    name: str  # as requested (NFC)
    status: FileStatus
    audio: Path | None = None  # on disk, main folder
    job: Job | None = None
    review_job: Job | None = None  # the failed job's sidecar in manual_review/, read like an active one
    review_audio: Path | None = None


@dataclass
class RequestOutcome:
    kind: str  # "completed", "queued", "joined", "restarted"
    job: Job | None = None
    result: dict[str, Any] | None = None


@dataclass
class DeleteOutcome:
    deleted_files: list[str] = field(default_factory=list)
    processing_interrupted: bool = False
    removed_from_queue: bool = False


class TranscriptionService:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.folder = daemon.folder
        self._writable_checked_at = 0.0
        self._writable = True
        self._probe_error: str | None = None

    # -- lookups -------------------------------------------------------------

    def validate(self, name: object) -> str:
        try:
            return validate(name, self.folder)
        except InvalidFilename as exc:
            raise ApiError(400, ErrorCode.INVALID_FILENAME, str(exc), printable(name)) from exc

    def state(self, name: str) -> FileState:
        try:
            audio = locate(name, self.folder.root, self.folder.root)
            review_audio = None if audio else locate(name, self.folder.manual_review, self.folder.root)
        except InvalidFilename as exc:
            raise ApiError(400, ErrorCode.INVALID_FILENAME, str(exc), name) from exc
        if audio is not None:
            key = self._key(audio)
            job = self.daemon.job(key)
            if job is not None:
                return FileState(name, file_status(job.status), audio, job)
            # A .result made from another version of the audio (replaced, or being copied
            # over again) is not this file's transcript: the watcher transcribes it again.
            if self.daemon.result_is_current(key):
                return FileState(name, FileStatus.COMPLETED, audio)
            return FileState(name, FileStatus.PENDING, audio)
        if review_audio is not None:
            return FileState(name, FileStatus.ERROR, review_job=sidecars.read_in_progress(review_audio),
                             review_audio=review_audio)
        if sidecars.result_path(self.folder.root / name).exists():  # audio deleted, transcript kept
            return FileState(name, FileStatus.COMPLETED)
        return FileState(name, FileStatus.NOT_FOUND)

    def result(self, state: FileState) -> dict[str, Any] | None:
        base = state.audio or (self.folder.root / state.name)
        return sidecars.read_json(sidecars.result_path(base))

    def edits(self, state: FileState) -> Edits:
        try:
            return sidecars.read_edits(state.audio or (self.folder.root / state.name))
        except SidecarUnreadable as exc:
            raise ApiError(503, exc.code, exc.message, state.name) from exc

    def save_edits(self, state: FileState, edits: Edits, based_on: int, task_id: str) -> Edits:
        key = self._key(state.audio) if state.audio is not None else state.name
        try:
            return self.daemon.save_edits(key, edits, based_on, task_id)
        except EditConflict as exc:
            raise ApiError(409, ErrorCode.EDIT_CONFLICT, exc.message, state.name,
                           current_version=exc.current_version) from exc
        except SidecarUnreadable as exc:
            raise ApiError(503, exc.code, exc.message, state.name) from exc
        except OSError as exc:
            raise ApiError(503, ErrorCode.OUTPUT_WRITE_FAILED,
                           f"the shared folder refused the corrections: {exc.strerror or exc}", state.name) from exc

    def queue_position(self, state: FileState) -> int | None:
        return self.daemon.queue_position(self._key(state.audio)) if state.audio else None

    # -- changes -------------------------------------------------------------

    def request(self, state: FileState, settings: TranscriptionSettings, force: bool,
                debug: bool = False, arrived: bool = False) -> RequestOutcome:
        """``arrived``: the API wrote the file itself (POST /upload), so it is complete."""
        try:
            return self._request(state, settings, force, debug, arrived)
        except OSError as exc:  # a full or read-only folder: the client may try again later, not a 500
            raise ApiError(503, ErrorCode.OUTPUT_WRITE_FAILED,
                           f"the shared folder refused the write: {exc.strerror or exc}", state.name) from exc

    def _request(self, state: FileState, settings: TranscriptionSettings, force: bool, debug: bool,
                 arrived: bool = False) -> RequestOutcome:
        # A file the watcher has not released (no job, no result) may still be
        # arriving; one taken back from review, or transcribed before, is complete.
        complete = arrived or state.status is not FileStatus.PENDING
        if state.status is FileStatus.ERROR:
            if not force:
                raise ApiError(409, ErrorCode.IN_MANUAL_REVIEW, "the file is in manual_review/", state.name)
            state = self._restore_from_review(state)
        assert state.audio is not None
        key = self._key(state.audio)
        if state.status is FileStatus.COMPLETED and not force:
            return RequestOutcome("completed", result=self.result(state))
        if state.job is not None and state.job.is_active:
            if state.job.settings == settings:
                if (joined := self.daemon.join(key, settings)) is not None:
                    return RequestOutcome("joined", joined)
            elif self.daemon.change_settings(key, settings):
                return RequestOutcome("restarted", self.daemon.job(key))
            elif (job := self.daemon.job(key)) is not None:
                return RequestOutcome("queued", job)
            # The job ended (completed, failed, deleted) after ``state`` was read: joining it
            # queued the file a second time, and "queued" promised settings nothing would use
            # (seen while writing tests/reliability/; tests/integration/test_api.py holds the
            # gap open).  Answer from where the file is now.
            now = self.state(state.name)
            if now.status is FileStatus.NOT_FOUND:
                raise file_not_found(state.name)
            return self._request(now, settings, force, debug, arrived)
        return RequestOutcome("queued", self.daemon.submit(key, settings, Source.API, complete=complete, debug=debug))

    def delete(self, state: FileState) -> DeleteOutcome:
        """Cancel the job (interrupting a running one), then remove the audio and its own
        files: sidecars and renderings, in the shared folder and in ``manual_review/``."""
        outcome = DeleteOutcome()
        files = self._files_of(state)
        present = [path for path in files if os.path.lexists(path)]
        if state.audio is not None:
            key = self._key(state.audio)
            job = self.daemon.job(key)
            if job is not None:
                outcome.processing_interrupted = job.status is JobStatus.PROCESSING
                outcome.removed_from_queue = not outcome.processing_interrupted
                self.daemon.cancel(key)
        # Listed again after the cancel: a run that completed meanwhile wrote its
        # .result and renderings, which must go too (and be reported).
        present += [path for path in files if path not in present and os.path.lexists(path)]
        finished_tasks = self._finished_task_ids(state)
        for path in present:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        outcome.deleted_files = [path.relative_to(self.folder.root).as_posix() for path in present]
        for task_id in finished_tasks:  # no job to drop: tell the listeners (the mirror) directly
            self.daemon.announce_deleted(task_id, state.name, outcome.deleted_files)
        return outcome

    def _finished_task_ids(self, state: FileState) -> list[str]:
        """The tasks of the finished sidecars about to be deleted (read after the cancel):
        the ``.result`` (in the folder, or in review after a forced re-run failed) and
        the review sidecar.  A cancelled job is dropped instead, and tells the listeners so."""
        tasks: list[str] = []
        for audio in (state.audio or self.folder.root / state.name, state.review_audio):
            if audio is None:
                continue
            documents = [sidecars.read_json(sidecars.result_path(audio))]
            if audio == state.review_audio:
                documents.append(sidecars.read_json(sidecars.in_progress_path(audio)))
            for document in documents:
                task_id = (document or {}).get("task_id")
                if task_id is not None and task_id not in tasks:
                    tasks.append(str(task_id))
        return tasks

    def _files_of(self, state: FileState) -> list[Path]:
        """The audio first (the scan must not see it without its result), then its own files."""
        paths: list[Path] = []
        suffixes = ("", *companion_suffixes(self.daemon.write_formats))
        for audio in (state.audio or self.folder.root / state.name, state.review_audio):
            if audio is not None:
                paths += [audio.with_name(audio.name + suffix) for suffix in suffixes]
        return paths

    def _restore_from_review(self, state: FileState) -> FileState:
        """``force`` for a file in review: the audio goes back to the folder, with the
        ``.result`` and renderings of an earlier run that a failed forced re-run took
        to review, so the earlier transcript stays until the new run replaces it.
        The failed run's sidecar stays in review as history, under a name the scan ignores."""
        assert state.review_audio is not None
        target = self.folder.root / state.name
        if os.path.lexists(target):
            raise ApiError(409, ErrorCode.NAME_IN_USE, "a file of that name is already in the shared folder",
                           state.name)
        stamp = f"{sidecars.utc_now():%Y%m%dT%H%M%SZ}"
        # Before the audio: the scan never sees it back without its result.
        for suffix in companion_suffixes(self.daemon.write_formats):
            if suffix == sidecars.IN_PROGRESS_SUFFIX:
                continue
            kept = state.review_audio.with_name(state.review_audio.name + suffix)
            if not os.path.lexists(kept):
                continue
            back = target.with_name(target.name + suffix)
            # One of that name in the folder already (left there by hand): it stays, and
            # ours stays in review as history, as the sidecar does.
            os.replace(kept, back if not os.path.lexists(back) else kept.with_name(f"{kept.name}.{stamp}"))
        shutil.move(state.review_audio, target)
        review_sidecar = sidecars.in_progress_path(state.review_audio)
        if review_sidecar.exists():  # the history stays in review, under a name the scan ignores
            os.replace(review_sidecar, review_sidecar.with_name(f"{review_sidecar.name}.{stamp}"))
        return FileState(state.name, FileStatus.PENDING, target)

    def _key(self, audio: Path) -> str:
        return audio.relative_to(self.folder.root).as_posix()

    # -- health --------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        snapshot = self.daemon.health_snapshot()
        workers = snapshot.workers
        # The probe alone misses a nearly full disk that takes its two bytes but not
        # a transcript, so sidecar writes the folder refused count too.
        refused = snapshot.refused_writes
        writable = self._folder_writable() and not refused
        watcher_alive = snapshot.watcher.alive
        daemon_mb = psutil.Process().memory_info().rss / 2**20
        workers_mb = sum(w.memory_bytes for w in workers) / 2**20
        # A worker that dies on its own every time it starts cannot transcribe
        # anything; saying "healthy" then hid the image's broken workers (issue 13).
        workers_up = not workers or not all(w.crash_looping for w in workers)
        healthy = writable and watcher_alive and workers_up
        body = {
            "status": "healthy" if healthy else "unhealthy",
            "whisperx_available": engine_available(workers, lambda: importlib.util.find_spec("whisperx") is not None),
            "models_loaded": sorted({m for w in workers for m in w.models_loaded}),
            # The specification's number (the whole tree), then its parts.
            "memory_usage_mb": round(daemon_mb + workers_mb, 1),
            "memory_breakdown_mb": {"daemon": round(daemon_mb, 1), "workers": round(workers_mb, 1)},
            "queue_depth": snapshot.queue_depth,
            "worker": [
                {"name": w.name, "state": _worker_state(w), "pid": w.pid, "restarts": w.restarts,
                 "current_file": w.running, "last_death": w.last_death}
                for w in workers
            ],
            "watcher": {"state": "running" if watcher_alive else "dead", "observer": snapshot.watcher.observer,
                        "last_scan_seconds": round(snapshot.watcher.last_scan_seconds, 4),
                        "files_seen": snapshot.watcher.files_seen},
            "shared_folder_writable": writable,
            "shared_folder_error": self._probe_error or next((f"{name}: {why}" for name, why in refused.items()), None),
            "database": snapshot.mirror["state"] if snapshot.mirror else "disabled",
            "database_sync": snapshot.mirror,
            "paused": snapshot.paused,
        }
        return healthy, body


    def _folder_writable(self) -> bool:
        """A real write (a read-only remount or a full disk fools os.access),
        at most once a second however often /health is polled."""
        now = time.monotonic()
        if now - self._writable_checked_at >= 1.0:
            probe = self.folder.root / f".health-{os.getpid()}"
            try:
                probe.write_bytes(b"ok")
                probe.unlink()
                self._writable, self._probe_error = True, None
            except OSError as exc:
                self._writable, self._probe_error = False, exc.strerror or str(exc)
            self._writable_checked_at = now
        return self._writable


def engine_available(workers: Sequence[WorkerState], installed: Callable[[], bool]) -> bool:
    """Whether WhisperX works here, as far as the workers have shown: a model
    loaded through it (true) or the last load failed (false); before any load,
    whether it is installed at all."""
    outcomes = [worker.last_load_ok for worker in workers if worker.last_load_ok is not None]
    return any(outcomes) if outcomes else installed()


def _worker_state(worker: WorkerState) -> str:
    if worker.crash_looping:
        return "crash_loop"
    if not worker.alive:
        return "stopped"
    return "busy" if worker.running else "idle"


def printable(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in name)[:300]
