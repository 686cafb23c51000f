"""Crashes of the whole daemon process, and two daemons on one folder.

Promises proved here, on real daemon processes (``tests.reliability.fake_daemon``:
the real CLI, lock, watcher, dispatcher and worker process, with the fake engine):

1. **A crash anywhere loses nothing and does nothing twice** (docs/RELIABILITY.md,
   §1.4, §3).  ``test_sigkill_at_random_moments_loses_nothing`` kills the
   daemon with SIGKILL at random moments — while it starts, recovers, scans,
   transcribes, writes progress, results or quarantines — and restarts it,
   round after round.  After every round: every sidecar parses; no result is
   torn or belongs to another file; attempt counts never go down and never
   pass ``max_retry_attempts``; a file once completed keeps the very same
   result (never transcribed again) and a file once in ``manual_review/``
   stays there; every audio file exists exactly once; the worker died with
   the daemon (no orphan).  After a final clean run every file is completed
   or in ``manual_review/`` (only ever for ``daemon_died``), and no temp file
   of an atomic write is left behind (a restart removes those a kill left:
   ``test_restart_removes_temp_files_a_killed_write_left``).  The random seed
   is printed; replay with ``RELIABILITY_SEED=<seed>`` (and
   ``RELIABILITY_CRASH_ROUNDS=<n>``).

2. **One daemon per folder, and a crash frees the folder** (docs/RELIABILITY.md, the
   lock).  A second daemon process exits non-zero at once, naming the lock
   and the holder's pid; once the first is SIGKILLed the second starts,
   finishes the file the first was transcribing and transcribes new ones.
   Two daemons racing to start: exactly one runs.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, result_of, wait_for, write_config, write_tone
from tests.reliability.harness import (
    STARTED_LINE,
    FolderView,
    folder_view,
    kill,
    read_log,
    spawn_fake_daemon,
    stop,
    tag_of,
    tagged_processes,
    wait_for_log,
)

DEFAULT_SEED = 20261124
ROUNDS = int(os.environ.get("RELIABILITY_CRASH_ROUNDS", "24"))
MAX_ATTEMPTS = 3
INITIAL_FILES = 6
NEW_FILE_CHANCE = 0.4
ORPHAN_TIMEOUT = 20.0
IN_PROGRESS_STATUSES = {"queued", "processing", "retry_wait", "error"}


def _crash_config(tmp_path: Path) -> Path:
    # Progress every 0.1 s: many more sidecar writes for a kill to land in.
    return write_config(tmp_path, {"processing": {
        "max_retry_attempts": MAX_ATTEMPTS, "progress_interval_seconds": 0.1, "worker_nice": 0,
    }})


@dataclass
class History:
    """What earlier rounds saw, to check that nothing goes backwards."""

    seed: int
    dropped: set[str] = field(default_factory=set)
    attempts: dict[str, tuple[int, int]] = field(default_factory=dict)  # (current_attempt, len(attempts))
    task_ids: dict[str, str] = field(default_factory=dict)
    completed: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # the result's identity
    reviewed: set[str] = field(default_factory=set)
    kills: Counter[str] = field(default_factory=Counter)
    label: str = ""

    def fail(self, message: str) -> str:
        return f"[RELIABILITY_SEED={self.seed} {self.label}] {message}"

    def check(self, view: FolderView) -> None:
        assert not view.unreadable(), self.fail(f"unreadable sidecars: {view.unreadable()}")
        assert not view.review_results, self.fail(f"a result in manual_review/: {sorted(view.review_results)}")
        self._check_audio(view)
        for name, document in view.results.items():
            self._check_result(name, document)
        for name, document in view.in_progress.items():
            self._check_in_progress(name, document, in_review=False)
        for name, document in view.review_in_progress.items():
            self._check_in_progress(name, document, in_review=True)
        for name in self.completed:
            assert name in view.results, self.fail(f"{name}: its result vanished")
        for name in self.reviewed:
            assert name in view.review_audio, self.fail(f"{name} left manual_review/")
        self.reviewed |= view.review_audio

    def _check_audio(self, view: FolderView) -> None:
        unknown = (view.audio | view.review_audio) - self.dropped
        assert not unknown, self.fail(f"audio nobody dropped (a twin or a rename?): {sorted(unknown)}")
        for name in self.dropped:
            copies = (name in view.audio) + (name in view.review_audio)
            assert copies == 1, self.fail(f"{name} exists {copies} times (shared/ and manual_review/)")

    def _check_result(self, name: str, document: dict[str, Any] | None) -> None:
        assert document is not None
        stem = name.rsplit(".", 1)[0]
        assert document["filename"] == name, self.fail(f"{name}.result names {document['filename']}")
        assert document["transcription"]["text"] == stem, self.fail(f"{name}.result is another file's transcript")
        assert name not in self.reviewed, self.fail(f"{name} is both in manual_review/ and completed")
        attempts = document["metadata"]["attempts"]
        assert attempts <= MAX_ATTEMPTS, self.fail(f"{name} completed after {attempts} attempts")
        assert attempts >= self.attempts.get(name, (0, 0))[0], self.fail(f"{name}: attempts went down to {attempts}")
        self._same_task(name, document["task_id"])
        identity = (document["task_id"], document["processing_start"], document["processing_end"])
        earlier = self.completed.setdefault(name, identity)
        assert earlier == identity, self.fail(f"{name} was transcribed again: {earlier} then {identity}")

    def _check_in_progress(self, name: str, document: dict[str, Any] | None, in_review: bool) -> None:
        assert document is not None
        where = "manual_review/" if in_review else ""
        assert document["filename"] == name, self.fail(f"{where}{name}.in_progress names {document['filename']}")
        status = document["status"]
        allowed = {"error"} if in_review else IN_PROGRESS_STATUSES
        assert status in allowed, self.fail(f"{where}{name}.in_progress has status {status}")
        if name in self.completed and not in_review:
            return  # killed between writing .result and removing .in_progress; recovery discards it
        assert name not in self.completed, self.fail(f"{name} is completed and in manual_review/")
        current, count = document["current_attempt"], len(document["attempts"])
        assert document["max_attempts"] == MAX_ATTEMPTS
        assert current <= MAX_ATTEMPTS and count <= MAX_ATTEMPTS, self.fail(
            f"{name}: attempt {current} with {count} attempts recorded, max {MAX_ATTEMPTS}")
        seen_current, seen_count = self.attempts.get(name, (0, 0))
        assert current >= seen_current and count >= seen_count, self.fail(
            f"{name}: attempts went down from ({seen_current}, {seen_count}) to ({current}, {count})")
        self.attempts[name] = (current, count)
        for attempt in document["attempts"]:
            if attempt["status"] == "failed":  # only kills fail these files
                assert attempt["error"]["code"] == "daemon_died", self.fail(f"{name}: {attempt}")
        self._same_task(name, document["task_id"])

    def _same_task(self, name: str, task_id: str) -> None:
        earlier = self.task_ids.setdefault(name, task_id)
        assert earlier == task_id, self.fail(f"{name} became a new job ({earlier} -> {task_id}): state was lost")


def _drop(shared: Path, history: History, rng: random.Random) -> str:
    number = len(history.dropped) + 1
    name = f"slow--s{number:02d}.wav" if rng.random() < 0.4 else f"n{number:02d}.wav"
    write_tone(shared / name, seconds=0.3)
    history.dropped.add(name)
    return name


def _kill_and_check_orphans(proc: subprocess.Popen[bytes], history: History) -> None:
    tag = tag_of(proc)
    before = tagged_processes(tag)
    assert kill(proc) == -9
    try:
        wait_for(lambda: not tagged_processes(tag), timeout=ORPHAN_TIMEOUT, interval=0.1,
                 what="the daemon's children to die with it")
    except AssertionError:
        survivors = [(p.pid, " ".join(p.cmdline())[:160]) for p in tagged_processes(tag)]
        for process in tagged_processes(tag):
            process.kill()
        pytest.fail(history.fail(f"orphans survived the daemon (before the kill: {[p.pid for p in before]}): "
                                 f"{survivors}"))


def _crash_round(config: Path, log: Path, shared: Path, history: History, rng: random.Random) -> None:
    if rng.random() < NEW_FILE_CHANCE:
        _drop(shared, history, rng)  # dropped while no daemon runs
    work = _transcribable(folder_view(shared), history)  # read while no daemon runs
    offset = log.stat().st_size if log.exists() else 0
    proc = spawn_fake_daemon(config, log)
    mode = rng.choice(("anytime", "processing", "processing"))
    if mode == "processing" and not work:
        mode = "idle"  # nothing left to transcribe: die while idle, or starting
    if mode != "processing":  # start-up, recovery, the first scan, or whatever comes after
        time.sleep(rng.uniform(0.0, 2.5))
    else:  # some file is being transcribed: die during it, its progress writes, its result, or the next job
        wait_for_log(log, ": processing (attempt", offset, timeout=60.0, proc=proc)
        if rng.random() < NEW_FILE_CHANCE:
            _drop(shared, history, rng)
        time.sleep(rng.uniform(0.0, 3.2))
    assert proc.poll() is None, history.fail(f"the daemon exited by itself:\n{read_log(log, offset)[-3000:]}")
    history.kills[mode] += 1
    _kill_and_check_orphans(proc, history)
    history.check(folder_view(shared))


def _transcribable(view: FolderView, history: History) -> set[str]:
    """Files a daemon started now will transcribe (not done, not on their way to review)."""
    quarantining = {name for name, document in view.in_progress.items() if document and _will_quarantine(document)}
    return history.dropped - set(view.results) - set(view.review_in_progress) - quarantining


def _will_quarantine(document: dict[str, Any]) -> bool:
    """Recovery moves it to review: it was, or it died at its last attempt."""
    failed = sum(1 for attempt in document["attempts"] if attempt["status"] == "failed")
    return document["status"] == "error" or (document["status"] == "processing" and failed + 1 >= MAX_ATTEMPTS)


def _settled(shared: Path, history: History) -> bool:
    view = folder_view(shared)
    return not view.in_progress and set(view.results) | set(view.review_in_progress) >= history.dropped


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("RELIABILITY_SEED", DEFAULT_SEED))
    print(f"RELIABILITY_SEED={seed} rounds={ROUNDS}")
    rng = random.Random(seed)
    config, log, shared = _crash_config(tmp_path), tmp_path / "daemon.log", tmp_path / "shared"
    history = History(seed)
    for _ in range(INITIAL_FILES):
        _drop(shared, history, rng)
    for number in range(1, ROUNDS + 1):
        history.label = f"round {number}/{ROUNDS}"
        _crash_round(config, log, shared, history, rng)

    history.label = "final clean run"
    offset = log.stat().st_size
    proc = spawn_fake_daemon(config, log)
    try:
        wait_for(lambda: _settled(shared, history), timeout=240, interval=0.2, what="every file to settle")
    finally:
        code = stop(proc)
    assert code == 0, history.fail(f"exit code {code}:\n{read_log(log, offset)[-3000:]}")
    wait_for(lambda: not tagged_processes(tag_of(proc)), timeout=ORPHAN_TIMEOUT, what="workers gone")
    view = folder_view(shared)
    history.check(view)
    _check_final(view, history)
    print(f"files={len(history.dropped)} completed={len(view.results)} review={len(view.review_in_progress)} "
          f"kills={dict(history.kills)}")


def _check_final(view: FolderView, history: History) -> None:
    assert not view.temp_files, history.fail(f"temp files left behind: {view.temp_files}")
    assert not view.in_progress, history.fail(f"unfinished: {sorted(view.in_progress)}")
    assert set(view.results) | set(view.review_in_progress) == history.dropped
    assert set(view.results) == view.audio, history.fail("a completed file without its audio, or the reverse")
    assert set(view.review_in_progress) == view.review_audio
    for name, document in view.review_in_progress.items():
        assert document is not None
        codes = [attempt["error"]["code"] for attempt in document["attempts"]]
        assert codes == ["daemon_died"] * MAX_ATTEMPTS, history.fail(f"{name} in review after {codes}")


def test_restart_removes_temp_files_a_killed_write_left(start_daemon, shared: Path) -> None:
    # Regression: SIGKILL between mkstemp and os.replace in write_json_atomic left
    # .tmp-*.json files that no run ever removed (RELIABILITY_SEED=2, 40 rounds: three).
    review = shared / "manual_review"
    review.mkdir()
    (shared / ".tmp-k1ll3d.json").write_text('{"task_id": "abc", "sta', encoding="utf-8")
    (review / ".tmp-m0v1ng.json").write_text("", encoding="utf-8")
    (shared / ".upload-cut0ff.part").write_bytes(b"RIFF half an upload")  # POST /upload when the daemon died
    (shared / ".keep").write_text("not ours", encoding="utf-8")
    write_tone(shared / "after-restart.wav")
    start_daemon()
    assert not (shared / ".tmp-k1ll3d.json").exists() and not (review / ".tmp-m0v1ng.json").exists()
    assert not (shared / ".upload-cut0ff.part").exists()
    assert (shared / ".keep").read_text(encoding="utf-8") == "not ours"
    assert wait_for(lambda: result_of(shared, "after-restart.wav"))["transcription"]["text"] == "after-restart"


# -- two daemons on one folder --------------------------------------------------------------------------------


def _second_instance(config: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "tests.reliability.fake_daemon", "--config", str(config)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    return completed, time.monotonic() - started


def test_second_daemon_is_refused_until_the_first_is_killed(tmp_path: Path) -> None:
    config, shared = write_config(tmp_path), tmp_path / "shared"
    first = spawn_fake_daemon(config, tmp_path / "first.log")
    try:
        wait_for_log(tmp_path / "first.log", STARTED_LINE, proc=first)
        refused, seconds = _second_instance(config)
        output = refused.stdout + refused.stderr
        assert refused.returncode == 1, output
        assert ".transcriber.lock" in output and f"pid {first.pid}" in output, output
        assert STARTED_LINE not in output
        print(f"the second instance was refused in {seconds:.1f} s")
        assert first.poll() is None, "the refused instance must not disturb the running one"

        write_tone(shared / "slow--interrupted.wav")  # 3 s of work: the kill lands in it
        wait_for_log(tmp_path / "first.log", "slow--interrupted.wav: processing", proc=first)
    finally:
        assert kill(first) == -9
    assert result_of(shared, "slow--interrupted.wav") is None, "finished before the kill: cannot test the takeover"
    wait_for(lambda: not tagged_processes(tag_of(first)), timeout=ORPHAN_TIMEOUT, what="the first's worker to die")

    second = spawn_fake_daemon(config, tmp_path / "second.log")
    try:
        wait_for_log(tmp_path / "second.log", STARTED_LINE, proc=second)
        write_tone(shared / "after-takeover.wav")
        assert wait_for(lambda: result_of(shared, "after-takeover.wav"), timeout=60)["transcription"]["text"] == (
            "after-takeover")
        resumed = wait_for(lambda: result_of(shared, "slow--interrupted.wav"), timeout=60)
        assert resumed["metadata"]["attempts"] == 2  # the first daemon's death cost one attempt
    finally:
        assert stop(second) == 0


def test_two_daemons_racing_to_start_exactly_one_runs(tmp_path: Path) -> None:
    config, shared = write_config(tmp_path), tmp_path / "shared"
    for race in range(3):
        logs = [tmp_path / f"race{race}-{n}.log" for n in (1, 2)]
        procs = [spawn_fake_daemon(config, path) for path in logs]
        try:
            loser = wait_for(lambda ps=procs: [p for p in ps if p.poll() is not None], timeout=60, what="a loser")
            assert len(loser) == 1, [read_log(path) for path in logs]
            winner = procs[1 - procs.index(loser[0])]
            loser_log = read_log(logs[procs.index(loser[0])])
            assert loser[0].returncode == 1 and STARTED_LINE not in loser_log, loser_log
            # The winner writes its pid just after taking the lock, so a loser that
            # reads in between says "another process"; either way it names the lock.
            assert ".transcriber.lock" in loser_log and (f"pid {winner.pid}" in loser_log
                                                         or "another process" in loser_log), loser_log
            wait_for_log(logs[procs.index(winner)], STARTED_LINE, proc=winner)
            name = f"race-{race}.wav"
            write_tone(shared / name)
            assert wait_for(lambda n=name: result_of(shared, n), timeout=60)["transcription"]["text"] == name[:-4]
            assert winner.poll() is None
        finally:
            codes = [stop(p) for p in procs]
        assert sorted(codes) == [0, 1]


def test_cleanup_temp_files_off_keeps_them_for_a_post_mortem(start_daemon, shared: Path) -> None:
    (shared / ".tmp-k1ll3d.json").write_text('{"task_id": "abc", "sta', encoding="utf-8")
    start_daemon({"processing": {"cleanup_temp_files": False}})
    assert (shared / ".tmp-k1ll3d.json").exists()
