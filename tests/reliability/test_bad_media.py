"""Scenario 8: broken, empty, odd and extreme media.

The promises (docs/RELIABILITY.md): "a broken audio file ends in manual_review/
with its error history, never deleted"; "permanent errors (not decodable, no
audio stream, zero length) go straight to manual_review/ without retries";
"silence is a success with an empty text".  These tests prove that

- a zero-length file, text renamed ``.mp3``, random bytes named ``.wav`` and a
  video without an audio track each end in ``manual_review/`` after exactly
  one attempt, with the stable code ``empty_file``, ``audio_decode_failed`` or
  ``no_audio_stream`` in the sidecar and in ``GET /status``; the audio is
  moved, not deleted; the worker never dies of them, and a good file dropped
  afterwards is transcribed;
- with the real WhisperX: a 0.1 s clip is transcribed without trouble (0.1 s
  of silence gives text ``""``; a 0.1 s tone gives at most a filler word:
  Whisper says "Thank you." to a beep, a known hallucination of the model on
  non-speech that this test does not pin); an hour of digital silence is a
  success with text ``""``; a truncated MP3 (the byte stream cut in half,
  as a copy that died midway leaves it) is transcribed as far as it goes.
  ffmpeg decodes every whole frame before the cut and exits 0, so the daemon
  treats it as the shorter recording it now is: refusing it would throw away
  audio a person can still use, and the result's ``duration_seconds`` shows
  what was there.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import synthesise
from tests.helpers import in_progress_of, result_of, wait_for, write_tone
from transcriber.engine.asr import WhisperXEngine

SPEECH = "The quick brown fox jumps over the lazy dog. Please send the report by Friday morning."
REAL_ENGINE = {"whisperx": {"model_size": "tiny.en", "language": "en"}}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    (folder / "empty.mp3").touch()
    (folder / "notes.mp3").write_text("Meeting notes, not audio at all.\n", encoding="utf-8")
    (folder / "noise.wav").write_bytes(random.Random(8).randbytes(64_000))
    _ffmpeg("-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5", "-an", folder / "silent-film.mp4")
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.1", "-ar", "16000", folder / "blip.wav")
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0.1", folder / "hush.wav")
    speech = synthesise(folder / "speech.mp3", SPEECH, "en")
    data = speech.read_bytes()
    (folder / "truncated.mp3").write_bytes(data[: len(data) // 2])
    return folder


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


@pytest.mark.parametrize(("name", "code"), [
    ("empty.mp3", "empty_file"),
    ("notes.mp3", "audio_decode_failed"),
    ("noise.wav", "audio_decode_failed"),
    ("silent-film.mp4", "no_audio_stream"),
])
def test_unreadable_media_goes_to_review_after_one_attempt(start_api, media: Path, name: str, code: str) -> None:
    # Generous retries and no back-off: a retried permanent error would show as a second attempt.
    api = start_api({"processing": {"max_retry_attempts": 5, "retry_backoff_seconds": 0}})
    shared = api.shared
    shutil.copy(media / name, shared / name)
    sidecar = wait_for(lambda: in_progress_of(shared / "manual_review", name), timeout=120,
                       what=f"{name} in manual_review/")
    assert sidecar["status"] == "error" and sidecar["current_attempt"] == 1
    assert [(a["attempt_number"], a["status"], a["error"]["code"]) for a in sidecar["attempts"]] == [
        (1, "failed", code)]
    assert str(shared) not in sidecar["attempts"][0]["error"]["message"]  # no server paths reach clients
    assert (shared / "manual_review" / name).read_bytes() == (media / name).read_bytes()  # moved, intact
    assert not (shared / name).exists() and result_of(shared, name) is None
    status = api.client.get(f"/status/{name}").json()
    assert status["status"] == "error" and status["last_error"]["code"] == code

    write_tone(shared / "after.wav", seconds=1.0)
    assert wait_for(lambda: result_of(shared, "after.wav"), timeout=120, what="a good file afterwards")
    assert api.daemon.workers()[0].restarts == 0  # a bad file fails the job, never the worker
    assert api.client.get("/health").status_code == 200


@pytest.mark.e2e
def test_a_tenth_of_a_second_and_a_truncated_mp3_with_whisperx(start_daemon, media: Path) -> None:
    daemon = start_daemon(REAL_ENGINE, engine=WhisperXEngine)
    shared = daemon.config.shared_directory
    for name in ("hush.wav", "blip.wav", "truncated.mp3"):
        shutil.copy(media / name, shared / name)
    hush = wait_for(lambda: result_of(shared, "hush.wav"), timeout=300, what="0.1 s of silence")
    assert hush["duration_seconds"] == 0.1 and hush["metadata"]["attempts"] == 1
    assert hush["transcription"]["text"] == "" and hush["transcription"]["segments"] == []
    blip = wait_for(lambda: result_of(shared, "blip.wav"), timeout=300, what="a 0.1 s tone")
    assert blip["duration_seconds"] == 0.1 and blip["metadata"]["attempts"] == 1
    assert len(blip["transcription"]["text"].split()) <= 3, blip["transcription"]

    truncated = wait_for(lambda: result_of(shared, "truncated.mp3"), timeout=300, what="the truncated MP3")
    whole = _seconds(media / "speech.mp3")
    assert 0.35 * whole < truncated["duration_seconds"] < 0.65 * whole
    words = truncated["transcription"]["text"].lower()
    assert "fox" in words and "friday" not in words, words
    assert truncated["metadata"]["attempts"] == 1
    assert list((shared / "manual_review").iterdir()) == []


@pytest.mark.e2e
@pytest.mark.slow
# pyannote's VAD reads the hour in 10 s windows, one a second: 132 s on two quiet cores,
# many times that on busy ones.  The daemon's default timeout_seconds (an hour) must do.
@pytest.mark.timeout(1800)
def test_an_hour_of_silence_is_an_empty_success_with_whisperx(start_daemon, tmp_path: Path) -> None:
    daemon = start_daemon({**REAL_ENGINE, "processing": {"timeout_seconds": 3600}}, engine=WhisperXEngine)
    shared = daemon.config.shared_directory
    # Digital silence compresses to almost nothing: an hour of it is ~200 KB of FLAC.
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(tmp_path / "hour.flac"), "trim", "0", "3600"],
                   check=True)
    shutil.move(tmp_path / "hour.flac", shared / "hour-of-silence.flac")
    result = wait_for(lambda: result_of(shared, "hour-of-silence.flac"), timeout=1700, interval=1.0,
                      what="the hour of silence")
    assert result["duration_seconds"] == 3600.0
    assert result["transcription"]["text"] == "" and result["transcription"]["segments"] == []
    assert result["metadata"]["word_count"] == 0 and result["metadata"]["attempts"] == 1


def _seconds(path: Path) -> float:
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                            str(path)], capture_output=True, text=True, check=True)
    return float(probe.stdout)
