"""The HTTP API against a running daemon on a temp folder (fake engine)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import in_progress_of, result_of, wait_for, wait_for_rescans, write_config, write_tone
from transcriber.api import app as api_module
from transcriber.api.routes import transcribe as transcribe_routes
from transcriber.api.server import check_exposure
from transcriber.api.service import FileState, TranscriptionService
from transcriber.config import load_config
from transcriber.domain.job import JobStatus
from transcriber.errors import ConfigError


def processing(harness, name: str) -> bool:
    job = harness.daemon.job(name)
    return job is not None and job.status is JobStatus.PROCESSING


def queue_position(harness, name: str) -> int | None:
    return harness.client.get(f"/status/{name}").json()["queue_position"]


def test_request_queues_then_a_second_request_returns_the_result(start_api) -> None:
    api = start_api()
    (api.shared / ".pause").touch()  # keep it queued long enough to look at
    write_tone(api.shared / "звонок 1.wav")
    response = api.client.post("/transcribe", json={"filename": "звонок 1.wav", "language": "en"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["priority"] == "high"
    # Just written: queued once the watcher finds it complete (tests/integration/test_api_contract.py).
    wait_for(lambda: queue_position(api, "звонок 1.wav") == 1, what="a place in the queue")
    assert body["filename"] == "звонок 1.wav"
    assert body["settings"]["language"] == "en" and body["settings"]["model_size"] == "base"
    assert in_progress_of(api.shared, "звонок 1.wav")["source"] == "api"
    (api.shared / ".pause").unlink()
    wait_for(lambda: result_of(api.shared, "звонок 1.wav"), what="the result")
    again = api.client.post("/transcribe", json={"filename": "звонок 1.wav"})
    assert again.status_code == 200
    assert again.json()["status"] == "completed"
    assert again.json()["result"]["transcription"]["text"] == "звонок 1"
    assert again.json()["result"]["settings"]["language"] == "en"


def test_wait_long_polls_until_the_result(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "slow--wait.wav")
    started = time.monotonic()
    response = api.client.post("/transcribe", json={"filename": "slow--wait.wav", "wait": 20})
    assert response.status_code == 200, response.text
    assert response.json()["result"]["transcription"]["text"] == "slow--wait"
    assert time.monotonic() - started < 15


def test_wait_answers_202_with_the_status_when_time_runs_out(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "slow--timeout.wav")
    response = api.client.post("/transcribe", json={"filename": "slow--timeout.wav", "wait": 0.5})
    assert response.status_code == 202
    assert response.json()["status"] in ("queued", "processing")
    assert "stage" in response.json()


def test_missing_file_is_404_after_the_configured_wait(start_api) -> None:
    api = start_api({"api": {"file_wait_attempts": 5, "file_wait_interval": 0.2}})
    started = time.monotonic()
    response = api.client.post("/transcribe", json={"filename": "nowhere.wav"})
    assert response.status_code == 404
    assert time.monotonic() - started >= 0.8  # four intervals between five looks
    assert response.json() == {"status": "not_found", "error_code": "file_not_found",
                               "message": "no such file in the shared folder", "filename": "nowhere.wav",
                               "suggestion": "copy the file first, or raise the wait for slow shares"}


def test_a_file_arriving_during_the_wait_is_found(start_api) -> None:
    api = start_api({"api": {"file_wait_attempts": 10, "file_wait_interval": 0.2}})
    timer = threading.Timer(0.5, lambda: write_tone(api.shared / "late.wav"))
    timer.start()
    response = api.client.post("/transcribe", json={"filename": "late.wav"})
    timer.join()
    assert response.status_code == 202


def test_same_settings_join_and_different_settings_restart(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "slow--join.wav")
    assert api.client.post("/transcribe", json={"filename": "slow--join.wav", "language": "ru"}).status_code == 202
    wait_for(lambda: processing(api, "slow--join.wav"), what="processing")
    joined = api.client.post("/transcribe", json={"filename": "slow--join.wav", "language": "ru"})
    assert joined.status_code == 202 and joined.json()["restarted"] is False
    assert joined.json()["status"] == "processing"
    restarted = api.client.post("/transcribe", json={"filename": "slow--join.wav", "language": "de"})
    assert restarted.status_code == 202 and restarted.json()["restarted"] is True
    assert restarted.json()["settings"]["language"] == "de"
    result = wait_for(lambda: result_of(api.shared, "slow--join.wav"), what="the result")
    assert result["settings"]["language"] == "de"
    assert result["metadata"]["attempts"] == 1  # the interrupted run did not use up an attempt


@pytest.mark.parametrize(("language", "ending"), [("ru", "completed"), ("de", "completed"), ("de", "deleted")])
def test_a_request_for_a_job_that_ends_meanwhile_is_answered_from_where_it_is_now(
        start_api, monkeypatch: pytest.MonkeyPatch, language: str, ending: str) -> None:
    # The API reads the file's state, then acts on it in another thread-pool hop.  A job
    # that completed in between was transcribed a second time (same settings: "joined" a
    # job that no longer existed, so a new one was queued), or answered 202 "queued" with
    # settings nothing would use (other settings).  The gap is held open here until the
    # job has ended.
    api = start_api()
    write_tone(api.shared / "slow--race.wav")
    wait_for(lambda: processing(api, "slow--race.wav"), what="processing")
    read_state = transcribe_routes.wait_for_file

    def end_the_job(name: str) -> None:
        if ending == "deleted":
            assert httpx.delete(f"http://127.0.0.1:{api.daemon.config.api.port}/transcribe/{name}").status_code == 200
        wait_for(lambda: api.daemon.job(name) is None, timeout=30, what="the job's end")

    async def read_state_then_end_the_job(service, name, config):
        state = await read_state(service, name, config)
        await asyncio.to_thread(end_the_job, name)
        return state

    monkeypatch.setattr(transcribe_routes, "wait_for_file", read_state_then_end_the_job)
    response = api.client.post("/transcribe", json={"filename": "slow--race.wav", "language": language})
    if ending == "deleted":
        assert response.status_code == 404 and response.json()["error_code"] == "file_not_found", response.text
    else:
        assert response.status_code == 200, response.text
        assert response.json()["result"]["settings"]["language"] == "ru"  # the run that was asked for first
    assert api.daemon.job("slow--race.wav") is None and len(api.daemon.queue) == 0  # nothing queued again


def test_api_requests_overtake_scanned_files(start_api) -> None:
    api = start_api()
    (api.shared / ".pause").touch()
    for name in ("scan-a.wav", "scan-b.wav"):
        write_tone(api.shared / name)
        wait_for(lambda n=name: api.daemon.job(n), what=name)
    write_tone(api.shared / "urgent.wav")
    api.client.post("/transcribe", json={"filename": "urgent.wav"})
    wait_for(lambda: queue_position(api, "urgent.wav") == 1, what="urgent.wav first in the queue")
    scanned = api.client.post("/transcribe", json={"filename": "scan-b.wav"})  # promoted by an API request
    assert scanned.json()["queue_position"] == 2 and scanned.json()["priority"] == "high"
    (api.shared / ".pause").unlink()
    starts = {n: wait_for(lambda n=n: result_of(api.shared, n))["processing_start"]
              for n in ("urgent.wav", "scan-a.wav", "scan-b.wav")}
    assert starts["urgent.wav"] < starts["scan-b.wav"] < starts["scan-a.wav"]


def test_delete_of_a_running_job_is_immediate_and_leaves_nothing(start_api) -> None:
    api = start_api()
    first_pid = wait_for(lambda: api.daemon.workers()[0].pid)
    write_tone(api.shared / "slow--delete.wav")
    api.client.post("/transcribe", json={"filename": "slow--delete.wav"})
    wait_for(lambda: processing(api, "slow--delete.wav"), what="processing")
    started = time.monotonic()
    response = api.client.delete("/transcribe/slow--delete.wav")
    assert time.monotonic() - started < 2.0
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "deleted" and body["processing_interrupted"] is True
    assert body["removed_from_queue"] is False
    assert set(body["deleted_files"]) >= {"slow--delete.wav", "slow--delete.wav.in_progress"}
    wait_for(lambda: api.daemon.workers()[0].pid not in (None, first_pid), what="the worker killed and respawned")
    wait_for_rescans(api.daemon.watcher)  # nothing the killed worker had done may come back, nor the file
    assert sorted(p.name for p in api.shared.iterdir() if not p.name.startswith(".")) == ["manual_review"]
    assert api.client.get("/status/slow--delete.wav").status_code == 404


def test_delete_with_a_body_drops_a_queued_job(start_api) -> None:
    api = start_api()
    (api.shared / ".pause").touch()
    write_tone(api.shared / "queued.wav")
    api.client.post("/transcribe", json={"filename": "queued.wav"})
    response = api.client.request("DELETE", "/transcribe", json={"filename": "queued.wav"})
    assert response.status_code == 200
    assert response.json()["removed_from_queue"] is True and response.json()["processing_interrupted"] is False
    assert api.daemon.job("queued.wav") is None and len(api.daemon.queue) == 0
    assert api.client.delete("/transcribe/queued.wav").status_code == 404


def test_delete_removes_a_finished_transcript_too(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "done.wav")
    wait_for(lambda: result_of(api.shared, "done.wav"))
    body = api.client.delete("/transcribe/done.wav").json()
    assert sorted(body["deleted_files"]) == ["done.wav", "done.wav.result"]


@pytest.mark.parametrize("name", ["done.wav", "broken.wav"])
def test_status_is_not_found_right_after_a_delete(start_api, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # GET /status answers from a short cache that a job's end clears; a completed or
    # quarantined file has no job, so the delete itself must clear it (found by
    # tests/reliability/test_state_model.py).  A long TTL makes a stale answer certain.
    monkeypatch.setattr(api_module, "STATUS_CACHE_SECONDS", 60.0)
    api = start_api()
    if name == "broken.wav":
        (api.shared / name).write_text("not audio")
        wait_for(lambda: in_progress_of(api.shared / "manual_review", name), what="quarantine")
    else:
        write_tone(api.shared / name)
        wait_for(lambda: result_of(api.shared, name), what="the result")
    assert api.client.get(f"/status/{name}").json()["status"] in ("completed", "error")
    assert api.client.delete(f"/transcribe/{name}").status_code == 200
    response = api.client.get(f"/status/{name}")
    assert response.status_code == 404 and response.json()["status"] == "not_found", response.text


def test_a_status_read_across_a_state_change_is_not_cached(start_api, monkeypatch: pytest.MonkeyPatch) -> None:
    # The scan queued the file while GET /status was reading it as pending: the change
    # evicted nothing yet, then the stale "pending" was cached for the TTL, beside a job
    # already processing (found by tests/reliability/test_state_model.py).
    monkeypatch.setattr(api_module, "STATUS_CACHE_SECONDS", 60.0)
    api = start_api({"watch": {"stability_seconds": 600}})  # the scan leaves it pending: the test queues it
    (api.shared / ".pause").touch()
    write_tone(api.shared / "racing.wav")
    read_state = TranscriptionService.state

    def read_then_queue(service: TranscriptionService, name: str) -> FileState:
        state = read_state(service, name)
        if api.daemon.job(name) is None:
            api.daemon.submit(name)  # the state changes just after it was read
        return state

    monkeypatch.setattr(TranscriptionService, "state", read_then_queue)
    assert api.client.get("/status/racing.wav").json()["status"] == "pending"
    assert api.client.get("/status/racing.wav").json()["status"] == "queued"


def test_quarantined_file_is_409_and_force_starts_over(start_api) -> None:
    api = start_api()
    (api.shared / "broken.wav").write_text("not audio")
    wait_for(lambda: in_progress_of(api.shared / "manual_review", "broken.wav"), what="quarantine")
    refused = api.client.post("/transcribe", json={"filename": "broken.wav"})
    assert refused.status_code == 409
    assert refused.json()["error_code"] == "in_manual_review"
    assert refused.json()["last_error"]["code"] == "audio_decode_failed"
    old_task = in_progress_of(api.shared / "manual_review", "broken.wav")["task_id"]
    forced = api.client.post("/transcribe", json={"filename": "broken.wav", "force": True})
    assert forced.status_code == 202
    again = wait_for(lambda: (s := in_progress_of(api.shared / "manual_review", "broken.wav")) and
                     s["task_id"] != old_task and s, what="the second quarantine")
    assert len(again["attempts"]) == 1 and again["current_attempt"] == 1  # fresh attempts
    history = [p for p in (api.shared / "manual_review").iterdir() if ".in_progress." in p.name]
    assert len(history) == 1  # the first history is kept


def test_force_transcribes_a_completed_file_again(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "twice.wav")
    first = wait_for(lambda: result_of(api.shared, "twice.wav"))["task_id"]
    response = api.client.post("/transcribe", json={"filename": "twice.wav", "force": True, "wait": 10})
    assert response.status_code == 200
    assert response.json()["result"]["task_id"] != first


def test_status_reports_stage_progress_attempt_and_queue_position(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "slow--status.wav")
    write_tone(api.shared / "behind.wav")
    api.client.post("/transcribe", json={"filename": "slow--status.wav"})
    api.client.post("/transcribe", json={"filename": "behind.wav"})
    wait_for(lambda: api.client.get("/status/slow--status.wav").json()["stage"] == "transcribing")
    body = api.client.get("/status/slow--status.wav").json()
    assert body["status"] == "processing" and body["current_attempt"] == 1 and body["max_attempts"] == 3
    assert body["start_time"].endswith("Z") and body["queue_position"] is None
    assert api.client.get("/status/behind.wav").json()["queue_position"] == 1
    wait_for(lambda: api.client.get("/status/slow--status.wav").json()["status"] == "completed")
    missing = api.client.get("/status/nothing.wav")
    assert missing.status_code == 404 and missing.json()["status"] == "not_found"


def test_result_formats_and_a_cyrillic_download_name(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "встреча.wav", seconds=1.5)
    wait_for(lambda: result_of(api.shared, "встреча.wav"))
    assert api.client.get("/result/встреча.wav").json()["transcription"]["text"] == "встреча"
    srt = api.client.get("/result/встреча.wav", params={"format": "srt"})
    assert srt.text == "1\n00:00:00,000 --> 00:00:01,500\nвстреча\n"
    assert "filename*=UTF-8''%D0%B2%D1%81%D1%82%D1%80%D0%B5%D1%87%D0%B0.wav.srt" in srt.headers[
        "content-disposition"]
    vtt = api.client.get("/result/встреча.wav", params={"format": "vtt"}).text
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nвстреча")
    assert api.client.get("/result/встреча.wav", params={"format": "txt"}).text == "встреча\n"
    tsv = api.client.get("/result/встреча.wav", params={"format": "tsv"}).text
    assert tsv == "start\tend\ttext\n0\t1500\tвстреча\n"
    assert api.client.get("/result/встреча.wav", params={"format": "pdf"}).status_code == 422


def test_result_not_found_says_the_current_status(start_api) -> None:
    api = start_api()
    (api.shared / ".pause").touch()
    write_tone(api.shared / "waiting.wav")
    api.client.post("/transcribe", json={"filename": "waiting.wav"})
    response = api.client.get("/result/waiting.wav", params={"debug": True})
    assert response.status_code == 404
    assert response.json()["error_code"] == "result_not_found"
    assert response.json()["current_status"] == "queued"
    assert response.json()["debug_info"]["in_progress"]["status"] == "queued"


def test_debug_info_from_the_request_or_the_config(start_api) -> None:
    api = start_api({"api": {"debug": True}})
    (api.shared / "bad.wav").write_text("nope")
    wait_for(lambda: in_progress_of(api.shared / "manual_review", "bad.wav"))
    body = api.client.post("/transcribe", json={"filename": "bad.wav"}).json()
    assert body["error_code"] == "in_manual_review"
    assert body["debug_info"]["attempt_timeline"][0]["error"]["code"] == "audio_decode_failed"
    assert "debug_info" in api.client.post("/transcribe", json={"filename": "nothing.wav"}).json()


def test_settings_are_validated_naming_the_field(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "a.wav")
    for body, field in (({"language": "klingon"}, "language"), ({"temperature": 7}, "temperature"),
                        ({"compute_type": "int4"}, "compute_type"), ({"device": "tpu"}, "device"),
                        ({"model_size": "large-v9"}, "model_size"), ({"wait": -1}, "wait"),
                        ({"unknown": 1}, "unknown")):
        response = api.client.post("/transcribe", json={"filename": "a.wav", **body})
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["message"]
        assert set(response.json()) >= {"status", "error_code", "message", "filename"}


def test_health_and_metrics(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "counted.wav")
    wait_for(lambda: result_of(api.shared, "counted.wav"))
    health = api.client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy" and body["database"] == "disabled" and body["paused"] is False
    assert body["whisperx_available"] is True and body["worker"][0]["state"] == "idle"
    assert body["memory_breakdown_mb"]["daemon"] > 0 and body["queue_depth"] == 0
    assert body["memory_usage_mb"] == pytest.approx(sum(body["memory_breakdown_mb"].values()), abs=0.2)
    assert body["watcher"]["state"] == "running"
    metrics = api.client.get("/metrics").text
    assert 'transcriber_jobs_total{status="completed"} 1.0' in metrics
    assert "transcriber_attempts_total 1.0" in metrics
    assert 'transcriber_queue_depth{priority="2"} 0.0' in metrics
    assert "transcriber_real_time_factor_count 1.0" in metrics
    assert "transcriber_worker_restarts_total 0.0" in metrics
    api.daemon.watcher.stop()
    dead = wait_for(lambda: (r := api.client.get("/health")).status_code == 503 and r, timeout=5)  # cached 0.5 s
    assert dead.json()["watcher"]["state"] == "dead"


def test_auth_when_a_token_is_set(start_api) -> None:
    api = start_api({"api": {"token": "s3cret"}})
    write_tone(api.shared / "a.wav")
    assert api.client.get("/status/a.wav").status_code == 401
    assert api.client.get("/status/a.wav").json()["error_code"] == "unauthorized"
    assert api.client.get("/status/a.wav", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.client.get("/status/a.wav", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert api.client.get("/status/a.wav", headers={"X-API-Key": "s3cret"}).status_code == 200
    # Now cached: the cache's fast path must refuse exactly as the route does.
    assert api.client.get("/status/a.wav").status_code == 401
    assert api.client.get("/status/a.wav", headers={"X-API-Key": "wrong"}).status_code == 401
    both = {"X-API-Key": "s3cret", "Authorization": "Bearer wrong"}  # the bearer token wins, as documented
    assert api.client.get("/status/a.wav", headers=both).status_code == 401
    assert api.client.get("/metrics").status_code == 401
    assert api.client.post("/transcribe", json={"filename": "a.wav"}).status_code == 401
    assert api.client.get("/health").status_code == 200


def test_no_auth_without_a_token(start_api) -> None:
    api = start_api()
    assert api.client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    ("api", "refused"),
    [
        ({"host": "0.0.0.0"}, True),
        ({"host": "::"}, True),
        ({"host": "192.168.1.10"}, True),
        ({"host": "0.0.0.0", "token": "t"}, False),
        ({"host": "0.0.0.0", "allow_unauthenticated": True}, False),
        ({"host": "127.0.0.1"}, False),
        ({"host": "localhost"}, False),
        ({"host": "::1"}, False),
        ({"host": "0.0.0.0", "enabled": False}, False),
    ],
)
def test_refusal_to_listen_openly_without_a_token(tmp_path: Path, api: dict, refused: bool) -> None:
    config = load_config(write_config(tmp_path, {"api": {"enabled": True, **api}}), environ={})
    if refused:
        with pytest.raises(ConfigError, match=r"api\.host"):
            check_exposure(config)
    else:
        check_exposure(config)


def test_openapi_document_shows_the_models_with_examples(start_api) -> None:
    api = start_api()
    document = api.client.get("/openapi.json").json()
    assert {"/transcribe", "/transcribe/{filename}", "/status/{filename}", "/result/{filename}", "/health",
            "/metrics"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert schemas["TranscribeRequest"]["properties"]["filename"]["examples"] == ["звонок 2026-11-24.mp3"]
    assert "ErrorResponse" in schemas and "StatusResponse" in schemas
    assert api.client.get("/docs").status_code == 200


def test_a_speaker_hint_against_the_configured_one_is_a_422_naming_the_field(start_api) -> None:
    api = start_api({"whisperx": {"max_speakers": 3}})
    write_tone(api.shared / "meeting.wav")
    response = api.client.post("/transcribe", json={"filename": "meeting.wav", "min_speakers": 5})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_code"] == "invalid_settings" and body["setting"] == "max_speakers", body
    accepted = api.client.post("/transcribe", json={"filename": "meeting.wav", "diarize": True, "max_speakers": 2})
    assert accepted.status_code == 202, accepted.text
    settings = accepted.json()["settings"]
    assert (settings["diarize"], settings["word_timestamps"], settings["max_speakers"]) == (True, True, 2)
