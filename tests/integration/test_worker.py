"""The worker process seen from the daemon: what counts against a file's deadline."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

import pytest

from tests.fake_engine import FakeEngine, SlowStartingEngine
from tests.helpers import make_config, write_tone
from transcriber.daemon import default_settings, engine_options, worker_limits
from transcriber.errors import JobTimeoutError
from transcriber.worker import LoadRequest, _serve_load, run_once


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
    audio = write_tone(tmp_path / "hang.wav")
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
