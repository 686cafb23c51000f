"""What a client written against the specification meets (issue 13): a file still
being copied, settings this host cannot run, debug, the debug and error bodies,
health, DELETE and long waits.  A real daemon and API on a temp folder, fake engine."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx

from tests.helpers import in_progress_of, wait_for, write_tone
from transcriber.domain.job import JobStatus
from transcriber.engine.capabilities import host_capabilities

SLOW_WINDOW = {"watch": {"stability_seconds": 2.0, "close_settle_seconds": 2.0}}


def test_a_request_for_a_file_still_being_copied_waits_for_the_whole_file(start_api, tmp_path: Path) -> None:
    # Regression: POST submitted at once, and a client's `wait` got "completed" with
    # 2.7 s of an 8.1 s recording; the watcher redid it later, too late for the client.
    api = start_api(SLOW_WINDOW)
    whole = write_tone(tmp_path / "whole.wav", seconds=4.0).read_bytes()
    target = api.shared / "call-copying.wav"
    replies: list[httpx.Response] = []
    third = len(whole) // 3
    chunks = [whole[:third], whole[third:2 * third], whole[2 * third:]]
    with target.open("wb") as copy:
        copy.write(chunks[0])
        copy.flush()
        asker = threading.Thread(target=lambda: replies.append(api.client.post(
            "/transcribe", json={"filename": target.name, "wait": 30})))
        asker.start()
        status = wait_for(lambda: _status_if(api, target.name, "waiting_for_file"), what="waiting_for_file")
        assert status["status"] == "queued" and status["queue_position"] is None
        assert in_progress_of(api.shared, target.name)["progress_info"]["stage"] == "waiting_for_file"
        for chunk in chunks[1:]:  # the copy goes on, in pauses shorter than the window
            time.sleep(0.8)
            assert _status_if(api, target.name, "waiting_for_file"), "started before the copy ended"
            copy.write(chunk)
            copy.flush()
    asker.join(60)
    assert replies and replies[0].status_code == 200, replies[0].text if replies else "no reply"
    assert replies[0].json()["result"]["duration_seconds"] == 4.0  # the whole recording, not a third of it


def test_a_waiting_job_is_dropped_when_its_file_goes(start_api) -> None:
    api = start_api(SLOW_WINDOW)
    (api.shared / ".pause").touch()
    write_tone(api.shared / "gone-while-waiting.wav")
    api.client.post("/transcribe", json={"filename": "gone-while-waiting.wav"})
    assert api.daemon.job("gone-while-waiting.wav").waiting_for_file
    (api.shared / "gone-while-waiting.wav").unlink()
    wait_for(lambda: api.daemon.job("gone-while-waiting.wav") is None, what="the waiting job dropped")
    assert not (api.shared / "gone-while-waiting.wav.in_progress").exists()


def test_settings_this_host_cannot_run_are_refused_at_the_request(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "fine.wav")
    cpu_types = sorted(host_capabilities().compute_types["cpu"])
    if "float16" not in cpu_types:  # every CPU CTranslate2 build so far
        refused = api.client.post("/transcribe", json={"filename": "fine.wav", "compute_type": "float16"})
        assert refused.status_code == 422
        body = refused.json()
        assert body["error_code"] == "unsupported_compute_type" and body["setting"] == "compute_type"
        assert body["supported"] == cpu_types and "float16" in body["message"]
    if "cuda" not in host_capabilities().compute_types:
        refused = api.client.post("/transcribe", json={"filename": "fine.wav", "device": "cuda"})
        assert refused.status_code == 422
        assert refused.json()["error_code"] == "unsupported_device"
        assert refused.json()["supported"] == ["cpu"]
    missing = api.client.post("/transcribe", json={"filename": "fine.wav", "model_size": "large-v3"})
    assert missing.status_code == 422
    assert missing.json()["error_code"] == "unsupported_model_size"
    assert "base" in missing.json()["supported"]
    assert api.daemon.job("fine.wav") is None or api.daemon.job("fine.wav").source.value == "scan"
    assert not (api.shared / "manual_review" / "fine.wav").exists()


def test_debug_never_restarts_a_running_job(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "slow--debug.wav")
    assert api.client.post("/transcribe", json={"filename": "slow--debug.wav"}).status_code == 202
    wait_for(lambda: (job := api.daemon.job("slow--debug.wav")) and job.status is JobStatus.PROCESSING,
             what="processing")
    again = api.client.post("/transcribe", json={"filename": "slow--debug.wav", "debug": True})
    assert again.status_code == 202
    assert again.json()["restarted"] is False
    job = api.daemon.job("slow--debug.wav")
    assert job is not None and len(job.attempts) == 1 and job.attempts[0].status.value == "running"


def _status_if(api, name: str, stage: str) -> dict | None:
    body = api.client.get(f"/status/{name}").json()
    return body if body.get("stage") == stage else None


def test_debug_info_and_error_objects_as_specified(start_api) -> None:
    api = start_api({"processing": {"max_retry_attempts": 2, "retry_backoff_seconds": 1.5}})
    write_tone(api.shared / "flaky--debug.wav")
    api.client.post("/transcribe", json={"filename": "flaky--debug.wav"})

    def retrying() -> dict | None:
        body = api.client.get("/status/flaky--debug.wav", params={"debug": "true"}).json()
        return body if body.get("last_error") and body.get("debug_info") else None

    body = wait_for(retrying, what="a failed first attempt, waiting to retry")
    _assert_error_object(body["last_error"], attempt=1)
    info = body["debug_info"]
    assert info["in_progress_content"]["filename"] == "flaky--debug.wav"
    assert [e["code"] for e in info["full_error_history"]] == ["engine_error"]
    events = [event["event"] for event in info["processing_timeline"]]
    assert events[:3] == ["queued", "attempt_started", "attempt_failed"]
    assert "in_progress" in info and "attempt_timeline" in info  # the first release's keys stay

    wait_for(lambda: (api.shared / "manual_review" / "flaky--debug.wav").exists(), what="manual_review")
    failed = api.client.get("/status/flaky--debug.wav", params={"debug": "true"}).json()
    assert failed["status"] == "error"
    assert [e["attempt"] for e in failed["debug_info"]["full_error_history"]] == [1, 2]
    _assert_error_object(failed["last_error"], attempt=2)
    assert "debug_info" not in api.client.get("/status/flaky--debug.wav").json()
    refused = api.client.post("/transcribe", json={"filename": "flaky--debug.wav", "debug": True})
    assert refused.status_code == 409
    assert refused.json()["suggestion"] == "fix the cause, then `force: true`"
    assert refused.json()["last_error"]["suggestion"].startswith("retried; if it repeats")
    assert refused.json()["debug_info"]["full_error_history"][-1]["attempt"] == 2
    missing = api.client.get("/status/nowhere.wav").json()
    assert missing["suggestion"] == "copy the file first, or raise the wait for slow shares"


def _assert_error_object(error: dict, attempt: int) -> None:
    assert set(error) >= {"code", "message", "timestamp", "attempt", "suggestion"}
    assert error["code"] == "engine_error" and error["attempt"] == attempt
    assert error["timestamp"].endswith("Z") and "simulated engine failure" in error["message"]


def test_delete_says_what_the_specification_says_and_results_carry_the_duration(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "spoken.wav", seconds=1.5)
    done = api.client.post("/transcribe", json={"filename": "spoken.wav", "wait": 30}).json()
    assert done["result"]["metadata"]["duration_seconds"] == done["result"]["duration_seconds"] == 1.5
    deleted = api.client.delete("/transcribe/spoken.wav").json()
    assert deleted["message"] == "Files deleted successfully"


def test_hundreds_of_clients_can_wait_long_at_little_cost(start_api) -> None:
    # wait up to api.max_wait_seconds (1800 s by default, as specified); a waiting
    # client is a parked coroutine, not a thread (api_long_poll.py).
    api = start_api()
    assert api.daemon.config.api.max_wait_seconds == 1800
    write_tone(api.shared / "slow--crowd.wav")
    wait_for(lambda: api.daemon.job("slow--crowd.wav"), what="the watcher's job")
    clients = 200
    threads_before = threading.active_count()
    seen: dict[str, int] = {}

    async def crowd() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=clients + 10)
        async with httpx.AsyncClient(base_url=str(api.client.base_url), timeout=120, limits=limits) as client:
            waiting = [asyncio.create_task(client.post("/transcribe", json={"filename": "slow--crowd.wav",
                                                                            "wait": 1800}))
                       for _ in range(clients)]
            await asyncio.sleep(1.0)
            health = await client.get("/health")
            seen["health"] = health.status_code
            seen["threads"] = threading.active_count()
            return await asyncio.gather(*waiting)

    replies = asyncio.run(crowd())
    assert [reply.status_code for reply in replies] == [200] * clients
    assert {reply.json()["result"]["transcription"]["text"] for reply in replies} == {"slow--crowd"}
    assert seen["health"] == 200
    assert seen["threads"] - threads_before < 50, "waiting clients must not hold a thread each"


def test_docs_need_the_token_unless_made_public(start_api) -> None:
    api = start_api({"api": {"token": "s3cret"}})
    for path in ("/docs", "/openapi.json", "/redoc"):
        refused = api.client.get(path)
        assert refused.status_code == 401 and refused.json()["error_code"] == "unauthorized", path
        assert api.client.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200, path
    assert api.client.get("/health").status_code == 200


def test_public_docs_open_the_description_only(start_api) -> None:
    api = start_api({"api": {"token": "s3cret", "public_docs": True}})
    assert api.client.get("/openapi.json").status_code == 200
    assert api.client.get("/status/x.wav").status_code == 401


def test_whisperx_debug_turns_debug_info_on(start_api) -> None:
    api = start_api({"whisperx": {"debug": True}})
    assert "debug_info" in api.client.get("/status/nowhere.wav").json()


def test_a_replaced_recording_is_not_answered_with_the_old_transcript(start_api) -> None:
    api = start_api()
    write_tone(api.shared / "replaced.wav", seconds=1.0)
    first = api.client.post("/transcribe", json={"filename": "replaced.wav", "wait": 30}).json()
    assert first["result"]["duration_seconds"] == 1.0
    write_tone(api.shared / "replaced.wav", seconds=2.0)  # a new recording under the same name
    again = api.client.post("/transcribe", json={"filename": "replaced.wav", "wait": 30})
    assert again.status_code == 200, again.text
    assert again.json()["result"]["duration_seconds"] == 2.0


def test_a_waiting_job_ends_when_its_transcript_is_copied_in_with_it(start_api, tmp_path: Path) -> None:
    api = start_api(SLOW_WINDOW)
    (api.shared / ".pause").touch()
    write_tone(api.shared / "with-transcript.wav")
    api.client.post("/transcribe", json={"filename": "with-transcript.wav"})
    assert api.daemon.job("with-transcript.wav").waiting_for_file
    (api.shared / "with-transcript.wav.result").write_text('{"task_id": "copied", "transcription": {"text": "x"}}')
    wait_for(lambda: api.daemon.job("with-transcript.wav") is None, what="the waiting job to end")
    done = api.client.post("/transcribe", json={"filename": "with-transcript.wav"})
    assert done.status_code == 200 and done.json()["result"]["task_id"] == "copied"
