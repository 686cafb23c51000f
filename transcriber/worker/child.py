"""The worker process's own side: serve the daemon's requests until the pipe closes.

Started with ``spawn`` (never ``fork``: the daemon has threads) by
``handle.WorkerHandle``; keeps the engine and its models warm between jobs,
decodes audio, reports progress, gives freed heap back.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path

from transcriber.domain.job import Stage
from transcriber.domain.settings import TranscriptionSettings
from transcriber.engine import audio
from transcriber.engine.asr import classify_engine_exception
from transcriber.engine.base import Engine, EngineFactory, EngineOptions
from transcriber.errors import JobError
from transcriber.logs import configure_logging, redirect_output
from transcriber.worker import heap
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

PR_SET_PDEATHSIG = 1


def worker_main(
    conn: Connection, factory: EngineFactory, options: EngineOptions, limits: WorkerLimits, parent_pid: int,
    output: Connection,
) -> None:
    """Entry point of the child process: serve requests until the pipe closes.
    ``output`` becomes its file descriptors 1 and 2; the daemon logs what arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when we stop
    _die_with_parent(parent_pid)
    if limits.nice:
        os.nice(limits.nice)  # batch work: the daemon's API and watcher go first
    configure_logging(limits.log_level, limits.log_to_stderr)
    redirect_output(output)  # CTranslate2's warnings, progress bars, tracebacks: in the log's format
    engine = factory(options)
    conn.send(WorkerReady(time.time()))
    trim_when_idle = False  # a job's freed heap is still held
    while True:
        if trim_when_idle:
            trim_when_idle = False
            if not conn.poll(heap.IDLE_TRIM_SECONDS):
                heap.give_back_freed()  # idle: nobody waits for it
                continue
        elif not conn.poll(limits.idle_unload_seconds if engine.loaded_models() else None):
            engine.unload()
            heap.give_back_freed()
            conn.send(ModelsUnloaded())
            continue
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(request, LoadRequest):
            _serve_load(conn, engine, request)
            heap.give_back_freed()  # the imports' and the loader's garbage: ~30 MB, once
        elif isinstance(request, TranscribeJob):
            reply, seconds = _serve_transcribe(conn, engine, request, limits.progress_interval_seconds)
            trim_when_idle = not heap.trim_after_job(seconds, limits.idle_memory_limit_mb)
            conn.send(reply)


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill us when the daemon dies, even by SIGKILL, so no orphan
    keeps transcribing (and holding memory) for a daemon that is gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the worker exits when it next finds the pipe closed
    # The parent died before prctl took effect: we were re-parented.  Compared
    # with the pid the daemon gave us, never with 1: in a container without an
    # init the daemon *is* pid 1, and "getppid() == 1" made every worker exit at
    # start, so the image failed every file with worker_crashed (issue 13).
    if os.getppid() != parent_pid:
        os._exit(0)


def _serve_load(conn: Connection, engine: Engine, request: LoadRequest) -> None:
    try:
        _ensure_loaded(conn, engine, request.settings)
    except (BrokenPipeError, EOFError):
        return  # the daemon stopped while we loaded: no fault, and the next recv() ends this worker
    except Exception as exc:  # noqa: BLE001 -- a preload failure is reported again by the job that needs the model
        log.warning("Could not preload model %s: %s", request.settings.model_size, exc)


def _ensure_loaded(conn: Connection, engine: Engine, settings: TranscriptionSettings) -> None:
    """Load the model if needed, bracketed by messages so the daemon can keep
    loading time out of the job's transcription deadline."""
    if engine.is_loaded(settings):
        return
    conn.send(ModelLoading(settings.model_size, time.time()))
    started = time.monotonic()
    ok = False
    try:
        engine.load(settings)
        ok = True
    finally:
        conn.send(ModelLoaded(settings.model_size, time.time(), time.monotonic() - started, ok))


def _serve_transcribe(
    conn: Connection, engine: Engine, request: TranscribeJob, interval: float,
) -> tuple[TranscribeDone | TranscribeFailed, float]:
    """The reply, and the seconds of audio decoded for it."""
    report = _throttled_reporter(conn, request.job_id, interval)
    clip: audio.Clip | None = None
    try:
        report(Stage.LOADING_AUDIO, 0.0)
        # An engine that transcribes long files a window at a time gets them a window at a time.
        window_for = getattr(engine, "window_for", None)
        clip = audio.load(Path(request.path), window_for(request.settings) if window_for else None)
        if not engine.is_loaded(request.settings):
            report(Stage.LOADING_MODEL, 0.0)
            _ensure_loaded(conn, engine, request.settings)
        if clip.rest is not None or clip.seconds >= heap.LONG_FILE_SECONDS:
            report = heap.trimming(report)
        transcript = engine.transcribe(clip, request.settings, report)
    except JobError as exc:
        return TranscribeFailed(request.job_id, exc.code, exc.message), _seconds(clip)
    except Exception as exc:  # the last line of defence: classify, never die silently
        error = classify_engine_exception(exc)
        log.exception("Unexpected engine failure")
        return TranscribeFailed(request.job_id, error.code, error.message), _seconds(clip)
    finally:
        if clip is not None:
            clip.close()  # ffmpeg, should a long file's job end early
    return TranscribeDone(request.job_id, transcript, round(clip.seconds, 3)), clip.seconds


def _seconds(clip: audio.Clip | None) -> float:
    return clip.seconds if clip is not None else 0.0


def _throttled_reporter(conn: Connection, job_id: str, interval: float):  # type: ignore[no-untyped-def]
    """Send a progress message on a stage change, else at most every ``interval`` s."""
    last: dict[str, object] = {"stage": None, "at": 0.0}

    def report(stage: Stage, percentage: float) -> None:
        now = time.monotonic()
        if stage == last["stage"] and now - float(last["at"]) < interval and percentage < 100:  # type: ignore[arg-type]
            return
        last["stage"], last["at"] = stage, now
        conn.send(ProgressUpdate(job_id, stage, percentage))

    return report
