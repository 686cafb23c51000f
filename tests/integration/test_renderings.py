"""``output.write_formats``: ``call.wav.srt`` and friends beside the ``.result`` (issue 13, point 17).

A real daemon with the fake engine: a completed file gets the configured
renderings, equal to what ``GET /result?format=`` serves; they never become
jobs; DELETE removes them and lists them; a forced re-run replaces them.
(Review taking them along: tests/integration/test_forced_rerun.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import result_of, wait_for, wait_for_rescans, write_tone
from transcriber.exports import render_bytes

RENDERINGS = {"output": {"write_formats": ["srt", "txt"]}}


def done(shared: Path, name: str) -> dict | None:
    """The result, once the job is over (its ``.in_progress`` gone)."""
    result = result_of(shared, name)
    return result if result and not (shared / f"{name}.in_progress").exists() else None


def test_a_completed_file_gets_the_configured_renderings(start_daemon, shared: Path) -> None:
    start_daemon(RENDERINGS)
    write_tone(shared / "звонок 1.wav")
    result = wait_for(lambda: done(shared, "звонок 1.wav"), what="the result")
    for fmt in ("srt", "txt"):
        assert (shared / f"звонок 1.wav.{fmt}").read_text(encoding="utf-8") == render_bytes(result, fmt).decode(), fmt
    assert (shared / "звонок 1.wav.txt").read_text(encoding="utf-8") == "звонок 1\n"
    assert sorted(p.name for p in shared.iterdir() if p.name.startswith("звонок")) == [
        "звонок 1.wav", "звонок 1.wav.result", "звонок 1.wav.srt", "звонок 1.wav.txt"]


def test_the_json_rendering_is_the_result_document(start_daemon, shared: Path) -> None:
    start_daemon({"output": {"write_formats": ["json", "vtt", "tsv"]}})
    write_tone(shared / "call.wav")
    result = wait_for(lambda: done(shared, "call.wav"), what="the result")
    assert json.loads((shared / "call.wav.json").read_text(encoding="utf-8")) == result
    assert (shared / "call.wav.vtt").read_text(encoding="utf-8").startswith("WEBVTT\n")
    assert (shared / "call.wav.tsv").read_text(encoding="utf-8") == render_bytes(result, "tsv").decode()


def test_renderings_never_become_jobs_even_with_their_formats_as_extensions(start_daemon, shared: Path) -> None:
    daemon = start_daemon({**RENDERINGS, "watch": {"stability_seconds": 0.3, "rescan_interval_seconds": 0.5,
                                                   "extensions": ["wav", "srt", "txt"]}})
    write_tone(shared / "call.wav")
    wait_for(lambda: done(shared, "call.wav"), what="the result")
    (shared / "subtitles.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")  # configured: audio
    wait_for(lambda: (shared / "subtitles.srt.result").exists() or (shared / "manual_review" / "subtitles.srt")
             .exists(), what="the .srt configured as audio to be taken up")
    wait_for_rescans(daemon.watcher)  # the renderings were seen, and not taken
    assert daemon.job("call.wav.srt") is None and daemon.job("call.wav.txt") is None
    names = {p.name for p in shared.iterdir()} | {p.name for p in (shared / "manual_review").iterdir()}
    assert not {"call.wav.srt.result", "call.wav.txt.result", "call.wav.srt.in_progress",
                "call.wav.srt.srt", "call.wav.txt.txt"} & names, names


def test_delete_removes_the_renderings_and_lists_them(start_api) -> None:
    api = start_api(RENDERINGS)
    write_tone(api.shared / "done.wav")
    wait_for(lambda: done(api.shared, "done.wav"), what="the result")
    assert (api.shared / "done.wav.srt").exists()
    body = api.client.delete("/transcribe/done.wav").json()
    assert sorted(body["deleted_files"]) == ["done.wav", "done.wav.result", "done.wav.srt", "done.wav.txt"]
    assert not [p for p in api.shared.iterdir() if p.name.startswith("done.wav")]


def test_a_forced_rerun_replaces_the_renderings(start_api) -> None:
    api = start_api({"output": {"write_formats": ["srt", "json"]}})
    write_tone(api.shared / "twice.wav")
    first = wait_for(lambda: done(api.shared, "twice.wav"), what="the first result")
    (api.shared / "twice.wav.srt").write_text("stale subtitles")
    response = api.client.post("/transcribe", json={"filename": "twice.wav", "force": True, "wait": 20})
    assert response.status_code == 200, response.text
    second = response.json()["result"]
    assert second["task_id"] != first["task_id"]
    assert (api.shared / "twice.wav.srt").read_text(encoding="utf-8") == render_bytes(second, "srt").decode()
    assert json.loads((api.shared / "twice.wav.json").read_text(encoding="utf-8"))["task_id"] == second["task_id"]
    served = api.client.get("/result/twice.wav", params={"format": "srt"}).text
    assert served == (api.shared / "twice.wav.srt").read_text(encoding="utf-8")
