"""Every line the daemon prints is in the specification's format (issue 13, point 15):
``[YYYY-MM-DD HH:MM:SS] [LEVEL] [Module] Message`` — its own loggers, uvicorn's access
and error logs, WhisperX's loggers, Python warnings and the worker's native output —
with the real daemon process, the real WhisperX and a real request."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import Speech
from tests.helpers import REPO, result_of, wait_for, write_config

pytestmark = pytest.mark.e2e

LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] \[[^\]]+\] .*$")


def test_every_line_of_a_real_run_is_in_the_log_format(tmp_path: Path, english: Speech) -> None:
    port = free_port()
    config = write_config(tmp_path, {
        "api": {"enabled": True, "port": port, "access_log": True},
        "whisperx": {"language": "en", "model_size": "tiny.en"},
        "logging": {"level": "INFO"},
    })
    (tmp_path / "shared").mkdir()
    daemon = subprocess.Popen(
        [sys.executable, "-W", "always", "-m", "transcriber", "--config", str(config)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: _answers(port), timeout=120, what="the API")
        shutil.copy(english.path, tmp_path / "shared" / "speech.mp3")
        wait_for(lambda: result_of(tmp_path / "shared", "speech.mp3"), timeout=240, what="the result")
        assert httpx.get(f"http://127.0.0.1:{port}/status/speech.mp3", timeout=5).status_code == 200
        daemon.send_signal(signal.SIGTERM)
        stdout, stderr = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, stderr[-3000:]
    lines = stdout.splitlines()
    strays = [line for line in lines + stderr.splitlines() if not LINE.match(line)]
    assert not strays, "lines outside the log format:\n" + "\n".join(strays[:20])
    assert any("[uvicorn.access]" in line and "GET /status/speech.mp3" in line for line in lines)
    assert any("[Daemon]" in line for line in lines) and any("[Worker]" in line for line in lines)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False
