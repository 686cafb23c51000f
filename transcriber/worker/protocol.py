"""The messages on the pipe between the daemon and a worker process (picklable, frozen).

Daemon -> worker: ``LoadRequest``, ``TranscribeJob``.  Worker -> daemon: the
rest.  ``WorkerLimits`` is what the daemon gives the process at spawn.
"""

from __future__ import annotations

from dataclasses import dataclass

from transcriber.domain.job import Stage
from transcriber.domain.settings import TranscriptionSettings
from transcriber.domain.transcript import Transcript


# Messages, daemon -> worker
@dataclass(frozen=True)
class LoadRequest:
    settings: TranscriptionSettings


@dataclass(frozen=True)
class TranscribeJob:
    job_id: str
    path: str
    settings: TranscriptionSettings


# Messages, worker -> daemon
@dataclass(frozen=True)
class WorkerReady:
    """The process has started and built its engine (imports done); sent once."""

    at: float  # time.time() in the worker


@dataclass(frozen=True)
class ModelLoading:
    model: str
    at: float  # time.time() in the worker


@dataclass(frozen=True)
class ModelLoaded:
    model: str
    at: float
    seconds: float
    ok: bool = True


@dataclass(frozen=True)
class ModelsUnloaded:
    """The worker freed its models after ``idle_unload_seconds`` without work."""


@dataclass(frozen=True)
class ProgressUpdate:
    job_id: str
    stage: Stage
    percentage: float


@dataclass(frozen=True)
class TranscribeDone:
    job_id: str
    transcript: Transcript
    duration_seconds: float


@dataclass(frozen=True)
class TranscribeFailed:
    job_id: str
    code: str
    message: str


@dataclass(frozen=True)
class WorkerLimits:
    idle_unload_seconds: float
    progress_interval_seconds: float
    model_load_timeout_seconds: float = 600.0
    nice: int = 0
    log_level: str = "INFO"
    log_to_stderr: bool = False
    idle_memory_limit_mb: int = 0  # processing.worker_idle_memory_limit_mb; 0: none
