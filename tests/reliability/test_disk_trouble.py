"""Scenario 9: the shared folder stops taking writes mid-run (full disk, read-only).

The promises (docs/RELIABILITY.md): every write is atomic, so a reader sees
the old sidecar or the new one; ``.result`` is written before ``.in_progress``
is removed; ``/health`` answers ``503`` while the folder cannot be written.
And what a user expects of a disk that fills up for a while: the daemon
waits for it.  An ``output_write_failed`` is the folder's fault, not the
file's, so it never uses up the file's attempts nor sends it to
``manual_review/``.  These tests prove that, while writes fail,

- the job is not marked completed: no ``.result`` (and no half-written one,
  no stray temp file), and its ``.in_progress`` still says what it said;
- ``GET /health`` answers ``503`` with ``shared_folder_writable: false``, also
  when only the large writes fail (a nearly full disk the tiny health probe
  still fits on), and ``GET /status`` shows ``output_write_failed``;
- files that arrive or come next in the queue meanwhile wait (an attempt
  whose start could not be recorded never shows in the history as a
  "running" ghost), a file whose permanent error cannot be recorded reaches
  ``manual_review/`` once it can, and ``POST /transcribe`` answers ``503
  output_write_failed``, not ``500``;

and that once the folder takes writes again every job completes on its
first attempt and ``/health`` is ``200`` again.  A pure test pins the retry
policy: a refused transcript is retried for ever, backing off to the cap.

We run as root, where ``chmod`` cannot make a folder read-only, so most tests
make :func:`transcriber.sidecars.write_json_atomic` refuse (``ENOSPC`` or
``EROFS``) for a while.  Where mounting is allowed, one test fills a real
tiny tmpfs to the last byte and frees it again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import in_progress_of, result_of, wait_for, write_tone
from transcriber.domain.job import Source, fail_attempt, new_job, retry_due, start_attempt
from transcriber.domain.retry import RetryPolicy
from transcriber.domain.settings import TranscriptionSettings
from transcriber.errors import EngineError, OutputWriteError
from transcriber.folder import sidecars

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = TranscriptionSettings("base", "en", 0.0, "int8", "cpu")
WAIT = 120  # seconds; generous, the machine is shared with other test runs
# One attempt: if a write failure counted as a failed attempt, the file would go to review at once.
ONE_ATTEMPT = {"processing": {"max_retry_attempts": 1}}


class DiskTrouble:
    """Makes the daemon's sidecar writes fail like a full or read-only disk while ``on`` is set.

    ``refuse`` picks which writes fail (default: all); ``refused`` lists them,
    ``written`` holds every ``.in_progress`` document that reached the disk.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, code: int = errno.ENOSPC,
                 refuse: Callable[[Path, dict[str, Any]], bool] = lambda _path, _document: True) -> None:
        self.code = code
        self.refuse = refuse
        self.on = threading.Event()
        self.refused: list[str] = []
        self.written: list[dict[str, Any]] = []
        self._real = sidecars.write_json_atomic
        monkeypatch.setattr(sidecars, "write_json_atomic", self._write)

    def _write(self, path: Path, document: dict[str, Any], indent: int | None = 2, durable: bool = True) -> None:
        if self.on.is_set() and self.refuse(path, document):
            self.refused.append(path.name)
            raise OSError(self.code, os.strerror(self.code), str(path))
        self._real(path, document, indent, durable)
        if path.name.endswith(sidecars.IN_PROGRESS_SUFFIX):
            self.written.append(document)

    def phantom_attempts(self) -> list[dict[str, Any]]:
        """Sidecars whose history holds a "running" attempt before the last one:
        an attempt that was never recorded as started must not appear later."""
        return [d for d in self.written if any(a["status"] == "running" for a in d["attempts"][:-1])]


def transcribing(shared: Path, name: str) -> bool:
    sidecar = in_progress_of(shared, name)
    return bool(sidecar) and sidecar["progress_info"]["stage"] == "transcribing"


def still_processing(shared: Path, name: str) -> bool:
    """The sidecar on disk still says what it said when the trouble began: attempt 1 running."""
    sidecar = in_progress_of(shared, name)
    return bool(sidecar) and sidecar["status"] == "processing" and sidecar["current_attempt"] == 1 and [
        a["status"] for a in sidecar["attempts"]] == ["running"]


def leftovers(shared: Path) -> list[str]:
    """Temp files of atomic writes that were not cleaned up."""
    return sorted(p.name for p in shared.glob(sidecars.TEMP_PREFIX + "*"))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["disk-full", "read-only"])
def test_writes_failing_mid_run_hold_the_job_until_the_folder_recovers(start_api, monkeypatch, code: int) -> None:
    api = start_api(ONE_ATTEMPT)
    shared = api.shared
    trouble = DiskTrouble(monkeypatch, code)
    write_tone(shared / "slow--call.wav")  # the fake engine takes 3 s over it
    wait_for(lambda: transcribing(shared, "slow--call.wav"), timeout=WAIT, what="slow--call.wav to be transcribing")
    write_tone(shared / "next-in-line.wav")  # its attempt will start, and fail to be recorded, in the trouble
    wait_for(lambda: in_progress_of(shared, "next-in-line.wav"), timeout=WAIT, what="next-in-line.wav queued")
    trouble.on.set()
    try:
        wait_for(lambda: "slow--call.wav.result" in trouble.refused, timeout=WAIT, what="the refused result")
        health = wait_for(lambda: (h := api.client.get("/health")).status_code == 503 and h, timeout=WAIT,
                          what="/health 503")
        assert health.json()["shared_folder_writable"] is False and health.json()["status"] == "unhealthy"
        status = api.client.get("/status/slow--call.wav").json()
        assert status["status"] == "queued" and status["last_error"]["code"] == "output_write_failed", status
        write_tone(shared / "arrived-meanwhile.wav")
        refused = len(trouble.refused)
        wait_for(lambda: len(trouble.refused) >= refused + 5, timeout=WAIT, what="several retries refused")
        assert api.client.get("/health").status_code == 503

        # The folder says what it said before the trouble, and nothing half-written.
        assert still_processing(shared, "slow--call.wav"), in_progress_of(shared, "slow--call.wav")
        assert result_of(shared, "slow--call.wav") is None and leftovers(shared) == []
        assert in_progress_of(shared, "next-in-line.wav")["status"] == "queued"
        assert in_progress_of(shared, "arrived-meanwhile.wav") is None
        assert list((shared / "manual_review").iterdir()) == []
    finally:
        trouble.on.clear()

    result = wait_for(lambda: result_of(shared, "slow--call.wav"), timeout=WAIT, what="slow--call.wav after recovery")
    assert result["metadata"]["attempts"] == 1 and result["transcription"]["text"] == "slow--call"
    for name in ("next-in-line.wav", "arrived-meanwhile.wav"):
        assert wait_for(lambda n=name: result_of(shared, n), timeout=WAIT, what=f"{name}, which waited")
        assert result_of(shared, name)["metadata"]["attempts"] == 1
    assert "next-in-line.wav.in_progress" in trouble.refused  # its start was refused, as intended
    assert trouble.phantom_attempts() == []
    wait_for(lambda: api.client.get("/health").status_code == 200, timeout=WAIT, what="/health 200 again")
    assert list(shared.glob("*.in_progress")) == [] and list((shared / "manual_review").iterdir()) == []
    assert leftovers(shared) == []


def test_a_nearly_full_disk_refusing_only_results_never_sends_the_file_to_review(start_api, monkeypatch) -> None:
    """The small sidecar writes (and the health probe) still fit, the transcript does not:
    every attempt is transcribed and then refused.  No attempt is used up, and /health
    reports the refusals although its own probe succeeds."""
    api = start_api({"processing": {"max_retry_attempts": 2}})
    shared = api.shared
    trouble = DiskTrouble(monkeypatch, refuse=lambda path, _document: path.name.endswith(sidecars.RESULT_SUFFIX))
    trouble.on.set()
    try:
        write_tone(shared / "call.wav")
        wait_for(lambda: trouble.refused.count("call.wav.result") >= 3, timeout=WAIT, what="three refused results")
        sidecar = wait_for(lambda: (s := in_progress_of(shared, "call.wav")) and s["status"] == "retry_wait" and s,
                           timeout=WAIT)
        assert sidecar["current_attempt"] == 1
        assert {(a["attempt_number"], a["status"], a["error"]["code"]) for a in sidecar["attempts"]} == {
            (1, "interrupted", "output_write_failed")}
        health = api.client.get("/health")
        assert health.status_code == 503 and health.json()["shared_folder_writable"] is False
        assert result_of(shared, "call.wav") is None and leftovers(shared) == []
        assert list((shared / "manual_review").iterdir()) == []
    finally:
        trouble.on.clear()
    result = wait_for(lambda: result_of(shared, "call.wav"), timeout=WAIT, what="call.wav after recovery")
    assert result["metadata"]["attempts"] == 1
    wait_for(lambda: api.client.get("/health").status_code == 200, timeout=WAIT, what="/health 200 again")


def test_a_permanent_error_that_cannot_be_recorded_reaches_review_later(start_api, monkeypatch) -> None:
    """The file is broken and the disk is full when the daemon wants to say so:
    it is moved to manual_review/ as soon as the error can be written."""
    api = start_api()
    shared = api.shared
    trouble = DiskTrouble(monkeypatch, refuse=lambda _path, document: document.get("status") == "error")
    trouble.on.set()
    try:
        (shared / "notes.mp3").write_text("not audio", encoding="utf-8")
        wait_for(lambda: "notes.mp3.in_progress" in trouble.refused, timeout=WAIT, what="the refused error sidecar")
        refused = len(trouble.refused)
        wait_for(lambda: len(trouble.refused) > refused, timeout=WAIT, what="the move to review tried again")
        assert (shared / "notes.mp3").exists() and in_progress_of(shared, "notes.mp3")["status"] == "processing"
    finally:
        trouble.on.clear()
    sidecar = wait_for(lambda: in_progress_of(shared / "manual_review", "notes.mp3"), timeout=WAIT,
                       what="notes.mp3 in review")
    assert sidecar["status"] == "error" and sidecar["current_attempt"] == 1
    assert [a["error"]["code"] for a in sidecar["attempts"]] == ["audio_decode_failed"]
    assert not (shared / "notes.mp3").exists()


def test_one_refused_sidecar_does_not_hold_up_other_files_retries(start_api, monkeypatch) -> None:
    """Regression: a refused move to review raised out of the retry check, so every
    other file's due retry waited until the folder took that one sidecar."""
    api = start_api({"processing": {"max_retry_attempts": 2}})
    shared = api.shared
    trouble = DiskTrouble(monkeypatch, refuse=lambda path, document: path.name.startswith("notes")
                          and document.get("status") == "error")
    trouble.on.set()
    try:
        (shared / "notes.mp3").write_text("not audio", encoding="utf-8")
        wait_for(lambda: "notes.mp3.in_progress" in trouble.refused, timeout=WAIT, what="the refused error sidecar")
        write_tone(shared / "flaky--then-done.wav")  # fails twice: its retry must come while notes.mp3 is stuck
        sidecar = wait_for(lambda: in_progress_of(shared / "manual_review", "flaky--then-done.wav"), timeout=WAIT,
                           what="the other file through both attempts")
        assert [a["error"]["code"] for a in sidecar["attempts"]] == ["engine_error", "engine_error"]
        assert in_progress_of(shared, "notes.mp3")["status"] == "processing"  # still refused meanwhile
    finally:
        trouble.on.clear()
    wait_for(lambda: in_progress_of(shared / "manual_review", "notes.mp3"), timeout=WAIT, what="notes.mp3 in review")


def test_a_request_while_the_folder_refuses_writes_is_a_503_not_a_500(start_api, monkeypatch) -> None:
    api = start_api()
    shared = api.shared
    (shared / ".pause").touch()  # so the scan does not queue it first
    write_tone(shared / "asked-for.wav")
    trouble = DiskTrouble(monkeypatch)
    trouble.on.set()
    try:
        response = api.client.post("/transcribe", json={"filename": "asked-for.wav"})
        assert response.status_code == 503, response.text
        assert response.json()["error_code"] == "output_write_failed"
        assert response.json()["filename"] == "asked-for.wav"
    finally:
        trouble.on.clear()
    assert api.client.post("/transcribe", json={"filename": "asked-for.wav"}).status_code == 202
    (shared / ".pause").unlink()
    assert wait_for(lambda: result_of(shared, "asked-for.wav"), timeout=WAIT, what="asked-for.wav afterwards")


def test_the_retry_policy_waits_for_the_folder_as_long_as_it_takes() -> None:
    """Pure: a refused transcript never uses up an attempt, and the back-off grows to its cap."""
    policy = RetryPolicy(base_seconds=1.0, max_seconds=60.0)
    job = start_attempt(new_job("a.wav", SETTINGS, Source.SCAN, max_attempts=1, now=NOW), NOW)
    delays = []
    for _ in range(1100):  # past where 2**n seconds would overflow a float
        retry_at = policy.retry_at(job, OutputWriteError("disk full"), NOW)
        assert retry_at is not None
        delays.append((retry_at - NOW).total_seconds())
        job = start_attempt(retry_due(fail_attempt(job, OutputWriteError("disk full"), NOW, retry_at)), NOW)
        assert job.current_attempt == 1 and job.failed_attempts == 0
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0] and set(delays[10:]) == {60.0}
    assert policy.retry_at(job, EngineError("boom"), NOW) is None  # a real failure still counts


# -- a real full disk -----------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted where the daemon's shared folder goes (needs mount privileges).

    Requested before ``start_api`` so that it is unmounted after the daemon stopped.
    """
    mountpoint = tmp_path / "shared"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", f"transcriber-{uuid.uuid4().hex[:8]}",
                              str(mountpoint)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of ``folder``'s file system with a dotfile (ignored by the daemon)."""
    filler = folder / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 16, 4096, 1):  # unbuffered, down to the last byte
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_a_real_full_disk_mid_run_then_space_freed(tiny_disk: Path, start_api) -> None:
    api = start_api(ONE_ATTEMPT)
    shared = api.shared
    assert shared == tiny_disk
    write_tone(shared / "slow--call.wav")
    wait_for(lambda: transcribing(shared, "slow--call.wav"), timeout=WAIT, what="slow--call.wav to be transcribing")
    filler = fill(shared)
    try:
        assert os.statvfs(shared).f_bavail == 0
        health = wait_for(lambda: (h := api.client.get("/health")).status_code == 503 and h, timeout=WAIT,
                          what="/health 503 on the full disk")
        assert health.json()["shared_folder_writable"] is False
        wait_for(lambda: api.client.get("/status/slow--call.wav").json()["last_error"], timeout=WAIT,
                 what="the refused result")
        time.sleep(2.0)  # let a few retries meet the full disk
        assert still_processing(shared, "slow--call.wav"), in_progress_of(shared, "slow--call.wav")
        assert result_of(shared, "slow--call.wav") is None and leftovers(shared) == []
        assert list((shared / "manual_review").iterdir()) == []
    finally:
        filler.unlink()
    result = wait_for(lambda: result_of(shared, "slow--call.wav"), timeout=WAIT, what="slow--call.wav, space freed")
    assert result["metadata"]["attempts"] == 1
    wait_for(lambda: api.client.get("/health").status_code == 200, timeout=WAIT, what="/health 200 again")
    assert list(shared.glob("*.in_progress")) == [] and leftovers(shared) == []
