"""A forced re-run that fails (issue 13, point 6).

A completed file, ``POST /transcribe`` with ``force``, and the new run fails
every attempt.  The earlier ``.result`` (and its renderings) used to stay in
the shared folder while the audio went to ``manual_review/``: ``/status``
said ``error`` beside a transcript on disk, and the stale result made a file
moved back by hand count as done.  Now the file's whole state moves to review
together; ``force`` brings it all back, and the new run replaces it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.fake_engine import FailingWhileMarkedEngine
from tests.helpers import in_progress_of, result_of, wait_for, write_tone
from transcriber.exports import render_bytes

CONFIG = {"output": {"write_formats": ["srt", "txt"]}, "processing": {"max_retry_attempts": 2}}
OWN = ("", ".in_progress", ".result", ".srt", ".txt")


def names(folder: Path, prefix: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(prefix))


def completed_then_failed(api, name: str) -> dict:
    """Complete ``name``, then force a re-run that fails every attempt; the first result."""
    write_tone(api.shared / name)
    first = wait_for(lambda: (r := result_of(api.shared, name)) and not (api.shared / f"{name}.in_progress").exists()
                     and r, what="the first result")
    (api.shared / FailingWhileMarkedEngine.MARKER).touch()
    forced = api.client.post("/transcribe", json={"filename": name, "force": True})
    assert forced.status_code == 202, forced.text
    review = api.shared / "manual_review"
    wait_for(lambda: (s := in_progress_of(review, name)) and s["status"] == "error" and s, timeout=30,
             what="the failed re-run in manual_review/")
    return first


def test_the_earlier_result_goes_to_review_with_the_audio(start_api) -> None:
    api = start_api(CONFIG, engine=FailingWhileMarkedEngine)
    first = completed_then_failed(api, "call.wav")
    review = api.shared / "manual_review"
    assert names(api.shared, "call.wav") == []  # nothing of it left in the folder
    assert names(review, "call.wav") == sorted(f"call.wav{suffix}" for suffix in OWN)
    assert json.loads((review / "call.wav.result").read_text(encoding="utf-8")) == first
    sidecar = in_progress_of(review, "call.wav")
    assert sidecar["task_id"] != first["task_id"] and sidecar["current_attempt"] == 2
    assert sidecar["attempts"][-1]["error"]["code"] == "engine_error"

    status = api.client.get("/status/call.wav").json()
    assert status["status"] == "error" and status["last_error"]["code"] == "engine_error"
    result = api.client.get("/result/call.wav")
    assert result.status_code == 404
    assert result.json()["error_code"] == "result_not_found" and result.json()["current_status"] == "error"
    refused = api.client.post("/transcribe", json={"filename": "call.wav"})
    assert refused.status_code == 409 and refused.json()["error_code"] == "in_manual_review"


def test_force_from_review_brings_the_earlier_result_back_until_the_new_run_replaces_it(start_api) -> None:
    api = start_api(CONFIG, engine=FailingWhileMarkedEngine)
    first = completed_then_failed(api, "call.wav")
    review = api.shared / "manual_review"
    (api.shared / FailingWhileMarkedEngine.MARKER).unlink()
    (api.shared / ".pause").touch()  # hold the new run, to see what force put back
    forced = api.client.post("/transcribe", json={"filename": "call.wav", "force": True})
    assert forced.status_code == 202, forced.text
    assert names(api.shared, "call.wav") == sorted(f"call.wav{suffix}" for suffix in OWN)
    assert result_of(api.shared, "call.wav") == first  # the earlier transcript is back, not lost
    assert api.client.get("/status/call.wav").json()["status"] == "queued"
    (api.shared / ".pause").unlink()
    second = wait_for(lambda: (r := result_of(api.shared, "call.wav")) and r["task_id"] != first["task_id"] and
                      not (api.shared / "call.wav.in_progress").exists() and r, what="the new result")
    assert (api.shared / "call.wav.srt").read_text(encoding="utf-8") == render_bytes(second, "srt").decode()
    assert api.client.get("/status/call.wav").json()["status"] == "completed"
    assert api.client.get("/result/call.wav").json()["task_id"] == second["task_id"]
    history = names(review, "call.wav")  # only the failed run's sidecar, kept as history
    assert len(history) == 1 and history[0].startswith("call.wav.in_progress."), history


def test_a_file_moved_back_by_hand_is_transcribed_again(start_api) -> None:
    # docs/TROUBLESHOOTING.md: move the audio back (without the sidecar) to try again.
    # With the earlier .result left in the folder, the file counted as done and never ran.
    api = start_api(CONFIG, engine=FailingWhileMarkedEngine)
    first = completed_then_failed(api, "call.wav")
    (api.shared / FailingWhileMarkedEngine.MARKER).unlink()
    review = api.shared / "manual_review"
    shutil.move(review / "call.wav", api.shared / "call.wav")
    (review / "call.wav.in_progress").unlink()
    again = wait_for(lambda: (r := result_of(api.shared, "call.wav")) and r["task_id"] != first["task_id"] and r,
                     what="the file transcribed again")
    assert again["transcription"]["text"] == "call"


def test_delete_of_a_failed_rerun_removes_the_earlier_result_in_review_too(start_api) -> None:
    api = start_api(CONFIG, engine=FailingWhileMarkedEngine)
    completed_then_failed(api, "call.wav")
    body = api.client.delete("/transcribe/call.wav").json()
    assert sorted(body["deleted_files"]) == sorted(f"manual_review/call.wav{suffix}" for suffix in OWN)
    assert names(api.shared, "call.wav") == [] and names(api.shared / "manual_review", "call.wav") == []
    assert api.client.get("/status/call.wav").status_code == 404


def test_a_rerun_dying_at_its_last_attempt_goes_to_review_with_the_earlier_result(start_daemon, shared: Path) -> None:
    # Recovery at start quarantines through the same path.
    attempt = {"attempt_number": 2, "start_time": "2026-01-01T00:00:01.000Z", "end_time": None, "status": "running",
               "error": None}
    failed = {**attempt, "attempt_number": 1, "end_time": "2026-01-01T00:00:02.000Z", "status": "failed",
              "error": {"code": "timeout", "message": "earlier failure"}}
    write_tone(shared / "again.wav")
    (shared / "again.wav.result").write_text('{"task_id": "an-earlier-task"}', encoding="utf-8")
    (shared / "again.wav.srt").write_text("earlier subtitles", encoding="utf-8")
    (shared / "again.wav.in_progress").write_text(json.dumps({
        "task_id": "the-rerun", "filename": "again.wav", "creation_time": "2026-01-01T00:00:00.000Z",
        "status": "processing", "source": "api", "priority": 1, "current_attempt": 2, "max_attempts": 2,
        "next_attempt_at": None,
        "settings": {"model_size": "base", "language": "ru", "temperature": 0.1, "compute_type": "int8",
                     "device": "cpu", "debug": False},
        "progress_info": {"stage": "transcribing", "percentage": 10}, "attempts": [failed, attempt],
    }), encoding="utf-8")
    start_daemon(CONFIG)
    review = shared / "manual_review"
    assert in_progress_of(review, "again.wav")["attempts"][-1]["error"]["code"] == "daemon_died"
    assert names(shared, "again.wav") == []
    assert names(review, "again.wav") == ["again.wav", "again.wav.in_progress", "again.wav.result", "again.wav.srt"]
    assert result_of(review, "again.wav") == {"task_id": "an-earlier-task"}


def test_the_mirror_keeps_the_earlier_task_of_a_failed_rerun(start_api, start_daemon, database_url: str) -> None:
    # Reconciliation read review's .in_progress only: the earlier task, whose .result
    # moved to review with the audio, was marked deleted at the next start.
    from tests.integration.test_mirror import rows

    api = start_api({**CONFIG, "database": {"url": database_url}}, engine=FailingWhileMarkedEngine)
    first = completed_then_failed(api, "mirrored.wav")
    api.daemon.stop(grace_seconds=0)
    start_daemon({**CONFIG, "database": {"url": database_url}}, engine=FailingWhileMarkedEngine)

    def statuses() -> dict[str, str] | None:
        found = {row["task_id"]: row["status"] for row in rows(
            database_url, "SELECT task_id::text AS task_id, status FROM tasks WHERE filename = %s", "mirrored.wav")}
        return found if len(found) == 2 and "error" in found.values() else None

    found = wait_for(statuses, timeout=30, what="both tasks mirrored")
    assert found[first["task_id"]] == "completed"
