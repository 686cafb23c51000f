"""The command line, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, write_config
from transcriber.folder.lock import InstanceLock


def run_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "transcriber", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_transcribe_a_broken_file_exits_1_with_the_error_code(tmp_path: Path) -> None:
    (tmp_path / "notes.mp3").write_text("not audio")
    completed = run_cli("transcribe", str(tmp_path / "notes.mp3"), config=write_config(tmp_path))
    assert completed.returncode == 1
    assert completed.stdout == ""
    error = json.loads(completed.stderr.strip().splitlines()[-1])
    assert error["error_code"] == "audio_decode_failed"


def test_transcribe_with_a_missing_model_exits_2(tmp_path: Path) -> None:
    completed = run_cli("transcribe", str(tmp_path / "x.wav"), "--model-size", "large-v3",
                        config=write_config(tmp_path))
    assert completed.returncode == 2
    assert json.loads(completed.stderr.strip().splitlines()[-1])["error_code"] == "model_unavailable"


def test_daemon_with_a_missing_model_refuses_to_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"models": {"dir": str(tmp_path / "empty-models")}})
    completed = run_cli(config=config)
    assert completed.returncode == 2
    assert "model 'base' is not installed" in completed.stdout + completed.stderr


def test_models_verify_reports_the_installed_models(tmp_path: Path) -> None:
    completed = run_cli("models", "verify", config=write_config(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert "base: ok" in completed.stdout and "tiny.en: ok" in completed.stdout
    assert "speakers: ok" in completed.stdout
    unknown = run_cli("models", "verify", "speaker", config=write_config(tmp_path))
    assert unknown.returncode == 2 and "known: base, tiny.en, speakers" in unknown.stderr


def test_daemon_refuses_defaults_this_host_cannot_run_in_one_line(tmp_path: Path) -> None:
    # float16 on a CPU made every file fail in the worker (ValueError) and land in
    # manual_review/ after one attempt; the daemon now refuses to start (issue 13).
    completed = run_cli(config=write_config(tmp_path, {"whisperx": {"compute_type": "float16"}}))
    assert completed.returncode == 2
    errors = [line for line in (completed.stdout + completed.stderr).splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "whisperx.compute_type" in errors[0] and "int8" in errors[0]
    cuda = run_cli(config=write_config(tmp_path, {"whisperx": {"device": "cuda"}}))
    assert cuda.returncode == 2 and "whisperx.device" in cuda.stdout + cuda.stderr


def test_transcribe_refuses_a_compute_type_the_host_cannot_run(tmp_path: Path) -> None:
    completed = run_cli("transcribe", str(tmp_path / "x.wav"), "--compute-type", "float16",
                        config=write_config(tmp_path))
    assert completed.returncode == 2
    assert json.loads(completed.stderr.strip().splitlines()[-1])["error_code"] == "unsupported_compute_type"


def test_config_path_is_the_default_of_config(tmp_path: Path) -> None:
    # The image sets CONFIG_PATH and runs the CLI without --config (issue 13, point 9).
    config = write_config(tmp_path, {"models": {"dir": str(tmp_path / "models-from-config-path")}})
    completed = subprocess.run([sys.executable, "-m", "transcriber", "models", "verify", "base"],
                               capture_output=True, text=True, timeout=120, cwd=tmp_path,
                               env={**os.environ, "CONFIG_PATH": str(config)})
    assert completed.returncode == 2
    assert "models-from-config-path" in completed.stderr


def _transcribed(folder: Path) -> Path:
    """A diarized ``.result`` beside its audio, as the daemon writes them."""
    folder.mkdir(exist_ok=True)
    audio = folder / "звонок 1.wav"
    audio.write_bytes(b"")
    segments = [{"id": 0, "start": 0.0, "end": 2.0, "text": "Dispatch, hello.", "speaker": "SPEAKER_00"},
                {"id": 1, "start": 2.5, "end": 5.0, "text": "Fire at the station.", "speaker": "SPEAKER_01"}]
    result = {"task_id": "t-1", "filename": audio.name, "duration_seconds": 6.0,
              "processing_end": "2026-12-07T06:00:00.000Z",
              "transcription": {"text": "Dispatch, hello. Fire at the station.", "language": "en",
                                "segments": segments,
                                "speakers": [{"id": "SPEAKER_00", "talk_seconds": 2.0, "words": 0, "segments": 1},
                                             {"id": "SPEAKER_01", "talk_seconds": 2.5, "words": 0, "segments": 1}]},
              "metadata": {}}
    (folder / f"{audio.name}.result").write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return audio


def test_edits_and_export_round_trip_through_the_folder(tmp_path: Path) -> None:
    audio = _transcribed(tmp_path / "shared")
    config = write_config(tmp_path)
    shown = run_cli("edits", str(audio), config=config)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["version"] == 0
    (tmp_path / "doc.json").write_text(json.dumps({"version": 0, "speakers": {"SPEAKER_00": "Диспетчер"},
                                                   "segments": {"1": {"text": "Fire at the bus station."}}}))
    put = run_cli("edits", str(audio), "--put", str(tmp_path / "doc.json"), config=config)
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["version"] == 1
    assert json.loads((audio.parent / f"{audio.name}.edits").read_text(encoding="utf-8"))["version"] == 1
    stale = run_cli("edits", str(audio), "--put", str(tmp_path / "doc.json"), config=config)
    assert stale.returncode == 2 and "edit_conflict" in stale.stderr
    text = run_cli("export", str(audio), "--format", "txt", config=config)
    assert text.returncode == 0, text.stderr
    assert text.stdout == "Диспетчер: Dispatch, hello.\nSPEAKER_01: Fire at the bus station.\n"
    machine = run_cli("export", str(audio), "--format", "txt", "--no-edited", config=config)
    assert "SPEAKER_00: Dispatch, hello." in machine.stdout
    part = run_cli("export", str(audio), "--format", "txt", "--from", "2.2", config=config)
    assert part.stdout == "SPEAKER_01: Fire at the bus station.\n"
    bad = run_cli("export", str(audio), "--from", "9", config=config)
    assert bad.returncode == 2 and "invalid_range" in bad.stderr
    docx = run_cli("export", str(audio), "--format", "docx", "-o", str(tmp_path / "call.docx"), config=config)
    assert docx.returncode == 0, docx.stderr
    assert (tmp_path / "call.docx").read_bytes()[:2] == b"PK"  # a zip: python-docx reads it in tests/unit
    held = InstanceLock(tmp_path / "shared" / ".transcriber.lock")  # a daemon serving the folder
    held.acquire()
    try:
        refused = run_cli("edits", str(audio), "--put", str(tmp_path / "doc.json"), config=config)
    finally:
        held.release()
    assert refused.returncode == 1 and "PUT /edits" in refused.stderr
    missing = run_cli("export", str(tmp_path / "shared" / "none.wav"), config=config)
    assert missing.returncode == 1 and "none.wav.result" in missing.stderr


def test_export_and_edits_refuse_what_they_cannot_read(tmp_path: Path) -> None:
    audio = _transcribed(tmp_path / "shared")
    config = write_config(tmp_path)
    (audio.parent / f"{audio.name}.edits").mkdir()  # there, but not a file to read
    for command in (("edits", str(audio)), ("export", str(audio), "--format", "txt")):
        refused = run_cli(*command, config=config)
        assert refused.returncode == 1 and f"{audio.name}.edits cannot be read" in refused.stderr, refused.stderr
    (audio.parent / f"{audio.name}.edits").rmdir()
    result = audio.parent / f"{audio.name}.result"
    document = json.loads(result.read_text(encoding="utf-8"))
    document["transcription"]["segments"][0]["end"] = None
    result.write_text(json.dumps(document), encoding="utf-8")
    broken = run_cli("export", str(audio), "--format", "srt", config=config)
    assert broken.returncode == 1 and not broken.stdout
    assert "transcription.segments[0] has no start or end time" in broken.stderr
