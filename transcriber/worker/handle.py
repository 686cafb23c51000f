"""The daemon's handle to one worker process.

The daemon talks to the worker over a pipe (``protocol``).  Killing the
child is how a timeout or a cancel stops a transcription that is deep in
native code; the handle then starts a fresh one for the next job.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import psutil

from transcriber.domain.job import Stage
from transcriber.domain.settings import TranscriptionSettings
from transcriber.domain.transcript import Transcript
from transcriber.engine.base import EngineFactory, EngineOptions
from transcriber.errors import (
    Interrupted,
    JobError,
    JobTimeoutError,
    OutOfMemoryError,
    WorkerCrashedError,
    WorkerStartError,
    job_error_from_code,
)
from transcriber.logs import log_lines
from transcriber.worker import heap
from transcriber.worker.child import worker_main
from transcriber.worker.protocol import (
    LoadRequest,
    ModelLoaded,
    ModelLoading,
    ModelsUnloaded,
    ProgressUpdate,
    TranscribeDone,
    TranscribeFailed,
    TranscribeJob,
    WorkerLimits,
    WorkerReady,
)

log = logging.getLogger("Worker")

# Deaths in a row, with no job answered or model loaded between them, after which
# the worker is taken to be unable to stay up: /health turns unhealthy and an
# idle worker is no longer respawned at once (issue 13: a worker that exits at
# start must not look healthy, nor respawn in a tight loop).
CRASH_LOOP_DEATHS = 3


class _Deadline:
    """``timeout_seconds`` of work, not counting the worker's start-up and
    model loading, which get a budget of their own: a cold worker (first job,
    or just respawned) must not time a file out because Python, its imports or
    the model took long to load on a busy machine."""

    def __init__(self, timeout_seconds: float, load_timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self.load_timeout_seconds = load_timeout_seconds
        self.started = time.time()
        self.loading_since: float | None = None
        self.loading_seconds = 0.0

    def loading_started(self, at: float) -> None:
        self.loading_since = max(at, self.started)

    def loading_ended(self, at: float) -> None:
        if self.loading_since is not None:
            self.loading_seconds += max(at - self.loading_since, 0.0)
        elif at > self.started:  # a preload that began before this job
            self.loading_seconds += at - self.started
        self.loading_since = None

    def expired(self) -> bool:
        now = time.time()
        if self.loading_since is not None:
            return now - self.loading_since > self.load_timeout_seconds
        return now - self.started - self.loading_seconds > self.timeout_seconds

    def explain(self) -> str:
        if self.loading_since is not None:
            return (f"the worker did not start and load its model within model_load_timeout_seconds "
                    f"({self.load_timeout_seconds:g} s); worker restarted")
        return f"no result within timeout_seconds ({self.timeout_seconds:g} s); worker restarted"


@dataclass(frozen=True)
class WorkerOutcome:
    transcript: Transcript
    duration_seconds: float


class WorkerHandle:
    """The daemon's side of one worker process.

    Not thread-safe: each dispatcher slot owns one handle.
    """

    def __init__(
        self, factory: EngineFactory, options: EngineOptions, limits: WorkerLimits, memory_limit_mb: int,
        name: str = "worker",
    ) -> None:
        self.factory = factory
        self.options = options
        self.limits = limits
        self.memory_limit_bytes = memory_limit_mb * 1024 * 1024
        self.name = name
        self.starts = 0
        self.model_load_seconds: list[float] = []
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.warm_settings: TranscriptionSettings | None = None
        self.models_loaded: set[str] = set()
        self._ready = False  # WorkerReady seen from the current process
        self.deaths_in_a_row = 0  # deaths at start or while idle since it last answered a job or loaded a model
        self.last_death: str | None = None
        self.jobs_answered = 0  # by the current process
        self.idle_recycles = 0  # processes replaced for worker_idle_memory_limit_mb
        self._replaces_idle_recycled = False  # the current process replaced one over that ceiling
        self.idle_limit_given_up = False  # the ceiling is below what one job leaves: not applied
        self.on_model_load: Callable[[ModelLoaded], None] | None = None  # the audit trail
        self.last_load_ok: bool | None = None  # how the last model load ended; None: none yet

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    @property
    def restarts(self) -> int:
        return max(self.starts - 1, 0)

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def crash_looping(self) -> bool:
        """The process keeps dying on its own: it cannot stay up on this host."""
        return self.deaths_in_a_row >= CRASH_LOOP_DEATHS

    def memory_bytes(self) -> int:
        pid = self.pid
        if pid is None:
            return 0
        try:
            return psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return 0

    def start(self) -> None:
        parent_conn, child_conn = self._context.Pipe()
        # The worker's raw output (fds 1 and 2) comes here and is logged by a thread of
        # the daemon: read in this process, it drains while the worker holds its GIL in
        # native code, and a crash's last words are read after the worker is gone.
        output_reader, output_writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=worker_main,
            args=(child_conn, self.factory, self.options, self.limits, os.getpid(), output_writer),
            name=self.name, daemon=True,
        )
        with heap.one_arena_in_workers():  # in the worker's environment only (heap.py)
            process.start()
        child_conn.close()
        output_writer.close()
        threading.Thread(target=log_lines, args=(output_reader, logging.getLogger(self.name)),
                         name=f"{self.name}-output", daemon=True).start()
        self._process, self._conn, self._ready = process, parent_conn, False
        self.starts += 1
        self.jobs_answered = 0
        log.info("Started %s (pid %s)", self.name, process.pid)

    def ensure_started(self) -> None:
        if not self.is_alive():
            self._discard()
            self.start()

    def preload(self, settings: TranscriptionSettings) -> None:
        """Start the worker and load ``settings``' model; again after every kill."""
        self.warm_settings = settings
        self.ensure_started()
        assert self._conn is not None
        self._conn.send(LoadRequest(settings))

    def run(
        self, job_id: str, path: Path, settings: TranscriptionSettings, timeout_seconds: float,
        cancel: threading.Event, on_progress: Callable[[Stage, float], None],
    ) -> WorkerOutcome:
        """Transcribe ``path``; raise a JobError, or Interrupted when ``cancel`` is set."""
        self.ensure_started()
        assert self._conn is not None
        clock = _Deadline(timeout_seconds, self.limits.model_load_timeout_seconds)
        if not self._ready:
            clock.loading_started(clock.started)  # still starting: that is load time, not the file's
        self._conn.send(TranscribeJob(job_id, str(path), settings))
        while True:
            if cancel.is_set():
                self.kill("cancelled")
                raise Interrupted("the job was interrupted")
            if clock.expired():
                self.kill("timeout")
                raise JobTimeoutError(clock.explain())
            message = self._receive(0.1)
            if isinstance(message, ProgressUpdate) and message.job_id == job_id:
                on_progress(message.stage, message.percentage)
            elif isinstance(message, WorkerReady):
                self._note(message)
                clock.loading_ended(message.at)
            elif isinstance(message, ModelLoading):
                clock.loading_started(message.at)
            elif isinstance(message, ModelLoaded):
                clock.loading_ended(message.at)
                self._note(message)
            elif isinstance(message, ModelsUnloaded):
                self._note(message)
            elif isinstance(message, TranscribeDone) and message.job_id == job_id:
                self.deaths_in_a_row = 0
                self._recycle_if_bloated()
                return WorkerOutcome(message.transcript, message.duration_seconds)
            elif isinstance(message, TranscribeFailed) and message.job_id == job_id:
                self.deaths_in_a_row = 0
                self._recycle_if_bloated()
                raise job_error_from_code(message.code, message.message)

    def drain(self) -> None:
        """Read what an idle worker reported (preloads, idle unloads)."""
        if self._conn is None:
            return
        try:
            while self._conn.poll(0):
                self._note(self._conn.recv())
        except (EOFError, OSError):
            self._died(self._exit_description())
            if self.warm_settings is not None and not self.crash_looping:
                log.warning("%s died while idle (%s); restarting it", self.name, self.last_death)
                try:
                    self.preload(self.warm_settings)
                except OSError as exc:  # no memory or processes left to fork: the next job tries again
                    self._died(f"could not be restarted: {exc}")
            else:
                log.warning("%s died while idle (%s); it restarts with the next job", self.name, self.last_death)

    def _note(self, message: object) -> None:
        if isinstance(message, WorkerReady):
            self._ready = True
        if isinstance(message, ModelLoaded):
            self.last_load_ok = message.ok
            if self.on_model_load is not None:
                self.on_model_load(message)
        if isinstance(message, ModelLoaded) and message.ok:
            self.deaths_in_a_row = 0
            self.models_loaded.add(message.model)
            self.model_load_seconds.append(message.seconds)
        elif isinstance(message, ModelsUnloaded):
            self.models_loaded.clear()

    def _receive(self, timeout: float) -> object | None:
        assert self._conn is not None and self._process is not None
        try:
            if self._conn.poll(timeout):
                return self._conn.recv()
        except (EOFError, OSError):
            pass
        else:
            if self._process.is_alive():
                return None
        self._process.join(1.0)
        raise self._death_error()

    def _death_error(self) -> JobError:
        assert self._process is not None
        code = self._process.exitcode
        how = self._exit_description()
        ready = self._ready
        # Only a death before the worker was ready says it cannot stay up; one while
        # transcribing may be the file's doing (a file that crashes it every time).
        self._died(how, cannot_stay_up=not ready)
        if not ready:
            return WorkerStartError(f"the worker process died ({how}) before it was ready for work")
        if code == -signal.SIGKILL:
            return OutOfMemoryError(
                "the worker was killed by SIGKILL, most likely by the kernel's out-of-memory killer"
            )
        return WorkerCrashedError(f"the worker process died ({how}) while transcribing")

    def _exit_description(self) -> str:
        if self._process is None:
            return "gone"
        self._process.join(1.0)
        code = self._process.exitcode
        return f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"

    def _died(self, how: str, cannot_stay_up: bool = True) -> None:
        """An exit nobody asked for (kills by the daemon go through kill())."""
        if cannot_stay_up:
            self.deaths_in_a_row += 1
        self.last_death = f"{how} at {time.strftime('%Y-%m-%d %H:%M:%S')}"
        self._discard()

    def _recycle_if_bloated(self) -> None:
        """After each job: restart (warm) a worker that keeps too much memory.

        ``worker_memory_limit_mb`` is the hard limit.  Below it, the idle
        ceiling ``worker_idle_memory_limit_mb``: the worker has given its freed
        heap back before replying (``heap.trim_after_job``), so what it holds
        over the ceiling it keeps for good (a leak, a heap that trimming cannot
        shrink), and the next long file would add its peak on top of it.  Never
        a restart per job: when the fresh worker that replaced one is over the
        ceiling again after its first job, the ceiling is below what the model
        and one job need, and it is no longer applied (logged once).
        """
        self.jobs_answered += 1
        used = self.memory_bytes()
        if used > self.memory_limit_bytes:
            log.warning(
                "Recycling %s: %d MB resident is over worker_memory_limit_mb (%d MB)",
                self.name, used // 2**20, self.memory_limit_bytes // 2**20,
            )
            self.kill("memory limit")
            return
        ceiling = self.limits.idle_memory_limit_mb * 2**20
        if not ceiling or self.idle_limit_given_up or used <= ceiling:
            self._replaces_idle_recycled = False
            return
        if self._replaces_idle_recycled and self.jobs_answered == 1:
            self.idle_limit_given_up = True
            log.warning(
                "%s holds %d MB after one job even when fresh, over worker_idle_memory_limit_mb (%d MB): "
                "the ceiling is too low for this model and is no longer applied",
                self.name, used // 2**20, ceiling // 2**20,
            )
            return
        log.warning(
            "Recycling %s: %d MB resident after a job is over worker_idle_memory_limit_mb (%d MB)",
            self.name, used // 2**20, ceiling // 2**20,
        )
        self.idle_recycles += 1
        self.kill("idle memory limit")
        self._replaces_idle_recycled = True

    def kill(self, reason: str) -> None:
        if self._process is None:
            return
        log.info("Killing %s (pid %s): %s", self.name, self._process.pid, reason)
        self._process.kill()
        self._process.join(5.0)
        self._discard()
        if self.warm_settings is not None:
            self.preload(self.warm_settings)  # respawn now, so the next file finds it warm

    def stop(self, timeout: float = 5.0) -> None:
        """Close the pipe (the child exits its loop) and wait; kill if it lingers."""
        if self._process is None:
            return
        if self._conn is not None:
            self._conn.close()
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)
        self._discard()

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None
        self.models_loaded.clear()


def run_once(
    factory: EngineFactory, options: EngineOptions, limits: WorkerLimits, path: Path,
    settings: TranscriptionSettings, timeout_seconds: float,
) -> WorkerOutcome:
    """Transcribe one file through a fresh worker (the one-shot CLI)."""
    handle = WorkerHandle(factory, options, limits, memory_limit_mb=1 << 20, name="oneshot-worker")
    try:
        return handle.run("oneshot", path, settings, timeout_seconds, threading.Event(), lambda *_: None)
    finally:
        handle.stop()
