"""The job record, its status enum, and the pure state transitions.

A :class:`Job` is frozen; every change produces a new value through one of
the transition functions below, which do no I/O.  The daemon writes the
result to the sidecar around them, in one place (``dispatcher.py``).

    pending ──► queued ──► processing ──► completed
                  ▲            │
                  └─ retry ◄───┤ (transient error, attempts left)
                               └──► error  (attempts exhausted, or permanent)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from transcriber.domain.settings import TranscriptionSettings
from transcriber.errors import JobError


class JobStatus(StrEnum):
    """A job's state: the sidecar's ``status`` and the database's, alike.

    The API answers with a file's status instead (``api.service.FileStatus``,
    which has no ``retry_wait``); the mirror adds ``deleted``.
    """

    QUEUED = "queued"
    RETRY_WAIT = "retry_wait"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ERROR = "error"


# A task whose file was deleted or cancelled: the one status of the mirror that no job has.
DELETED = "deleted"
TASK_STATUSES = (*(status.value for status in JobStatus), DELETED)  # what GET /tasks?status= can ask for


class Stage(StrEnum):
    WAITING_FOR_FILE = "waiting_for_file"  # asked for by the API while the file is still being written
    QUEUED = "queued"
    LOADING_MODEL = "loading_model"
    LOADING_AUDIO = "loading_audio"
    TRANSCRIBING = "transcribing"
    ALIGNING = "aligning"
    DIARIZING = "diarizing"
    WRITING = "writing"


class Source(StrEnum):
    API = "api"
    SCAN = "scan"


PRIORITY_API = 1
PRIORITY_SCAN = 2


class AttemptStatus(StrEnum):
    RUNNING = "running"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class AttemptError:
    code: str
    message: str


@dataclass(frozen=True)
class Attempt:
    attempt_number: int
    start_time: datetime
    status: AttemptStatus = AttemptStatus.RUNNING
    end_time: datetime | None = None
    error: AttemptError | None = None


@dataclass(frozen=True)
class Progress:
    stage: Stage = Stage.QUEUED
    percentage: float = 0.0


@dataclass(frozen=True)
class Job:
    task_id: str
    filename: str
    creation_time: datetime
    status: JobStatus
    source: Source
    priority: int
    settings: TranscriptionSettings
    max_attempts: int
    current_attempt: int = 0
    next_attempt_at: datetime | None = None
    progress: Progress = field(default_factory=Progress)
    attempts: tuple[Attempt, ...] = ()
    detected_at: datetime | None = None  # when the watcher first saw the file (None: asked for by the API)
    # What is reported, never what is done: two requests that differ only in
    # ``debug`` ask for the same job (a debug request used to restart a running
    # transcription, issue 13).  Recorded with the settings (``recorded_settings``).
    debug: bool = False

    @property
    def failed_attempts(self) -> int:
        return sum(1 for a in self.attempts if a.status is AttemptStatus.FAILED)

    @property
    def last_error(self) -> AttemptError | None:
        for attempt in reversed(self.attempts):
            if attempt.error is not None:
                return attempt.error
        return None

    @property
    def is_active(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.RETRY_WAIT, JobStatus.PROCESSING)

    @property
    def waiting_for_file(self) -> bool:
        """Queued by a request, but held out of the queue until the file is complete."""
        return self.status is JobStatus.QUEUED and self.progress.stage is Stage.WAITING_FOR_FILE


def new_job(
    filename: str, settings: TranscriptionSettings, source: Source, max_attempts: int, now: datetime,
    detected_at: datetime | None = None, debug: bool = False,
) -> Job:
    return Job(
        task_id=str(uuid.uuid4()), filename=filename, creation_time=now, status=JobStatus.QUEUED,
        source=source, priority=PRIORITY_API if source is Source.API else PRIORITY_SCAN,
        settings=settings, max_attempts=max_attempts, detected_at=detected_at, debug=debug,
    )


def recorded_settings(settings: TranscriptionSettings, debug: bool) -> dict[str, Any]:
    """The settings as the sidecar, the API's answers and the mirror record them: with ``debug``."""
    return {**settings.to_dict(), "debug": debug}


def await_file(job: Job) -> Job:
    """Asked for while the file may still be arriving: a job the client can poll,
    which the queue gets only once the file is complete by the watcher's rules.
    Submitting at once transcribed part of a recording still being copied and
    answered the client's ``wait`` with it (issue 13)."""
    return replace(job, progress=Progress(Stage.WAITING_FOR_FILE, 0.0))


def file_complete(job: Job) -> Job:
    """The watcher found the awaited file complete: into the queue."""
    return replace(job, progress=Progress(Stage.QUEUED, 0.0))


def start_attempt(job: Job, now: datetime) -> Job:
    """Processing begins.  The number counts failed attempts only, so an
    interrupted attempt (shutdown, settings change) is retried under the same
    number and never pushes the count past the maximum."""
    number = job.failed_attempts + 1
    return _move(
        job, JobStatus.PROCESSING, current_attempt=number, next_attempt_at=None,
        progress=Progress(Stage.LOADING_MODEL, 0.0),
        attempts=(*job.attempts, Attempt(attempt_number=number, start_time=now)),
    )


def report_progress(job: Job, stage: Stage, percentage: float) -> Job:
    return replace(job, progress=Progress(stage, round(min(max(percentage, 0.0), 100.0), 1)))


def fail_attempt(job: Job, error: JobError, now: datetime, retry_at: datetime | None) -> Job:
    """The running attempt failed; ``retry_at`` is the retry decision (None: give up).

    An error that does not use up an attempt (the folder refused the transcript)
    closes it as interrupted, with the error: the next try keeps its number.
    """
    status = AttemptStatus.FAILED if error.uses_attempt else AttemptStatus.INTERRUPTED
    attempts = _close_running(job, now, status, AttemptError(error.code, error.message))
    if retry_at is None:
        return _move(job, JobStatus.ERROR, attempts=attempts, next_attempt_at=None)
    return _move(
        job, JobStatus.RETRY_WAIT, attempts=attempts, next_attempt_at=retry_at,
        progress=Progress(Stage.QUEUED, 0.0),
    )


def interrupt_attempt(job: Job, now: datetime) -> Job:
    """The running attempt was stopped on purpose; the job goes back to the queue."""
    attempts = _close_running(job, now, AttemptStatus.INTERRUPTED, None)
    return _move(job, JobStatus.QUEUED, attempts=attempts, progress=Progress(Stage.QUEUED, 0.0))


def succeed_attempt(job: Job, now: datetime) -> Job:
    attempts = _close_running(job, now, AttemptStatus.SUCCEEDED, None)
    return _move(job, JobStatus.COMPLETED, attempts=attempts, progress=Progress(Stage.WRITING, 100.0))


def retry_due(job: Job) -> Job:
    """A ``retry_wait`` job whose time has come joins the queue again."""
    return _move(job, JobStatus.QUEUED, next_attempt_at=None)


def requeue_with_settings(job: Job, settings: TranscriptionSettings, priority: int, source: Source) -> Job:
    """New settings for a job not running them (any attempt already interrupted):
    back in the queue at once, asked for by ``source`` at ``priority``."""
    return _move(job, JobStatus.QUEUED, settings=settings, priority=priority, source=source, next_attempt_at=None)


def hold_unsaved(job: Job, retry_at: datetime) -> Job:
    """The folder refused to record ``job``: kept in memory to be tried again at
    ``retry_at``, its sidecar on disk still saying what it said."""
    return _move(job, JobStatus.RETRY_WAIT, next_attempt_at=retry_at)


# Where each state may go.  A change outside this table is a bug, caught here
# instead of in a sidecar that recovery cannot read sensibly.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PROCESSING, JobStatus.QUEUED, JobStatus.RETRY_WAIT, JobStatus.ERROR}),
    JobStatus.PROCESSING: frozenset({JobStatus.COMPLETED, JobStatus.RETRY_WAIT, JobStatus.ERROR, JobStatus.QUEUED}),
    JobStatus.RETRY_WAIT: frozenset({JobStatus.QUEUED, JobStatus.RETRY_WAIT, JobStatus.PROCESSING, JobStatus.ERROR}),
    JobStatus.ERROR: frozenset({JobStatus.RETRY_WAIT}),  # its move to manual_review/ refused: held to try again
    JobStatus.COMPLETED: frozenset(),
}


class TransitionError(ValueError):
    """A state change the table does not allow."""


def _move(job: Job, status: JobStatus, **changes: Any) -> Job:
    if status not in TRANSITIONS[job.status]:
        raise TransitionError(f"{job.filename}: {job.status} -> {status} is not a transition of a job")
    return replace(job, status=status, **changes)


def _close_running(
    job: Job, now: datetime, status: AttemptStatus, error: AttemptError | None,
) -> tuple[Attempt, ...]:
    if not job.attempts or job.attempts[-1].status is not AttemptStatus.RUNNING:
        # Failing before any attempt started (e.g. a zero-length file found at
        # dispatch): record it as an attempt of its own so the history says why.
        number = job.failed_attempts + 1
        closed = Attempt(number, now, status, now, error)
        return (*job.attempts, closed)
    running = job.attempts[-1]
    return (*job.attempts[:-1], replace(running, status=status, end_time=now, error=error))
