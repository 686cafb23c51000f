"""The worker process seen from the daemon: what counts against a file's deadline."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from tests.fake_engine import BLOAT_MB, FakeEngine, SlowStartingEngine, named
from tests.helpers import make_config, wait_for, write_tone
from transcriber.errors import JobTimeoutError
from transcriber.scheduler.daemon import default_settings, engine_options, worker_limits
from transcriber.worker.child import _serve_load
from transcriber.worker.handle import WorkerHandle, run_once
from transcriber.worker.protocol import LoadRequest


def test_a_slow_worker_start_is_not_charged_to_the_file(tmp_path: Path) -> None:
    # Regression: a respawned worker on a loaded machine took longer than a short
    # timeout_seconds to import, and every file behind a timeout timed out too.
    config = make_config(tmp_path)
    audio = write_tone(tmp_path / "short.wav")
    timeout = SlowStartingEngine.STARTUP_SECONDS * 2 / 3  # shorter than the start, ample for the work
    outcome = run_once(SlowStartingEngine, engine_options(config), worker_limits(config), audio,
                       default_settings(config), timeout_seconds=timeout)
    assert outcome.transcript.text == "short"


def test_the_work_itself_is_still_bounded(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    audio = write_tone(tmp_path / named("hang", "file.wav"))
    with pytest.raises(JobTimeoutError, match="timeout_seconds"):
        run_once(SlowStartingEngine, engine_options(config), worker_limits(config), audio,
                 default_settings(config), timeout_seconds=1.0)


def test_a_preload_cut_short_by_the_daemon_stopping_is_not_reported_as_a_fault(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # A daemon stopped right after start used to log "Could not preload model base:
    # [Errno 32] Broken pipe" from its worker on every clean shutdown.
    config = make_config(tmp_path)
    daemon_end, worker_end = multiprocessing.Pipe()
    daemon_end.close()
    with caplog.at_level(logging.DEBUG, logger="Worker"):
        _serve_load(worker_end, FakeEngine(engine_options(config)), LoadRequest(default_settings(config)))
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_worker_that_keeps_memory_over_the_idle_ceiling_is_restarted_warm_but_never_per_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 13: a worker that held 1.9 GB between files was OOM-killed by the next long
    # one.  The fake engine's bloat-- files keep 400 MB alive, as a leak would.
    config = make_config(tmp_path, {"processing": {"worker_idle_memory_limit_mb": 256}})
    assert worker_limits(config).idle_memory_limit_mb == 256
    settings = default_settings(config)
    worker = WorkerHandle(FakeEngine, engine_options(config), worker_limits(config),
                          config.processing.worker_memory_limit_mb)
    audio = write_tone(tmp_path / "call.wav")
    bloat = write_tone(tmp_path / named("bloat", "file.wav"))
    bloat_text = bloat.stem  # its transcript

    def run(path: Path) -> str:
        return worker.run("job", path, settings, 60, threading.Event(), lambda *_: None).transcript.text

    try:
        worker.preload(settings)
        assert run(audio) == "call" and worker.starts == 1  # the fake worker holds ~60 MB: under it
        first = worker.pid
        assert run(bloat) == bloat_text
        assert worker.starts == 2 and worker.pid != first and worker.idle_recycles == 1  # recycled
        wait_for(lambda: (worker.drain(), worker.models_loaded)[1], what="the new worker warm")
        assert worker.memory_bytes() < 256 * 2**20 < BLOAT_MB * 2**20

        assert run(audio) == "call" and run(bloat) == bloat_text  # it leaked again, after its second job
        assert worker.starts == 3 and not worker.idle_limit_given_up
        with caplog.at_level(logging.WARNING, logger="Worker"):
            assert run(bloat) == bloat_text  # a fresh worker over the ceiling after one job: no loop
        assert worker.starts == 3 and worker.idle_limit_given_up
        assert "is no longer applied" in caplog.text
        assert run(bloat) == bloat_text and worker.starts == 3  # the hard limit (4 GB) still applies
    finally:
        worker.stop()


def test_only_the_worker_gets_one_malloc_arena_and_an_operators_choice_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The variable used to be set in the daemon's own environment, for everything it started.
    config = make_config(tmp_path)

    def worker_environment(value: str | None) -> tuple[str | None, str | None]:
        """(the worker's MALLOC_ARENA_MAX, the test process's after the start)."""
        if value is None:
            monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
        else:
            monkeypatch.setenv("MALLOC_ARENA_MAX", value)
        worker = WorkerHandle(FakeEngine, engine_options(config), worker_limits(config),
                              config.processing.worker_memory_limit_mb)
        try:
            worker.start()
            assert worker.pid is not None
            environ = Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"\0")
            found = [entry.split(b"=", 1)[1].decode() for entry in environ if entry.startswith(b"MALLOC_ARENA_MAX=")]
            return (found[0] if found else None), os.environ.get("MALLOC_ARENA_MAX")
        finally:
            worker.stop()

    assert worker_environment(None) == ("1", None)
    assert worker_environment("4") == ("4", "4")
