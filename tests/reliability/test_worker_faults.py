"""Faults in the inference worker never stall the folder or lose a file (docs/RELIABILITY.md).

Promises proved here, on a real folder, the real watcher, queue, slot and
worker process, with the fake engine:

- **A crash loop is bounded.** A file that kills the worker on every attempt
  reaches ``manual_review/`` after exactly ``processing.max_retry_attempts``
  attempts, each recorded as ``worker_crashed`` (attempt numbers are persisted
  before the work starts), while many normal files dropped before, between and
  after several such files are each transcribed exactly once.
- **A hung worker is killed by the deadline.** A worker frozen mid-file
  (SIGSTOP: alive, silent, holding its file) is killed once
  ``processing.timeout_seconds`` pass, respawned, and the file retried: its
  attempt history reads ``timeout`` then success.  Meanwhile the daemon's API
  answers, the watcher queues new files, and a file queued behind the frozen
  one is transcribed after the respawn.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.fake_engine import named
from tests.helpers import in_progress_of, result_of, wait_for, wait_for_rescans, write_tone
from transcriber.domain.job import AttemptStatus, Job, JobStatus, Stage
from transcriber.folder.sidecars import parse_time
from transcriber.scheduler.daemon import Daemon
from transcriber.scheduler.events import JobEvent

MAX_ATTEMPTS = 3


class EventLog:
    """Every store event, as (event, filename, job), in order: what the daemon did, not just what is on disk."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Job | None]] = []

    def __call__(self, event: JobEvent) -> None:
        self.events.append((event.event, event.job.filename if event.job else "", event.job))

    def count(self, kind: str) -> Counter[str]:
        return Counter(name for event, name, _ in self.events if event == kind)

    def jobs(self, kind: str, filename: str) -> list[Job]:
        return [job for event, name, job in self.events if event == kind and name == filename and job]


def _paused_daemon(start_daemon, shared: Path, overrides: dict) -> tuple[Daemon, EventLog]:
    """A daemon that starts paused, so the event log misses nothing; remove ``.pause`` to go."""
    shared.mkdir(exist_ok=True)
    (shared / ".pause").touch()
    daemon = start_daemon(overrides)
    log = EventLog()
    daemon.store.add_listener(log)
    return daemon, log


def test_crashing_files_reach_review_after_exactly_max_attempts_while_others_flow(
    start_daemon, shared: Path,
) -> None:
    daemon, log = _paused_daemon(start_daemon, shared, {
        "processing": {"max_retry_attempts": MAX_ATTEMPTS, "retry_backoff_seconds": 0.2,
                       "retry_backoff_max_seconds": 0.5},
    })
    crashers = [named("crash", "a.wav"), named("crash", "b.wav"), named("crash", "c.wav")]
    normal = [f"normal-{n:02d}.wav" for n in range(24)]
    # Before the start of work: 8 normal files around the first crasher.
    for name in [*normal[:4], crashers[0], *normal[4:8]]:
        write_tone(shared / name, seconds=0.3)
    (shared / ".pause").unlink()
    # While it crashes: the rest, a crasher after every 8 normal files.
    wait_for(lambda: log.count("engine_run")[crashers[0]] >= 1, timeout=60, what="the first crash")
    for name in [*normal[8:16], crashers[1], *normal[16:20], crashers[2], *normal[20:]]:
        write_tone(shared / name, seconds=0.3)

    review = shared / "manual_review"
    for name in crashers:
        wait_for(lambda n=name: in_progress_of(review, n), timeout=180, what=f"{name} in manual_review")
    for name in normal:
        wait_for(lambda n=name: result_of(shared, n), timeout=180, what=f"the result of {name}")
    wait_for(lambda: not daemon.store.active(), timeout=30, what="an empty job table")
    settled = len(log.events)
    wait_for_rescans(daemon.watcher)  # two more rescans: nothing may be found again

    for name in crashers:
        sidecar = in_progress_of(review, name)
        assert sidecar["status"] == "error"
        assert sidecar["current_attempt"] == MAX_ATTEMPTS and sidecar["max_attempts"] == MAX_ATTEMPTS
        assert [a["attempt_number"] for a in sidecar["attempts"]] == list(range(1, MAX_ATTEMPTS + 1))
        assert {a["status"] for a in sidecar["attempts"]} == {"failed"}
        assert {a["error"]["code"] for a in sidecar["attempts"]} == {"worker_crashed"}
        assert all(a["end_time"] for a in sidecar["attempts"])
        assert (review / name).is_file()
        assert not (shared / name).exists() and not (shared / f"{name}.in_progress").exists()
        assert not (shared / f"{name}.result").exists() and not (review / f"{name}.result").exists()
        assert log.count("engine_run")[name] == MAX_ATTEMPTS, name
        assert log.count("quarantined")[name] == 1, name

    for name in normal:
        result = result_of(shared, name)
        assert result["transcription"]["text"] == name.removesuffix(".wav")
        assert result["metadata"]["attempts"] == 1
        assert not (shared / f"{name}.in_progress").exists()
        assert log.count("engine_run")[name] == 1, name
        assert log.count("completed")[name] == 1, name

    # The crashes did not hold the others up: normal files finished between
    # the first crash and the last one.
    kinds = [(event, name) for event, name, _ in log.events if event in ("engine_run", "completed")]
    first_crash = kinds.index(("engine_run", crashers[0]))
    last_crash = max(i for i, (event, name) in enumerate(kinds) if name in crashers)
    assert any(event == "completed" for event, _ in kinds[first_crash:last_crash])
    # A crashed worker is started again by the next job; the last crash may have had none yet.
    assert daemon.workers()[0].restarts >= len(crashers) * MAX_ATTEMPTS - 1
    assert len(log.events) == settled, "something was queued again after everything settled"
    assert sorted(p.name for p in review.iterdir()) == sorted([*crashers, *(f"{n}.in_progress" for n in crashers)])


@pytest.fixture
def stopped_pids() -> Iterator[list[int]]:
    """Processes the test froze; thawed at teardown whatever happened (the daemon then stops them)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def test_a_frozen_worker_is_killed_at_the_deadline_and_the_file_retried(
    start_api, shared: Path, stopped_pids: list[int],
) -> None:
    shared.mkdir(exist_ok=True)
    (shared / ".pause").touch()
    harness = start_api({"processing": {"timeout_seconds": 10, "max_retry_attempts": MAX_ATTEMPTS,
                                        "retry_backoff_seconds": 0.2}})
    daemon, client = harness.daemon, harness.client
    log = EventLog()
    daemon.store.add_listener(log)
    name = named("slow", "frozen.wav")
    write_tone(shared / name, seconds=1.0)
    wait_for(lambda: daemon.job(name), what="queued")
    (shared / ".pause").unlink()

    running = wait_for(lambda: (j := daemon.job(name)) and j.progress.stage is Stage.TRANSCRIBING and j,
                       timeout=60, what="the worker inside the engine")
    assert running.status is JobStatus.PROCESSING and running.current_attempt == 1
    pid = daemon.workers()[0].pid
    worker = psutil.Process(pid)
    assert worker.ppid() == os.getpid()  # our own child, the spawned worker
    os.kill(pid, signal.SIGSTOP)
    stopped_pids.append(pid)
    wait_for(lambda: worker.status() == psutil.STATUS_STOPPED, what="the worker to stop")

    # Frozen worker: the daemon, its watcher and its API carry on.
    write_tone(shared / "behind.wav", seconds=0.5)
    queued = wait_for(lambda: daemon.job("behind.wav"), timeout=30, what="the watcher to queue a new file")
    assert queued.status is JobStatus.QUEUED
    status = client.get(f"/status/{name}")
    assert status.status_code == 200 and status.json()["status"] == "processing"
    assert client.get("/status/behind.wav").json()["status"] == "queued"
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["worker"][0]["current_file"] == name
    assert worker.status() == psutil.STATUS_STOPPED, "still frozen while the daemon answered"

    # The deadline kills it; the sidecar on disk records the timeout, the retry runs on a new worker.
    retrying = wait_for(lambda: (s := in_progress_of(shared, name)) and s["attempts"][0]["status"] == "failed" and s,
                        timeout=60, what="the timeout in the sidecar")
    assert retrying["attempts"][0]["error"]["code"] == "timeout"
    assert "timeout_seconds" in retrying["attempts"][0]["error"]["message"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    result = wait_for(lambda: result_of(shared, name), timeout=60, what="the retried file's result")
    assert result["metadata"]["attempts"] == 2
    assert result["duration_seconds"] == 1.0
    (completed,) = log.jobs("completed", name)
    assert [(a.attempt_number, a.status) for a in completed.attempts] == [
        (1, AttemptStatus.FAILED), (2, AttemptStatus.SUCCEEDED)]
    assert completed.attempts[0].error is not None and completed.attempts[0].error.code == "timeout"

    behind = wait_for(lambda: result_of(shared, "behind.wav"), timeout=60, what="the file queued behind it")
    assert behind["metadata"]["attempts"] == 1
    assert parse_time(behind["processing_start"]) > completed.attempts[0].end_time  # after the kill
    assert log.count("engine_run") == Counter({name: 2, "behind.wav": 1})
    new_pid = daemon.workers()[0].pid
    assert new_pid is not None and new_pid != pid
    assert client.get("/health").json()["worker"][0]["restarts"] >= 1
