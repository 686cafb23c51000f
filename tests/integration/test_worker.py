"""The worker process seen from the daemon: what counts against a file's deadline."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_engine import SlowStartingEngine
from tests.helpers import make_config, write_tone
from transcriber.daemon import default_settings, engine_options, worker_limits
from transcriber.errors import JobTimeoutError
from transcriber.worker import run_once


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
