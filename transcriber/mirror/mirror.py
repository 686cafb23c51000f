"""Mirroring the folder's state into PostgreSQL, through outages (docs/CONFIGURATION.md, database).

The job store's events become rows (pure functions below) that wait in a
buffer, coalesced by task, until a background thread writes them.  When the
database is down nothing else notices: transcription, the folder and the API
carry on, and the buffer keeps the latest state of each task.  At start and
after every reconnect the mirror reconciles with the sidecars, so files
completed, failed or deleted while it was away converge too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transcriber.domain import edits as corrections
from transcriber.domain.job import DELETED, Job, JobStatus, recorded_settings
from transcriber.errors import DatabaseUnavailable, SidecarUnreadable
from transcriber.folder import sidecars
from transcriber.folder.layout import SharedFolder
from transcriber.mirror.database import Database, EventRow, TaskRow, TranscriptionRow
from transcriber.scheduler.events import EventKind, JobEvent

log = logging.getLogger("Mirror")

MAX_BUFFERED_EVENTS = 100_000
FLUSH_INTERVAL_SECONDS = 0.2
RETRY_SECONDS = (1, 2, 5, 10)


class Mirror:
    def __init__(self, url: str, folder: SharedFolder) -> None:
        self.db = Database(url, on_unreachable=self._unreachable)
        self.folder = folder
        self.state = "down"  # "ok" once migrated and reconciled
        self.sync_failures = 0
        self.last_error: str | None = None
        self._tasks: dict[str, TaskRow] = {}
        self._transcriptions: dict[str, TranscriptionRow] = {}
        self._events: deque[EventRow] = deque(maxlen=MAX_BUFFERED_EVENTS)
        self._oldest_pending: float | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mirror", daemon=True)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self.db.open()
        self._thread.start()

    def stop(self, flush_seconds: float = 5.0) -> None:
        """Stop the thread after one last flush attempt (bounded)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(flush_seconds + 5)
        self.db.close()

    def health(self) -> dict[str, Any]:
        with self._lock:
            pending = len(self._tasks) + len(self._events)
            oldest = self._oldest_pending
        lag = 0.0 if oldest is None else round(time.monotonic() - oldest, 3)
        return {"state": self.state, "pending_changes": pending, "sync_lag_seconds": lag,
                "sync_failures": self.sync_failures, "last_error": self.last_error}

    # -- feeding -------------------------------------------------------------

    def on_event(self, event: JobEvent) -> None:
        """A store listener: runs in the thread that changed the job; never blocks on the database."""
        tasks, transcriptions, events = rows_for_event(event, time.time_ns())
        self._buffer(tasks, transcriptions, events)

    def _buffer(self, tasks: list[TaskRow], transcriptions: list[TranscriptionRow], events: list[EventRow]) -> None:
        with self._lock:
            for row in tasks:
                current = self._tasks.get(row.task_id)
                if current is None or current.version < row.version:
                    self._tasks[row.task_id] = row
            for transcription in transcriptions:
                self._transcriptions[transcription.task_id] = transcription
            if len(self._events) + len(events) > MAX_BUFFERED_EVENTS:
                log.warning("Event buffer full during the outage; dropping the oldest events")
            self._events.extend(events)
            if self._oldest_pending is None and (tasks or transcriptions or events):
                self._oldest_pending = time.monotonic()
        self._wake.set()

    # -- the writer thread ---------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while True:
            if self.state != "ok":
                try:
                    self.db.migrate()
                    self.reconcile()
                    self.state, self.last_error, failures = "ok", None, 0
                    log.info("Database mirror is up to date")
                except DatabaseUnavailable as exc:
                    failures = self._note_failure(exc, failures)
                    if self._stopping.wait(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1]):
                        return
                    continue
            stopping = self._stopping.is_set()
            try:
                self.flush()
            except DatabaseUnavailable as exc:
                failures = self._note_failure(exc, failures)
                self.state = "down"
                continue
            if stopping:
                return
            self._wake.wait(FLUSH_INTERVAL_SECONDS)
            self._wake.clear()

    def _unreachable(self) -> None:
        """A connection attempt failed: down now, before the waiting write gives up."""
        self.sync_failures += 1
        if self.state == "ok":
            self.state, self.last_error = "down", "a connection attempt failed"

    def _note_failure(self, exc: DatabaseUnavailable, failures: int) -> int:
        self.sync_failures += 1
        if self.state == "ok" or failures == 0:
            log.warning("Database unavailable, changes are kept until it returns: %s", exc)
        self.state = "down"
        self.last_error = str(exc)
        return failures + 1

    def flush(self) -> None:
        with self._lock:
            tasks, self._tasks = self._tasks, {}
            transcriptions, self._transcriptions = self._transcriptions, {}
            events = list(self._events)
            self._events.clear()
            oldest, self._oldest_pending = self._oldest_pending, None
        if not (tasks or transcriptions or events):
            return
        try:
            self.db.write(list(tasks.values()), list(transcriptions.values()), events)
        except DatabaseUnavailable:
            with self._lock:  # put them back, under anything newer that arrived meanwhile
                for task_id, row in tasks.items():
                    newer = self._tasks.get(task_id)
                    if newer is None or newer.version < row.version:
                        self._tasks[task_id] = row
                for task_id, transcription in transcriptions.items():
                    self._transcriptions.setdefault(task_id, transcription)
                self._events.extendleft(reversed(events))
                self._oldest_pending = oldest if self._oldest_pending is None else min(oldest or 0,
                                                                                        self._oldest_pending)
            raise

    def reconcile(self) -> None:
        """Make the tables say what the sidecars say (files done, failed or gone while away)."""
        started = time.monotonic()
        known = self.db.task_versions()
        seen: set[str] = set()
        tasks: list[TaskRow] = []
        transcriptions: list[TranscriptionRow] = []
        for task_id, row, transcription in self._rows_from_folder(known):
            seen.add(task_id)
            if row is not None:
                tasks.append(row)
            if transcription is not None:
                transcriptions.append(transcription)
        now = datetime.now(UTC)
        events = []
        for task_id, (filename, status, version) in known.items():
            if task_id in seen or task_id in self._tasks:
                continue
            # Gone from the folder while we were away: deleted, or replaced by a new run.
            tasks.append(TaskRow(task_id, filename, DELETED, version + 1))
            events.append(EventRow(task_id, filename, now, "deleted", DELETED,
                                   {"reason": "no sidecar left in the folder", "previous_status": status}))
        self.db.write(tasks, transcriptions, events)
        log.info("Reconciled %d task(s) with the folder in %.2f s", len(tasks), time.monotonic() - started)

    def _rows_from_folder(self, known: dict[str, tuple[str, str, int]]) -> Iterator[
            tuple[str, TaskRow | None, TranscriptionRow | None]]:
        snapshot = self.folder.snapshot()
        versions_by_name: dict[str, int] = {}
        for _task_id, (filename, _status, version) in known.items():
            versions_by_name[filename] = max(version, versions_by_name.get(filename, 0))
        for filename in snapshot.results:
            yield from self._from_sidecar(self.folder.audio_path(filename), sidecars.RESULT_SUFFIX,
                                          versions_by_name.get(filename, 0), known)
        for filename in snapshot.in_progress:
            yield from self._from_sidecar(self.folder.audio_path(filename), sidecars.IN_PROGRESS_SUFFIX,
                                          versions_by_name.get(filename, 0), known)
        for suffix in (sidecars.IN_PROGRESS_SUFFIX, sidecars.RESULT_SUFFIX):
            # A .result in review is the earlier transcript of a forced re-run that failed:
            # its task still exists (moved with the audio), not deleted.
            for review in self.folder.manual_review.glob("*" + suffix):
                audio = review.with_name(review.name[: -len(suffix)])
                yield from self._from_sidecar(audio, suffix, 0, known)

    def _from_sidecar(self, audio: Path, suffix: str, db_version: int, known: dict[str, Any]) -> Iterator[
            tuple[str, TaskRow | None, TranscriptionRow | None]]:
        """(task_id, row, transcription) for one sidecar; rows are None when the
        database already has this version (reading 10,000 unchanged results is skipped)."""
        path = audio.with_name(audio.name + suffix)
        try:
            version = path.stat().st_mtime_ns
        except OSError:
            return
        if suffix == sidecars.RESULT_SUFFIX:  # corrections saved since change what is mirrored too
            with contextlib.suppress(OSError):
                version = max(version, sidecars.edits_path(audio).stat().st_mtime_ns)
        document = sidecars.read_json(path)
        if document is None or "task_id" not in document:
            return
        task_id = str(document["task_id"])
        if task_id in known and version <= db_version:
            yield task_id, None, None
        elif suffix == sidecars.RESULT_SUFFIX:
            try:
                edits = sidecars.read_edits(audio)
            except SidecarUnreadable:  # out of reach for now: left as it is, and tried at the next reconcile
                yield task_id, None, None
                return
            yield task_id, *rows_from_result(corrections.apply(document, edits), version)
        else:
            try:
                yield task_id, task_row(sidecars.job_from_dict(document), version), None
            except (KeyError, TypeError, ValueError):
                return


# -- pure conversions --------------------------------------------------------


def rows_for_event(event: JobEvent, version: int) -> tuple[list[TaskRow], list[TranscriptionRow], list[EventRow]]:
    job = event.job
    if job is None:
        details = dict(event.details or {})
        if event.event == EventKind.FILE_DELETED:  # a finished or quarantined file deleted through the API
            task_id, filename = str(details["task_id"]), str(details["filename"])
            return [TaskRow(task_id, filename, DELETED, version, finished_at=_now())], [], [
                EventRow(task_id, filename, _now(), "deleted", DELETED, details)]
        if event.event == EventKind.EDITED and event.viewed is not None:  # corrections saved: the text people read
            _, transcription = rows_from_result(event.viewed, version)
            return [], [transcription], [EventRow(str(details["task_id"]), str(details["filename"]), _now(),
                                                  EventKind.EDITED.value, JobStatus.COMPLETED.value, details)]
        return [], [], [EventRow(None, None, _now(), event.event, None, details)]
    now = _now()
    if event.event == EventKind.COMPLETED and event.result is not None:
        row, transcription = rows_from_result(event.viewed or event.result, version)
        return [row], [transcription], [_state_change(job, now, JobStatus.COMPLETED.value, event.previous_status)]
    if event.event == EventKind.QUARANTINED:
        return [task_row(job, version)], [], [EventRow(job.task_id, job.filename, now, EventKind.QUARANTINED.value,
                                                       JobStatus.ERROR.value, _error_details(job))]
    if event.event == EventKind.DROPPED:
        row = replace(task_row(job, version), status=DELETED, finished_at=now)
        return [row], [], [EventRow(job.task_id, job.filename, now, "deleted", DELETED,
                                    {"previous_status": job.status.value})]
    if event.event == EventKind.SAVED:
        events = []
        if event.previous_status is not job.status:
            events.append(_state_change(job, now, job.status.value, event.previous_status))
            if job.status in (JobStatus.RETRY_WAIT, JobStatus.ERROR) and job.last_error is not None:
                events.append(EventRow(job.task_id, job.filename, now, "error", job.status.value,
                                       _error_details(job)))
        return [task_row(job, version)], [], events
    # engine_load, engine_run and other activity of a job
    return [], [], [EventRow(job.task_id, job.filename, now, event.event, job.status.value,
                             dict(event.details or {}))]


def task_row(job: Job, version: int) -> TaskRow:
    error = job.last_error
    started = job.attempts[0].start_time if job.attempts else None
    ended = job.status in (JobStatus.ERROR, JobStatus.COMPLETED)
    finished = job.attempts[-1].end_time if ended and job.attempts else None
    return TaskRow(
        task_id=job.task_id, filename=job.filename, status=job.status.value, version=version,
        source=job.source.value, priority=job.priority, settings=recorded_settings(job.settings, job.debug),
        attempts=job.current_attempt, max_attempts=job.max_attempts,
        error_code=error.code if error else None, error_message=error.message if error else None,
        created_at=job.creation_time, started_at=started, finished_at=finished,
    )


def rows_from_result(document: dict[str, Any], version: int) -> tuple[TaskRow, TranscriptionRow]:
    transcription = document.get("transcription") or {}
    metadata = document.get("metadata") or {}
    row = TaskRow(
        task_id=document["task_id"], filename=str(document.get("filename")), status=JobStatus.COMPLETED.value,
        version=version, settings=document.get("settings") or {}, attempts=int(metadata.get("attempts") or 1),
        started_at=sidecars.parse_time(document.get("processing_start")),
        finished_at=sidecars.parse_time(document.get("processing_end")),
        audio_duration=document.get("duration_seconds"), processing_time=document.get("processing_time_seconds"),
    )
    text = transcription.get("text") or ""
    analysis = document.get("analysis") if isinstance(document.get("analysis"), dict) else None
    return row, TranscriptionRow(
        task_id=document["task_id"], language=transcription.get("language"), text=text,
        segments=transcription.get("segments") or [], confidence=metadata.get("confidence"),
        word_count=int(metadata.get("word_count") or len(text.split())),
        model=(metadata.get("engine") or {}).get("model"), speakers=transcription.get("speakers") or [],
        analysis=analysis, speech_seconds=_seconds(analysis, "speech_seconds"),
        longest_silence_seconds=_seconds(analysis, "longest_silence_seconds"),
    )


def _seconds(analysis: dict[str, Any] | None, key: str) -> float | None:
    """A number of the analysis, or None where a hand-edited or older ``.result`` has none."""
    value = (analysis or {}).get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _state_change(job: Job, now: datetime, status: str, previous: JobStatus | None) -> EventRow:
    return EventRow(job.task_id, job.filename, now, "state_change", status, {
        "from": previous.value if previous else None, "to": status, "attempt": job.current_attempt,
    })


def _error_details(job: Job) -> dict[str, Any]:
    error = job.last_error
    return {"attempt": job.current_attempt, "code": error.code if error else None,
            "message": error.message if error else None}


def _now() -> datetime:
    return datetime.now(UTC)
