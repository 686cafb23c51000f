"""Workers stay up when the daemon is pid 1 (a container without an init), and a
worker that cannot stay up turns /health unhealthy (issue 13, point 1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fake_engine import DyingAtStartEngine
from tests.helpers import REPO, in_progress_of, wait_for, write_tone

PID1_SCRIPT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from tests.fake_engine import FakeEngine
    from tests.helpers import make_config
    from transcriber.scheduler.daemon import default_settings, engine_options, worker_limits
    from transcriber.worker.handle import run_once
    assert os.getpid() == 1, os.getpid()
    folder = Path(sys.argv[1])
    config = make_config(folder)
    outcome = run_once(FakeEngine, engine_options(config), worker_limits(config), folder / "pid-one.wav",
                       default_settings(config), timeout_seconds=60)
    print("TEXT=" + outcome.transcript.text)
""")


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="a pid namespace needs util-linux unshare and root (both in CI)")
def test_a_worker_stays_up_under_a_daemon_that_is_pid_1(tmp_path: Path) -> None:
    # Regression: "if os.getppid() == 1: exit" made every worker of a daemon running
    # as pid 1 (plain `docker run`, no --init) exit at start: worker_crashed for every file.
    write_tone(tmp_path / "pid-one.wav")
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", PID1_SCRIPT, str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TEXT=pid-one" in done.stdout


def test_health_is_unhealthy_when_no_worker_can_stay_up(start_api) -> None:
    harness = start_api({"whisperx": {"preload_model": True}}, engine=DyingAtStartEngine)

    def crash_looping() -> dict | None:
        response = harness.client.get("/health")
        body = response.json()
        return body if body["worker"][0]["state"] == "crash_loop" else None

    body = wait_for(crash_looping, timeout=60, interval=0.3, what="the worker to be seen crash-looping")
    assert body["status"] == "unhealthy"
    assert "exit code 0" in body["worker"][0]["last_death"]
    assert harness.client.get("/health").status_code == 503


def test_a_worker_that_cannot_start_costs_a_good_file_no_attempt(start_daemon, shared: Path) -> None:
    # The image's workers exited at start and every file reached manual_review/ after
    # three "worker_crashed" attempts; the host's trouble is not the file's.
    start_daemon({"processing": {"max_retry_attempts": 2}}, engine=DyingAtStartEngine)
    write_tone(shared / "good.wav")

    def start_failures() -> list[dict] | None:
        sidecar = in_progress_of(shared, "good.wav") or {}
        tries = [a for a in sidecar.get("attempts", []) if (a.get("error") or {}).get("code") == "worker_start_failed"]
        return tries if len(tries) >= 3 else None

    tries = wait_for(start_failures, timeout=60, what="three failed worker starts")
    assert all(attempt["status"] == "interrupted" for attempt in tries)
    assert not (shared / "manual_review" / "good.wav").exists()
