"""Corrections and speaker names through the API and the folder (issue 16, point 3), and
fragments (point 2): a real daemon and API with the fake engine, which diarizes a file's
name into two speakers (tests/fake_engine.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import wait_for, write_tone

NAME = "hello there good morning.wav"  # SPEAKER_00 "hello there", SPEAKER_01 "good morning"
SETTINGS = {"output": {"write_formats": ["txt", "srt"]}}


def transcribe(api, name: str = NAME, **extra) -> dict:
    response = api.client.post("/transcribe", json={"filename": name, "diarize": True, "wait": 20, **extra})
    assert response.status_code == 200, response.text
    return response.json()["result"]


@pytest.fixture
def api(start_api):
    harness = start_api(SETTINGS)
    write_tone(harness.shared / NAME, seconds=2.0)
    transcribe(harness)
    return harness


def sidecar_files(shared: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in shared.iterdir() if p.is_file() and p.name.startswith(NAME)}


def test_corrections_round_trip_and_reach_every_rendering(api) -> None:
    machine = json.loads((api.shared / f"{NAME}.result").read_text(encoding="utf-8"))
    first = api.client.get(f"/edits/{NAME}").json()
    assert (first["version"], first["speakers"], first["segments"]) == (0, {}, {})
    response = api.client.put(f"/edits/{NAME}", json={
        "version": 0, "speakers": {"SPEAKER_00": "Диспетчер"}, "segments": {"1": {"text": "good evening"}}})
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["version"] == 1 and saved["speakers"] == {"SPEAKER_00": "Диспетчер"}
    assert saved["segments"] == {"1": {"original": "good morning", "text": "good evening"}}
    assert api.client.get(f"/edits/{NAME}").json() == saved
    on_disk = json.loads((api.shared / f"{NAME}.edits").read_text(encoding="utf-8"))
    assert on_disk["version"] == 1 and on_disk["segments"]["1"]["text"] == "good evening"
    # The machine output is untouched; the renderings beside it were written again, edited.
    assert json.loads((api.shared / f"{NAME}.result").read_text(encoding="utf-8")) == machine
    rendered = (api.shared / f"{NAME}.txt").read_text(encoding="utf-8")
    assert rendered == "Диспетчер: hello there\nSPEAKER_01: good evening\n"
    assert "[Диспетчер] hello there" in (api.shared / f"{NAME}.srt").read_text(encoding="utf-8")
    # Exports apply the corrections by default; the JSON result only when asked.
    assert api.client.get(f"/result/{NAME}", params={"format": "txt"}).text == \
        (api.shared / f"{NAME}.txt").read_text(encoding="utf-8")
    assert "good morning" in api.client.get(f"/result/{NAME}", params={"format": "txt", "edited": False}).text
    assert api.client.get(f"/result/{NAME}").json() == machine
    edited = api.client.get(f"/result/{NAME}", params={"edited": True}).json()
    assert edited["transcription"]["segments"][0]["speaker_name"] == "Диспетчер"
    assert edited["transcription"]["text"] == "hello there good evening"
    assert edited["metadata"]["edits"]["version"] == 1
    docx = api.client.get(f"/result/{NAME}", params={"format": "docx"})
    assert docx.headers["content-type"].startswith("application/vnd.openxmlformats")
    paragraphs = [p for p in docx_paragraphs(docx.content) if p.text.startswith("[00:00:0")]
    assert [p.text for p in paragraphs] == ["[00:00:00] Диспетчер: hello there",
                                            "[00:00:01] SPEAKER_01: good evening"]
    assert [run.text for run in paragraphs[0].runs if run.bold] == ["Диспетчер"]


def docx_paragraphs(content: bytes) -> list:
    import io

    import docx

    return list(docx.Document(io.BytesIO(content)).paragraphs)


def test_a_stale_version_is_a_conflict_and_writes_nothing(api) -> None:
    first = api.client.put(f"/edits/{NAME}", json={"version": 0, "speakers": {"SPEAKER_01": "Caller"}})
    assert first.status_code == 200
    before = sidecar_files(api.shared)
    response = api.client.put(f"/edits/{NAME}", json={"version": 0, "speakers": {"SPEAKER_01": "Someone else"}})
    assert response.status_code == 409, response.text
    assert response.json()["error_code"] == "edit_conflict" and response.json()["current_version"] == 1
    assert sidecar_files(api.shared) == before


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"version": 0, "segments": {"5": {"text": "x"}}}, 422, "invalid_edits"),  # an unknown segment
    ({"version": 0, "segments": {"0": {"text": "x" * 6000}}}, 422, "invalid_edits"),
    ({"version": 0, "speakers": {"SPEAKER_00": "Bob\x1b[31m"}}, 422, "invalid_edits"),  # control characters
    ({"version": 0, "speakers": {"SPEAKER_00": "<img src=x onerror=alert(1)>"}}, 422, "invalid_edits"),
    ({"version": 0, "speakers": {"SPEAKER_07": "Nobody"}}, 422, "invalid_edits"),
    ({"speakers": {"SPEAKER_00": "No version"}}, 422, "invalid_edits"),
    ({"version": -1}, 422, "invalid_edits"),
    ({"version": True}, 422, "invalid_edits"),
    ({"version": 0, "segments": {"0": {"text": "x" * 10_000_000}}}, 413, "request_too_large"),  # 10 MB of text
])
def test_hostile_corrections_are_refused_and_write_nothing(api, body: dict, status: int, code: str) -> None:
    before = sidecar_files(api.shared)
    response = api.client.put(f"/edits/{NAME}", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert sidecar_files(api.shared) == before


def test_a_body_that_is_not_a_json_object_is_refused(api) -> None:
    for raw in (b"{bad", b"[1, 2]", b"[" * 100_000 + b"]" * 100_000):
        response = api.client.put(f"/edits/{NAME}", content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and response.json()["error_code"] == "invalid_json", response.text
    assert not (api.shared / f"{NAME}.edits").exists()


def test_edits_of_a_file_not_done_are_a_404(api) -> None:
    response = api.client.get("/edits/missing.wav")
    assert response.status_code == 404 and response.json()["error_code"] == "result_not_found"
    response = api.client.put("/edits/missing.wav", json={"version": 0})
    assert response.status_code == 404


def test_a_rerun_keeps_the_speaker_map_and_drops_what_no_longer_matches(api) -> None:
    api.client.put(f"/edits/{NAME}", json={"version": 0, "speakers": {"SPEAKER_00": "Dispatcher"},
                                           "segments": {"1": {"text": "good evening"}}}).raise_for_status()
    transcribe(api, force=True)  # the same words again: everything still holds
    kept = api.client.get(f"/edits/{NAME}").json()
    assert kept["version"] == 1 and kept["speakers"] == {"SPEAKER_00": "Dispatcher"} and "1" in kept["segments"]
    assert "good evening" in (api.shared / f"{NAME}.txt").read_text(encoding="utf-8")
    transcribe(api, force=True, diarize=False)  # one anonymous segment now
    rebased = api.client.get(f"/edits/{NAME}").json()
    assert rebased["version"] == 2 and rebased["speakers"] == {} and rebased["segments"] == {}
    assert {(d.get("segment"), d.get("speaker")) for d in rebased["dropped"]} == {(1, None), (None, "SPEAKER_00")}
    assert (api.shared / f"{NAME}.txt").read_text(encoding="utf-8") == "hello there good morning\n"


def test_delete_removes_the_corrections(api) -> None:
    api.client.put(f"/edits/{NAME}", json={"version": 0, "speakers": {"SPEAKER_00": "A"}}).raise_for_status()
    body = api.client.delete(f"/transcribe/{NAME}").json()
    assert f"{NAME}.edits" in body["deleted_files"]
    assert not [p for p in api.shared.iterdir() if p.name.startswith(NAME)]


def test_a_fragment_of_every_format(api) -> None:
    whole = api.client.get(f"/result/{NAME}", params={"format": "txt"}).text
    assert whole == "SPEAKER_00: hello there\nSPEAKER_01: good morning\n"
    part = api.client.get(f"/result/{NAME}", params={"format": "txt", "from": 1.2, "to": 2})
    assert part.status_code == 200 and part.text == "SPEAKER_01: good morning\n"
    assert "filename*=UTF-8''hello%20there%20good%20morning.wav.1.2-2.txt" in part.headers["content-disposition"]
    document = api.client.get(f"/result/{NAME}", params={"from": 1.5, "relative": True}).json()
    assert document["fragment"] == {"from": 1.5, "to": 2.0, "relative": True}
    assert [(s["start"], s["end"], s["id"]) for s in document["transcription"]["segments"]] == [(0.0, 0.5, 1)]
    for params in ({"from": -1}, {"from": 3}, {"from": 1, "to": 1}, {"from": "nan"}, {"to": "inf"}):
        response = api.client.get(f"/result/{NAME}", params={"format": "srt", **params})
        assert response.status_code == 422 and response.json()["error_code"] in ("invalid_range", "invalid_request"), \
            (params, response.text)
    assert api.client.get(f"/result/{NAME}", params={"from": "soon"}).status_code == 422
    for fmt in ("json", "txt", "srt", "vtt", "tsv", "md", "docx"):
        response = api.client.get(f"/result/{NAME}", params={"format": fmt, "from": 0.2, "to": 1.5})
        assert response.status_code == 200 and response.content, (fmt, response.text[:200])


def test_the_result_of_a_file_in_a_subfolder_is_named_by_its_own_name(start_api) -> None:
    api = start_api({"watch": {"recursive": True}})
    (api.shared / "team").mkdir()
    write_tone(api.shared / "team" / "звонок.wav")
    wait_for(lambda: (api.shared / "team" / "звонок.wav.result").exists(), what="the result")
    response = api.client.get("/result/team/звонок.wav", params={"format": "srt"})
    assert response.status_code == 200
    assert "filename*=UTF-8''%D0%B7%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA.wav.srt" in response.headers["content-disposition"]


def test_a_new_recording_under_the_same_name_keeps_no_corrections(api) -> None:
    api.client.put(f"/edits/{NAME}", json={"version": 0, "speakers": {"SPEAKER_00": "Dispatcher"},
                                           "segments": {"1": {"text": "good evening"}}}).raise_for_status()
    saved = json.loads((api.shared / f"{NAME}.edits").read_text(encoding="utf-8"))
    before = json.loads((api.shared / f"{NAME}.result").read_text(encoding="utf-8"))
    assert saved["audio"] == before["metadata"]["audio_file"]
    write_tone(api.shared / NAME, seconds=3.0)  # another call, the same name (and so the same fake words)
    wait_for(lambda: json.loads((api.shared / f"{NAME}.result").read_text(encoding="utf-8"))["task_id"]
             != before["task_id"] and not (api.shared / f"{NAME}.in_progress").exists(), what="the new transcript")
    rebased = api.client.get(f"/edits/{NAME}").json()
    assert rebased["speakers"] == {} and rebased["segments"] == {} and rebased["version"] == 2
    assert {d["reason"] for d in rebased["dropped"]} == {"the audio file was replaced by another recording"}
    assert len(rebased["dropped"]) == 2
    assert (api.shared / f"{NAME}.txt").read_text(encoding="utf-8") == "hello there good morning\n"


def test_corrections_out_of_reach_are_never_saved_over(api) -> None:
    edits = api.shared / f"{NAME}.edits"
    edits.mkdir()  # exists, cannot be read as a file (root reads any file: a mode would not stop it)
    for response in (api.client.get(f"/edits/{NAME}"),
                     api.client.put(f"/edits/{NAME}", json={"version": 0, "speakers": {"SPEAKER_00": "A"}}),
                     api.client.get(f"/result/{NAME}", params={"format": "txt"})):
        assert response.status_code == 503, response.text
        assert response.json()["error_code"] == "sidecar_unreadable"
        assert f"{NAME}.edits cannot be read" in response.json()["message"]
    assert edits.is_dir() and not list(edits.iterdir())


def test_a_result_edited_by_hand_into_nonsense_is_refused_before_the_first_byte(api) -> None:
    path = api.shared / f"{NAME}.result"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["transcription"]["segments"][1]["start"] = "a minute in"
    path.write_text(json.dumps(document), encoding="utf-8")
    response = api.client.get(f"/result/{NAME}", params={"format": "srt"})
    assert response.status_code == 503 and response.json()["error_code"] == "sidecar_unreadable"
    assert "transcription.segments[1] has no start or end time" in response.json()["message"]
    assert api.client.get(f"/result/{NAME}").json() == document  # the JSON as the file holds it


def test_a_rerun_while_the_corrections_are_out_of_reach_leaves_them_alone(api) -> None:
    api.client.put(f"/edits/{NAME}", json={"version": 0, "speakers": {"SPEAKER_00": "Dispatcher"}}).raise_for_status()
    edits = api.shared / f"{NAME}.edits"
    saved = edits.read_bytes()
    edits.unlink()
    edits.mkdir()  # out of reach while the re-run completes
    transcribe(api, force=True)
    assert (api.shared / f"{NAME}.txt").read_text(encoding="utf-8").startswith("SPEAKER_00: hello there")
    assert edits.is_dir()  # not replaced, not moved aside
    assert api.client.get(f"/result/{NAME}").status_code == 200  # the JSON needs no corrections
    edits.rmdir()
    edits.write_bytes(saved)  # back: they apply again
    assert api.client.get(f"/result/{NAME}", params={"format": "txt"}).text.startswith("Dispatcher: hello there")
