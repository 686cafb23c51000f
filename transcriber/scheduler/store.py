"""The job table: active jobs in memory, persisted to sidecars on every change.

Every change of a job goes through :meth:`JobStore.save`, :meth:`complete`,
:meth:`quarantine` or :meth:`drop`, which write the folder first and only
then update memory and tell the listeners (the API's long-polls, the
PostgreSQL mirror).  A failed write raises OSError and leaves memory as it
was, so the daemon never believes something the folder does not say; the
store remembers it (:meth:`JobStore.refused_writes`, for ``GET /health``)
until that sidecar is written or its job is gone.

A completed job also gets the renderings of ``output.write_formats``
(``call.mp3.srt`` …) beside its ``.result``.  They are copies for people and
subtitle players, not state: one that cannot be written is logged and the
job completes all the same (the ``.result`` is the contract, and
``GET /result?format=`` renders any format from it).  They show the file's
corrections (``call.mp3.edits``): :meth:`JobStore.save_edits` writes those
under the same lock, with their version check, and writes the renderings
again; a re-run keeps the corrections that still hold (``domain/edits.py``
``rebase``) and reports the others.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from transcriber import exports
from transcriber.domain import edits as corrections
from transcriber.domain.job import Job, JobStatus
from transcriber.errors import EditConflict, SidecarUnreadable
from transcriber.folder import sidecars
from transcriber.folder.layout import SharedFolder
from transcriber.scheduler.events import EventKind, JobEvent, Listener

log = logging.getLogger("Store")


class JobStore:
    def __init__(self, folder: SharedFolder, json_indent: int | None = 2,
                 write_formats: tuple[str, ...] | list[str] = ()) -> None:
        self.folder = folder
        self.json_indent = json_indent
        self.write_formats = tuple(dict.fromkeys(write_formats))  # in order, each once
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self.changed = threading.Condition(self._lock)
        self._refused: dict[Path, tuple[str, str]] = {}  # sidecar -> (job filename, why the folder refused it)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def locked(self) -> AbstractContextManager[bool]:
        """Hold the table still (``with store.locked(): …``) for a check-then-act."""
        return self._lock

    def get(self, filename: str) -> Job | None:
        """The job as last recorded, without the lock: /status never waits behind a
        sidecar's fsync.  Jobs are immutable and each is put in the table only after
        its sidecar is written, so a reader sees a whole, recorded job or none."""
        return self._jobs.get(filename)

    def active(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def __contains__(self, filename: str) -> bool:
        with self._lock:
            return filename in self._jobs

    def add(self, job: Job, durable: bool = True) -> Job:
        """Persist and remember a job that is new to the table (or recovered at start).

        A file the scan just found may skip the fsyncs (``durable=False``):
        if a power loss takes its sidecar, the next scan finds the file again.
        """
        with self._lock:
            return self._write(job, durable)

    def save(self, job: Job, durable: bool = True) -> Job | None:
        """Persist a change of a job still in the table; None when the job was
        dropped or replaced meanwhile (a cancel racing a slot), so a late
        write can never bring a cancelled job back."""
        with self._lock:
            if not self._is_current(job):
                return None
            return self._write(job, durable)

    def update_progress(self, job: Job, persist: bool) -> None:
        """Progress of a running job: always in memory (what /status reads),
        on disk only when ``persist`` (throttled by the caller), never fsynced."""
        with self._lock:
            if not self._is_current(job):
                return
            if persist:
                path = sidecars.in_progress_path(self._audio(job))
                with self._writing(job.filename, path):
                    sidecars.write_json_atomic(path, sidecars.job_to_dict(job), self.json_indent, durable=False)
            self._jobs[job.filename] = job

    def _write(self, job: Job, durable: bool = True) -> Job:
        path = sidecars.in_progress_path(self._audio(job))
        with self._writing(job.filename, path):
            sidecars.write_json_atomic(path, sidecars.job_to_dict(job), self.json_indent, durable)
        previous = self._jobs.get(job.filename)
        self._jobs[job.filename] = job
        self._notify(JobEvent(job, EventKind.SAVED, previous_status=previous.status if previous else None))
        if previous is None or previous.status is not job.status:
            log.info("%s: %s%s", job.filename, job.status.value, _attempt_note(job))
        return job

    def _is_current(self, job: Job) -> bool:
        current = self._jobs.get(job.filename)
        return current is not None and current.task_id == job.task_id

    def complete(self, job: Job, result: dict[str, Any]) -> None:
        """Write ``.result`` first, then the renderings, then remove ``.in_progress``
        (docs/ARCHITECTURE.md, a file's own files): whoever sees the sidecar gone finds every file in place."""
        audio = self._audio(job)
        with self._lock:
            if not self._is_current(job):
                return
            with self._writing(job.filename, sidecars.result_path(audio)):
                sidecars.write_json_atomic(sidecars.result_path(audio), result, self.json_indent)
            edits = self._rebase_edits(job.filename, audio, result)
            viewed = corrections.apply(result, edits)
            self._write_renderings(job.filename, audio, viewed)
            with self._writing(job.filename, sidecars.in_progress_path(audio)):
                sidecars.remove_in_progress(audio)
            self._jobs.pop(job.filename, None)
            self._notify(JobEvent(job, EventKind.COMPLETED, result, viewed=None if edits.empty else viewed))
        log.info("Completed %s", job.filename)

    def _rebase_edits(self, filename: str, audio: Path, result: dict[str, Any]) -> corrections.Edits:
        """The corrections of an earlier run that hold for this one; those that do not are
        dropped, logged and listed in the sidecar.  A sidecar that cannot be written is only
        logged: the earlier corrections stay on disk, and apply where they still match.
        One that cannot be read is left as it is (logged), and the renderings are the engine's."""
        try:
            edits = sidecars.read_edits(audio)
        except SidecarUnreadable as exc:
            log.warning("%s: the renderings are written without the corrections: %s", filename, exc.message)
            return corrections.Edits()
        if edits.empty:
            return edits
        rebased = corrections.rebase(edits, result)
        if rebased == edits:
            return edits
        rebased = replace(rebased, version=edits.version + 1, updated_at=sidecars.format_time(sidecars.utc_now()))
        try:
            sidecars.write_edits(audio, rebased, self.json_indent)
        except OSError as exc:
            log.warning("%s: could not update %s after the re-run: %s", filename, sidecars.edits_path(audio).name, exc)
            return rebased
        if rebased.dropped:
            log.warning("%s: the re-run dropped %d correction(s): %s (listed in %s)", filename, len(rebased.dropped),
                        "; ".join(sorted({d["reason"] for d in rebased.dropped})), sidecars.edits_path(audio).name)
        return rebased

    def save_edits(self, filename: str, edits: corrections.Edits, based_on: int, task_id: str) -> corrections.Edits:
        """Replace the corrections of ``filename``'s transcript ``task_id``, made on version
        ``based_on``; raises :class:`EditConflict` when someone saved since, or the transcript
        was replaced meanwhile, :class:`SidecarUnreadable` when the corrections there cannot
        be read, and OSError when the folder refuses the write (nothing changed either way)."""
        audio = self.folder.audio_path(filename)
        with self._lock:
            result = sidecars.read_json(sidecars.result_path(audio))
            if result is None or str(result.get("task_id")) != task_id:
                raise EditConflict("the transcript was replaced while the corrections were made",
                                   sidecars.read_edits(audio).version)
            current = sidecars.read_edits(audio)
            if current.version != based_on:
                raise EditConflict(f"the corrections are at version {current.version}, these were made on "
                                   f"version {based_on}", current.version)
            saved = replace(edits, version=current.version + 1, dropped=(),
                            updated_at=sidecars.format_time(sidecars.utc_now()))
            sidecars.write_edits(audio, saved, self.json_indent)
            viewed = corrections.apply(result, saved)
            self._write_renderings(filename, audio, viewed)
            self._notify(JobEvent(None, EventKind.EDITED, result, viewed=viewed,
                                  details={"task_id": task_id, "filename": filename, "version": saved.version}))
        log.info("%s: corrections saved (version %d)", filename, saved.version)
        return saved

    def _write_renderings(self, filename: str, audio: Path, result: dict[str, Any]) -> None:
        """``call.mp3.<fmt>`` for each of ``output.write_formats``, each atomic (temp,
        fsync, rename), one folder fsync for all.  A re-run replaces them; renderings
        of formats no longer configured are left alone.  A failure is only logged:
        it is not tried again (a forced re-run of the file writes them anew), and an
        earlier run's file of that format is removed rather than left stale."""
        written = False
        for fmt in self.write_formats:
            path = sidecars.rendering_path(audio, fmt)
            try:
                content = self._rendering(result, fmt)
                sidecars.write_bytes_atomic(path, content, sync_folder=False)
                written = True
            # A rendering must never fail the job, the .result is written: a full disk, or a
            # segment a renderer cannot read.
            except (OSError, KeyError, TypeError, ValueError) as exc:
                log.warning("%s: could not write %s (the .result is complete): %s", filename, path.name, exc)
                # An earlier run's rendering beside the new .result would be the wrong text.
                with contextlib.suppress(OSError):
                    path.unlink()
        if written:
            try:
                sidecars.fsync_folder(audio.parent)
            except OSError as exc:
                log.warning("%s: could not sync the folder after the renderings: %s", filename, exc)

    def _rendering(self, result: dict[str, Any], fmt: str) -> bytes:
        if fmt == "json":  # the .result's own text, under output.json_indent as the .result is
            return json.dumps(result, ensure_ascii=False, indent=self.json_indent).encode("utf-8")
        return exports.render_bytes(result, fmt)

    def quarantine(self, job: Job) -> Path | None:
        """Record the final ``error`` sidecar, then move audio, sidecar, and an
        earlier run's ``.result`` and renderings to review (folder.quarantine)."""
        assert job.status is JobStatus.ERROR
        with self._lock:
            if not self._is_current(job):
                return None
            self._write(job)
            with self._writing(job.filename, sidecars.in_progress_path(self._audio(job))):
                target = self.folder.quarantine(job.filename, self.write_formats)
            self._jobs.pop(job.filename, None)
            self._notify(JobEvent(job, EventKind.QUARANTINED))
        error = job.last_error
        log.warning(
            "Moved %s to manual_review/%s after %d attempt(s): %s",
            job.filename, target.name, job.current_attempt, f"{error.code}: {error.message}" if error else "",
        )
        return target

    def drop(self, job: Job, reason: str) -> None:
        """Forget a job and its ``.in_progress`` (audio deleted, or cancelled)."""
        with self._lock:
            sidecars.remove_in_progress(self._audio(job))
            self._jobs.pop(job.filename, None)
            self._notify(JobEvent(job, EventKind.DROPPED))
        log.info("Dropped %s: %s", job.filename, reason)

    def remember(self, job: Job) -> None:
        """Hold a job in memory only: its sidecar write failed (full or read-only
        disk) and will be tried again when the job comes round."""
        with self._lock:
            self._jobs[job.filename] = job

    def refused_writes(self) -> dict[str, str]:
        """Sidecars the folder refused (full or read-only disk) whose jobs still
        wait for them: name -> why.  A later write of the same sidecar, or the
        job's end, clears an entry.  No lock: /health must not wait behind a slow write."""
        refused = dict(self._refused)  # one atomic copy
        return {path.name: why for path, (filename, why) in refused.items() if filename in self._jobs}

    @contextmanager
    def _writing(self, filename: str, path: Path) -> Iterator[None]:
        """Around a write under the lock: remember a refusal, forget it once the folder takes that sidecar."""
        try:
            yield
        except OSError as exc:
            self._refused[path] = (filename, exc.strerror or str(exc))
            raise
        self._refused.pop(path, None)
        for stale in [p for p, (name, _) in self._refused.items() if name not in self._jobs and name != filename]:
            del self._refused[stale]  # jobs that ended (or never began) while their write was refused

    def announce(self, job: Job | None, event: EventKind, details: dict[str, Any]) -> None:
        """Tell listeners about an activity that changes no state (an engine call)."""
        with self._lock:
            self._notify(JobEvent(job, event, details=details))

    def _audio(self, job: Job) -> Path:
        return self.folder.audio_path(job.filename)

    def _notify(self, event: JobEvent) -> None:
        self.changed.notify_all()
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener (mirror, API) must never break the job flow
                log.exception("Listener failed on %s of %s", event.event, event.job.filename if event.job else "-")


def _attempt_note(job: Job) -> str:
    if job.status is JobStatus.PROCESSING:
        return f" (attempt {job.current_attempt}/{job.max_attempts})"
    if job.status is JobStatus.RETRY_WAIT and job.next_attempt_at is not None:
        return f" until {sidecars.format_time(job.next_attempt_at)}"
    return ""
