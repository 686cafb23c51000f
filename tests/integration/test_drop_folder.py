"""A real temp folder, the real watcher and worker process, a fake engine."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tests.fake_engine import named
from tests.helpers import in_progress_of, result_of, wait_for, wait_for_rescans, write_tone
from transcriber.domain.job import JobStatus, Source


def test_dropped_file_becomes_result_with_the_design_schema(start_daemon, shared: Path) -> None:
    start_daemon()
    write_tone(shared / "звонок 1.wav")
    result = wait_for(lambda: result_of(shared, "звонок 1.wav"), what="the result")
    assert result["transcription"]["text"] == "звонок 1"
    assert result["filename"] == "звонок 1.wav"
    assert set(result) >= {
        "task_id", "processing_start", "processing_end", "duration_seconds", "processing_time_seconds",
        "settings", "transcription", "metadata",
    }
    assert result["settings"] == {
        "model_size": "base", "language": "ru", "temperature": 0.1, "compute_type": "int8", "device": "cpu",
        "word_timestamps": False, "diarize": False, "min_speakers": None, "max_speakers": None,
    }
    assert result["duration_seconds"] == 0.5
    assert result["processing_start"].endswith("Z")
    assert result["metadata"]["attempts"] == 1
    assert result["metadata"]["word_count"] == 2
    assert not (shared / "звонок 1.wav.in_progress").exists()
    assert oct((shared / "звонок 1.wav.result").stat().st_mode & 0o777) == "0o644"


def test_slow_copy_is_transcribed_once_after_it_ends(start_daemon, shared: Path, tmp_path: Path) -> None:
    daemon = start_daemon({"watch": {"stability_seconds": 1.0}})
    source = write_tone(tmp_path / "source.wav", seconds=2.0).read_bytes()
    target = shared / "slow-copy.wav"
    with target.open("wb") as handle:  # ~3 s of writing, in pieces, never pausing for a full window
        for start in range(0, len(source), len(source) // 10):
            handle.write(source[start:start + len(source) // 10])
            handle.flush()
            time.sleep(0.3)
            assert daemon.job("slow-copy.wav") is None, "picked up while still being written"
    result = wait_for(lambda: result_of(shared, "slow-copy.wav"), what="the result")
    assert result["duration_seconds"] == 2.0  # the whole file, not a prefix
    task_id = result["task_id"]
    wait_for_rescans(daemon.watcher)  # two rescans later it is still the same, single result
    assert daemon.job("slow-copy.wav") is None
    assert result_of(shared, "slow-copy.wav")["task_id"] == task_id


def test_ignore_rules_in_the_live_folder(start_daemon, shared: Path) -> None:
    daemon = start_daemon()
    ignored = [".hidden.wav", "upload.wav.part", "x.tmp", "~lock.wav", "notes.txt", "download.mp3.crdownload"]
    for name in ignored:
        write_tone(shared / name)
    write_tone(shared / "sub" / "nested.wav")
    write_tone(shared / "UPPER.WAV")
    wait_for(lambda: result_of(shared, "UPPER.WAV"), what="the upper-case file")
    wait_for_rescans(daemon.watcher)  # rescans have passed too
    for name in ignored:
        assert not (shared / f"{name}.result").exists()
        assert not (shared / f"{name}.in_progress").exists()
    assert not (shared / "sub" / "nested.wav.result").exists()


def test_recursive_watch_handles_subfolders(start_daemon, shared: Path) -> None:
    start_daemon({"watch": {"recursive": True}})
    write_tone(shared / "team a" / "call.wav")
    result = wait_for(lambda: result_of(shared / "team a", "call.wav"), what="the nested result")
    assert result["filename"] == "team a/call.wav"


def test_api_priority_overtakes_scanned_files_fifo_within_priority(start_daemon, shared: Path) -> None:
    (shared / ".pause").touch()
    daemon = start_daemon()
    for name in ("scan-1.wav", "scan-2.wav", "scan-3.wav"):
        write_tone(shared / name)
        wait_for(lambda n=name: daemon.job(n), what=f"{name} queued")
    write_tone(shared / "api-1.wav")
    write_tone(shared / "api-2.wav")
    daemon.submit("api-1.wav", source=Source.API)
    daemon.submit("api-2.wav", source=Source.API)
    assert daemon.queue_position("api-1.wav") == 1
    assert daemon.queue_position("scan-1.wav") == 3
    (shared / ".pause").unlink()
    names = ["api-1.wav", "api-2.wav", "scan-1.wav", "scan-2.wav", "scan-3.wav"]
    results = [wait_for(lambda n=n: result_of(shared, n), what=n) for n in names]
    starts = [r["processing_start"] for r in results]
    assert starts == sorted(starts), list(zip(names, starts, strict=True))


def test_pause_marker_holds_new_jobs_until_removed(start_daemon, shared: Path) -> None:
    (shared / ".pause").touch()
    daemon = start_daemon()
    write_tone(shared / "held.wav")
    job = wait_for(lambda: daemon.job("held.wav"), what="queued")
    assert job.status is JobStatus.QUEUED
    wait_for_rescans(daemon.watcher)
    assert daemon.job("held.wav").status is JobStatus.QUEUED
    assert in_progress_of(shared, "held.wav")["status"] == "queued"
    assert daemon.paused
    (shared / ".pause").unlink()
    wait_for(lambda: result_of(shared, "held.wav"), what="the result after resuming")


def test_pause_lets_the_running_job_finish(start_daemon, shared: Path) -> None:
    daemon = start_daemon()
    running = named("slow", "running.wav")
    write_tone(shared / running)
    wait_for(lambda: (j := daemon.job(running)) and j.status is JobStatus.PROCESSING, what="processing")
    (shared / ".pause").touch()
    write_tone(shared / "after.wav")
    wait_for(lambda: result_of(shared, running), what="the running job's result")
    wait_for_rescans(daemon.watcher)
    assert daemon.job("after.wav").status is JobStatus.QUEUED


def test_empty_and_text_files_go_to_review_without_retries(start_daemon, shared: Path) -> None:
    start_daemon()
    (shared / "empty.wav").write_bytes(b"")
    (shared / "notes.wav").write_text("this is not audio at all\n" * 20)
    review = shared / "manual_review"
    for name, code in (("empty.wav", "empty_file"), ("notes.wav", "audio_decode_failed")):
        sidecar = wait_for(lambda n=name: in_progress_of(review, n), what=f"{name} in review")
        assert (review / name).exists()
        assert not (shared / name).exists()
        assert sidecar["status"] == "error"
        assert len(sidecar["attempts"]) == 1
        assert sidecar["attempts"][0]["status"] == "failed"
        assert sidecar["attempts"][0]["error"]["code"] == code


def test_transient_failure_is_retried_with_backoff_then_quarantined(start_daemon, shared: Path) -> None:
    start_daemon({"processing": {"max_retry_attempts": 3, "retry_backoff_seconds": 0.5}})
    flaky = named("flaky", "file.wav")
    write_tone(shared / flaky)
    write_tone(shared / "fine.wav")
    review = shared / "manual_review"
    sidecar = wait_for(lambda: in_progress_of(review, flaky), timeout=30, what="quarantine")
    attempts = sidecar["attempts"]
    assert [a["attempt_number"] for a in attempts] == [1, 2, 3]
    assert {a["error"]["code"] for a in attempts} == {"engine_error"}
    assert sidecar["current_attempt"] == 3 and sidecar["max_attempts"] == 3
    gaps = [_seconds_between(attempts[i]["end_time"], attempts[i + 1]["start_time"]) for i in range(2)]
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95, gaps  # 0.5 s, then 1.0 s
    assert result_of(shared, "fine.wav") is not None  # other files kept flowing


def test_worker_crash_is_retried_and_the_worker_respawned(start_daemon, shared: Path) -> None:
    daemon = start_daemon({"processing": {"max_retry_attempts": 2}})
    crash = named("crash", "file.wav")
    write_tone(shared / crash)
    sidecar = wait_for(lambda: in_progress_of(shared / "manual_review", crash), what="quarantine")
    assert [a["error"]["code"] for a in sidecar["attempts"]] == ["worker_crashed", "worker_crashed"]
    write_tone(shared / "next-file.wav")
    wait_for(lambda: result_of(shared, "next-file.wav"), what="a file after the crashes")
    assert daemon.workers()[0].restarts >= 2


def test_timeout_kills_the_worker_and_retries(start_daemon, shared: Path) -> None:
    daemon = start_daemon({"processing": {"timeout_seconds": 1.5, "max_retry_attempts": 2}})
    first_pid = wait_for(lambda: daemon.workers()[0].pid, what="worker pid")
    hang = named("hang", "file.wav")
    write_tone(shared / hang)
    sidecar = wait_for(lambda: in_progress_of(shared / "manual_review", hang), what="quarantine")
    assert [a["error"]["code"] for a in sidecar["attempts"]] == ["timeout", "timeout"]
    write_tone(shared / "later-file.wav")
    wait_for(lambda: result_of(shared, "later-file.wav"), what="a file after the timeouts")
    assert daemon.workers()[0].pid not in (None, first_pid)


def test_cancel_removes_a_queued_job_and_interrupts_a_running_one(start_daemon, shared: Path) -> None:
    daemon = start_daemon()
    running = named("slow", "cancel.wav")
    write_tone(shared / running)
    write_tone(shared / "queued-cancel.wav")
    wait_for(lambda: (j := daemon.job(running)) and j.status is JobStatus.PROCESSING, what="processing")
    wait_for(lambda: daemon.job("queued-cancel.wav"), what="queued")
    started = time.monotonic()
    assert daemon.cancel(running)
    assert time.monotonic() - started < 2.0
    assert daemon.cancel("queued-cancel.wav")
    assert daemon.job(running) is None and daemon.job("queued-cancel.wav") is None
    assert not (shared / f"{running}.in_progress").exists()
    assert not (shared / "queued-cancel.wav.in_progress").exists()
    assert not daemon.cancel("never-seen.wav")


def test_deleted_audio_drops_its_queued_job(start_daemon, shared: Path) -> None:
    (shared / ".pause").touch()
    daemon = start_daemon()
    write_tone(shared / "gone.wav")
    wait_for(lambda: daemon.job("gone.wav"), what="queued")
    (shared / "gone.wav").unlink()
    (shared / ".pause").unlink()
    wait_for(lambda: daemon.job("gone.wav") is None, what="the job to be dropped")
    assert not (shared / "gone.wav.in_progress").exists()
    assert not (shared / "gone.wav.result").exists()


def test_files_present_at_start_are_found_by_the_startup_scan(start_daemon, shared: Path, tmp_path: Path) -> None:
    for number in range(5):
        write_tone(shared / f"early-{number}.wav")
    old = time.time() - 60
    for path in shared.iterdir():
        os.utime(path, (old, old))
    start_daemon({"watch": {"rescan_interval_seconds": 3600}})
    for number in range(5):
        wait_for(lambda n=number: result_of(shared, f"early-{n}.wav"), what=f"early-{number}")


def test_moved_in_file_with_a_result_is_left_alone(start_daemon, shared: Path, tmp_path: Path) -> None:
    write_tone(tmp_path / "done.wav")
    (tmp_path / "done.wav.result").write_text('{"task_id": "kept"}')
    daemon = start_daemon()
    shutil.move(tmp_path / "done.wav.result", shared / "done.wav.result")
    shutil.move(tmp_path / "done.wav", shared / "done.wav")
    wait_for_rescans(daemon.watcher)
    assert daemon.job("done.wav") is None
    assert result_of(shared, "done.wav") == {"task_id": "kept"}


def _seconds_between(earlier: str, later: str) -> float:
    from transcriber.folder.sidecars import parse_time

    return (parse_time(later) - parse_time(earlier)).total_seconds()


def test_worker_preloads_then_unloads_idle_models_and_reloads_on_demand(start_daemon, shared: Path) -> None:
    daemon = start_daemon({"whisperx": {"model_idle_unload_seconds": 1.0}})
    wait_for(lambda: daemon.workers()[0].models_loaded == ("base",), what="the preloaded model")
    wait_for(lambda: daemon.workers()[0].models_loaded == (), what="the idle unload")
    write_tone(shared / "wakes-it.wav")
    wait_for(lambda: result_of(shared, "wakes-it.wav"), what="a result after the unload")
    assert daemon.workers()[0].models_loaded == ("base",)


def test_a_worker_over_its_memory_ceiling_is_recycled_after_the_job(start_daemon, shared: Path) -> None:
    daemon = start_daemon({"processing": {"worker_memory_limit_mb": 300}})
    first_pid = wait_for(lambda: daemon.workers()[0].pid, what="the worker")
    bloat = named("bloat", "file.wav")
    write_tone(shared / bloat)
    assert wait_for(lambda: result_of(shared, bloat))["transcription"]["text"] == "bloat--file"  # the job succeeded
    second_pid = wait_for(lambda: daemon.workers()[0].pid, what="the recycled worker")
    assert second_pid != first_pid
    write_tone(shared / "lean.wav")
    wait_for(lambda: result_of(shared, "lean.wav"), what="a file on the recycled worker")
    assert daemon.workers()[0].pid == second_pid  # a lean job does not recycle


def test_a_finished_copy_is_taken_without_the_full_window_but_an_open_one_waits(start_daemon, shared: Path) -> None:
    daemon = start_daemon({"watch": {"stability_seconds": 5.0, "close_settle_seconds": 0.2}})
    source = write_tone(shared.parent / "source.wav", seconds=1.0).read_bytes()
    started = time.monotonic()
    (shared / "closed.wav").write_bytes(source)  # written and closed at once
    wait_for(lambda: daemon.job("closed.wav") or result_of(shared, "closed.wav"), what="the closed file")
    assert time.monotonic() - started < 3.0
    with (shared / "open.wav").open("wb") as handle:  # complete on disk, but its writer still holds it
        handle.write(source)
        handle.flush()
        wait_for_rescans(daemon.watcher)  # well inside the 5 s window: only the close may cut it short
        assert daemon.job("open.wav") is None and result_of(shared, "open.wav") is None
    wait_for(lambda: result_of(shared, "open.wav"), what="the file once closed")


def test_a_file_renamed_into_place_is_taken_once_complete(start_daemon, shared: Path) -> None:
    daemon = start_daemon({"watch": {"stability_seconds": 5.0, "close_settle_seconds": 0.2}})
    partial = shared / "upload.wav.part"
    write_tone(partial, seconds=1.0)
    wait_for_rescans(daemon.watcher)
    assert daemon.job("upload.wav.part") is None
    started = time.monotonic()
    partial.rename(shared / "upload.wav")
    result = wait_for(lambda: result_of(shared, "upload.wav"), what="the renamed file")
    assert time.monotonic() - started < 3.0
    assert result["duration_seconds"] == 1.0


def test_a_settings_change_as_a_slot_takes_the_file_is_not_lost(start_daemon, shared: Path, monkeypatch) -> None:
    # Regression: a change landing between a slot's "is it still queued?" check and its
    # claim of the file was requeued, then overwritten by the slot starting the old
    # settings, which left a stale queue entry (found by tests/reliability/).
    import threading
    from dataclasses import replace

    from transcriber.scheduler.dispatcher import Slot

    taken, release = threading.Event(), threading.Event()
    original = Slot._process

    def held(slot: Slot, job, *args) -> None:  # type: ignore[no-untyped-def]
        taken.set()
        release.wait(10)
        original(slot, job, *args)

    monkeypatch.setattr(Slot, "_process", held)
    daemon = start_daemon()
    write_tone(shared / "retuned.wav")
    wait_for(taken.is_set, what="the slot taking the file")
    changer = threading.Thread(target=daemon.change_settings,
                               args=("retuned.wav", replace(daemon.settings, language="de")))
    changer.start()
    time.sleep(0.3)  # the change reaches the slot that holds the file
    release.set()
    changer.join(15)
    result = wait_for(lambda: result_of(shared, "retuned.wav"), what="the result")
    assert result["settings"]["language"] == "de"
    wait_for(lambda: daemon.job("retuned.wav") is None and len(daemon.queue) == 0, what="nothing left queued")
