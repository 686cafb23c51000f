"""What a client written against the specification meets (issue 13): a file still
being copied, settings this host cannot run, debug, the debug and error bodies,
health, DELETE and long waits.  A real daemon and API on a temp folder, fake engine."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.helpers import in_progress_of, wait_for, write_tone
from transcriber.capabilities import host_capabilities
from transcriber.jobs import Status

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
    write_tone(api.shared / "slow-debug.wav")
    assert api.client.post("/transcribe", json={"filename": "slow-debug.wav"}).status_code == 202
    wait_for(lambda: (job := api.daemon.job("slow-debug.wav")) and job.status is Status.PROCESSING,
             what="processing")
    again = api.client.post("/transcribe", json={"filename": "slow-debug.wav", "debug": True})
    assert again.status_code == 202
    assert again.json()["restarted"] is False
    job = api.daemon.job("slow-debug.wav")
    assert job is not None and len(job.attempts) == 1 and job.attempts[0].status.value == "running"


def _status_if(api, name: str, stage: str) -> dict | None:
    body = api.client.get(f"/status/{name}").json()
    return body if body.get("stage") == stage else None
