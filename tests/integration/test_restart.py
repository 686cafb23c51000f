"""Restarts: the queue is rebuilt from the sidecars; a second instance is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import REPO, in_progress_of, result_of, wait_for, write_config, write_tone
from transcriber.errors import AlreadyRunningError
from transcriber.folder.sidecars import format_time


def _sidecar(filename: str, status: str, attempts: list[dict], **extra: object) -> dict:
    document = {
        "task_id": f"task-{filename}", "filename": filename, "creation_time": "2026-01-01T00:00:00.000Z",
        "status": status, "source": "scan", "priority": 2, "current_attempt": len(attempts), "max_attempts": 3,
        "next_attempt_at": None,
        "settings": {"model_size": "base", "language": "ru", "temperature": 0.1, "compute_type": "int8",
                     "device": "cpu", "debug": False},
        "progress_info": {"stage": "queued", "percentage": 0},
        "attempts": attempts,
    }
    document.update(extra)
    return document


def _attempt(number: int, status: str, code: str | None = None) -> dict:
    return {
        "attempt_number": number, "start_time": "2026-01-01T00:00:01.000Z",
        "end_time": None if status == "running" else "2026-01-01T00:00:02.000Z", "status": status,
        "error": {"code": code, "message": "earlier failure"} if code else None,
    }


def _write(shared: Path, filename: str, document: dict) -> None:
    write_tone(shared / filename)
    (shared / f"{filename}.in_progress").write_text(json.dumps(document), encoding="utf-8")


def test_restart_picks_up_queued_retry_wait_and_processing_files(start_daemon, shared: Path) -> None:
    due = format_time(datetime.now(UTC) + timedelta(seconds=1))
    _write(shared, "was-queued.wav", _sidecar("was-queued.wav", "queued", []))
    _write(shared, "was-waiting.wav", _sidecar(
        "was-waiting.wav", "retry_wait", [_attempt(1, "failed", "timeout")], next_attempt_at=due,
    ))
    _write(shared, "was-processing.wav", _sidecar("was-processing.wav", "processing", [_attempt(1, "running")]))
    start_daemon()
    for name in ("was-queued.wav", "was-waiting.wav", "was-processing.wav"):
        wait_for(lambda n=name: result_of(shared, n), what=name)
    assert result_of(shared, "was-queued.wav")["metadata"]["attempts"] == 1
    assert result_of(shared, "was-queued.wav")["task_id"] == "task-was-queued.wav"  # the same job, not a new one
    assert result_of(shared, "was-waiting.wav")["metadata"]["attempts"] == 2
    # The processing one died with the daemon: that counts as a failed attempt.
    assert result_of(shared, "was-processing.wav")["metadata"]["attempts"] == 2


def test_processing_at_its_last_attempt_goes_to_review_at_restart(start_daemon, shared: Path) -> None:
    attempts = [_attempt(1, "failed", "timeout"), _attempt(2, "failed", "timeout"), _attempt(3, "running")]
    _write(shared, "last.wav", _sidecar("last.wav", "processing", attempts))
    start_daemon()
    sidecar = wait_for(lambda: in_progress_of(shared / "manual_review", "last.wav"), what="quarantine")
    assert sidecar["attempts"][-1]["error"]["code"] == "daemon_died"
    assert sidecar["current_attempt"] == 3


def test_restart_cleans_what_a_crash_left_half_done(start_daemon, shared: Path) -> None:
    # Crash after .result was written but before .in_progress was removed.
    _write(shared, "finished.wav", _sidecar("finished.wav", "processing", [_attempt(1, "running")]))
    (shared / "finished.wav.result").write_text('{"task_id": "task-finished.wav"}', encoding="utf-8")
    # Crash in the middle of a quarantine: audio moved, sidecar not yet.
    review = shared / "manual_review"
    review.mkdir()
    write_tone(review / "half-moved.wav")
    (shared / "half-moved.wav.in_progress").write_text(
        json.dumps(_sidecar("half-moved.wav", "error", [_attempt(1, "failed", "no_audio_stream")])),
    )
    # A sidecar whose audio is gone, and an unreadable one.
    (shared / "orphan.wav.in_progress").write_text(json.dumps(_sidecar("orphan.wav", "queued", [])))
    write_tone(shared / "torn.wav")
    (shared / "torn.wav.in_progress").write_text('{"task_id": "abc", "stat')
    start_daemon()
    assert not (shared / "finished.wav.in_progress").exists()
    assert result_of(shared, "finished.wav") == {"task_id": "task-finished.wav"}
    assert in_progress_of(review, "half-moved.wav")["status"] == "error"
    assert not (shared / "half-moved.wav.in_progress").exists()
    assert not (shared / "orphan.wav.in_progress").exists()
    wait_for(lambda: result_of(shared, "torn.wav"), what="the file with a torn sidecar, treated as new")


def test_a_forced_rerun_survives_a_restart(start_daemon, shared: Path) -> None:
    # POST /transcribe with force on a completed file queues a new task beside the old
    # .result; recovery took any .result for "finished" and silently dropped the re-run
    # the client had been told was queued (found while modelling forced re-runs for
    # tests/reliability/test_state_model.py).
    _write(shared, "again.wav", _sidecar("again.wav", "queued", [], source="api", priority=1))
    (shared / "again.wav.result").write_text('{"task_id": "an-earlier-task"}', encoding="utf-8")
    # A run that stopped mid-way through the re-run counts a failed attempt, as any other.
    _write(shared, "again-2.wav", _sidecar("again-2.wav", "processing", [_attempt(1, "running")]))
    (shared / "again-2.wav.result").write_text('{"task_id": "an-earlier-task"}', encoding="utf-8")
    start_daemon()
    for name in ("again.wav", "again-2.wav"):
        result = wait_for(lambda n=name: (r := result_of(shared, n)) and r["task_id"] == f"task-{n}" and r,
                          what=f"the re-run of {name}")
        assert not (shared / f"{name}.in_progress").exists()
    assert result["metadata"]["attempts"] == 2


def test_graceful_shutdown_leaves_the_interrupted_job_queued(start_daemon, shared: Path, tmp_path: Path) -> None:
    from transcriber.domain.job import JobStatus

    daemon = start_daemon()
    write_tone(shared / "slow--shutdown.wav")
    wait_for(lambda: (j := daemon.job("slow--shutdown.wav")) and j.status is JobStatus.PROCESSING, what="processing")
    daemon.stop(grace_seconds=0.2)
    sidecar = in_progress_of(shared, "slow--shutdown.wav")
    assert sidecar["status"] == "queued"
    assert sidecar["attempts"][-1]["status"] == "interrupted"
    assert not (shared / "slow--shutdown.wav.result").exists()
    start_daemon()
    result = wait_for(lambda: result_of(shared, "slow--shutdown.wav"), what="the result after restart")
    assert result["metadata"]["attempts"] == 1  # an interruption is not a failed attempt


def test_graceful_shutdown_lets_a_short_job_finish(start_daemon, shared: Path) -> None:
    from transcriber.domain.job import JobStatus

    daemon = start_daemon()
    write_tone(shared / "slow--finish.wav")
    wait_for(lambda: (j := daemon.job("slow--finish.wav")) and j.status is JobStatus.PROCESSING, what="processing")
    daemon.stop(grace_seconds=10)
    assert result_of(shared, "slow--finish.wav") is not None
    assert not (shared / "slow--finish.wav.in_progress").exists()


def test_second_instance_in_process_is_refused(start_daemon, tmp_path: Path) -> None:
    start_daemon()
    with pytest.raises(AlreadyRunningError, match=rf"pid {os.getpid()}.*\.transcriber\.lock"):
        start_daemon()


def test_second_instance_process_exits_non_zero_at_once(start_daemon, tmp_path: Path) -> None:
    start_daemon()
    config = write_config(tmp_path)
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "transcriber", "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert completed.returncode == 1
    assert time.monotonic() - started < 10
    assert ".transcriber.lock" in completed.stdout + completed.stderr
    assert f"pid {os.getpid()}" in completed.stdout + completed.stderr


def test_a_request_waiting_for_its_file_is_released_after_a_restart(start_daemon, shared) -> None:
    # A daemon stopped while a requested file was still being copied: the next one
    # waits for the file to be complete again, then transcribes it (issue 13).
    first = start_daemon({"watch": {"stability_seconds": 30, "close_settle_seconds": 30}})
    write_tone(shared / "copied-across-restart.wav")
    first.submit("copied-across-restart.wav", complete=False)
    assert first.job("copied-across-restart.wav").waiting_for_file
    first.stop(grace_seconds=0)
    second = start_daemon({"watch": {"stability_seconds": 2, "close_settle_seconds": 2}})
    job = second.job("copied-across-restart.wav")
    assert job is not None and job.waiting_for_file, "queued before the watcher found the file complete"
    assert second.queue_position("copied-across-restart.wav") is None
    wait_for(lambda: result_of(shared, "copied-across-restart.wav"), what="the result after the restart")
