"""End to end: the real WhisperX, the real ``base`` model, real synthesised speech."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Speech
from tests.helpers import REPO, in_progress_of, result_of, wait_for, word_error_rate, write_config, write_tone
from transcriber.domain.job import Stage
from transcriber.domain.settings import TranscriptionSettings
from transcriber.engine.asr import WhisperXEngine
from transcriber.engine.audio import load as load_audio
from transcriber.engine.base import EngineOptions

pytestmark = pytest.mark.e2e

# espeak-ng is a robotic voice; these bounds hold for `base` with margin.
MAX_WER = 0.25


def test_daemon_transcribes_russian_speech(start_daemon, shared: Path, russian: Speech) -> None:
    start_daemon(engine=WhisperXEngine)
    shutil.copy(russian.path, shared / "звонок клиента.ogg")
    result = wait_for(lambda: result_of(shared, "звонок клиента.ogg"), timeout=180, what="the Russian result")
    text = result["transcription"]["text"]
    assert word_error_rate(russian.text, text) <= MAX_WER, text
    assert result["transcription"]["language"] == "ru"
    assert result["metadata"]["engine"] == {"whisperx": "3.8.6", "model": "base"}
    assert 0 < result["metadata"]["confidence"] <= 1
    assert 5 < result["duration_seconds"] < 12
    assert result["transcription"]["segments"][0]["end"] > result["transcription"]["segments"][0]["start"]


def test_one_shot_cli_transcribes_english_speech(tmp_path: Path, english: Speech) -> None:
    config = write_config(tmp_path)
    completed = subprocess.run(
        [sys.executable, "-m", "transcriber", "--config", str(config), "transcribe", str(english.path),
         "--language", "en"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)  # stdout is the JSON alone; logs go to stderr
    assert word_error_rate(english.text, result["transcription"]["text"]) <= MAX_WER, result["transcription"]
    assert result["settings"]["language"] == "en"


def test_the_vad_reports_progress_batch_by_batch_and_leaves_no_hook_behind(
    tmp_path: Path, long_russian: Speech,
) -> None:
    """The VAD's reports keep a long file visibly alive and are when the worker trims its heap."""
    engine = WhisperXEngine(EngineOptions(models_dir=str(REPO / "models"), cache_dir=str(tmp_path)))
    settings = TranscriptionSettings("base", "ru", 0.0, "int8", "cpu")
    reports: list[tuple[Stage, float]] = []
    transcript = engine.transcribe(load_audio(long_russian.path), settings,
                                   lambda stage, percentage: reports.append((stage, percentage)))
    assert transcript.text.count("погода") >= 5, transcript.text  # said 14 times; base skips some
    before_recognition = reports[:next(n for n, (_, percentage) in enumerate(reports) if percentage > 0)]
    vad_batches = sum(1 for stage, _ in before_recognition if stage is Stage.TRANSCRIBING) - 1  # less the first
    assert vad_batches >= 8, reports  # ~90 s in 10 s windows a second apart, 8 windows a batch
    inference = engine._pipelines[settings.engine_key()].vad_model.vad_pipeline._segmentation
    assert "infer" not in vars(inference)  # pyannote's own method again


def test_silence_is_a_success_with_empty_text(start_daemon, shared: Path, tmp_path: Path) -> None:
    start_daemon(engine=WhisperXEngine)
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(tmp_path / "quiet.wav"), "trim", "0", "20"],
                   check=True)
    shutil.move(tmp_path / "quiet.wav", shared / "quiet.wav")
    result = wait_for(lambda: result_of(shared, "quiet.wav"), timeout=180, what="the silent result")
    assert result["transcription"]["text"] == ""
    assert result["transcription"]["segments"] == []
    assert result["metadata"]["word_count"] == 0


def test_sigkill_mid_transcription_then_restart_completes_on_attempt_two(
    tmp_path: Path, long_russian: Speech, russian: Speech,
) -> None:
    config = write_config(tmp_path, {"processing": {"retry_backoff_seconds": 0.5}, "logging": {"level": "INFO"}})
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copy(long_russian.path, shared / "long.wav")
    shutil.copy(russian.path, shared / "queued-behind.ogg")
    os.utime(shared / "long.wav", (time.time() - 10, time.time() - 10))  # arrived first
    log_path = tmp_path / "daemon.log"
    first = _spawn(config, log_path)
    try:
        wait_for(lambda: (s := in_progress_of(shared, "long.wav")) and s["progress_info"]["stage"] == "transcribing",
                 timeout=180, what="long.wav to be transcribing")
        assert wait_for(lambda: in_progress_of(shared, "queued-behind.ogg"))["status"] == "queued"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    assert in_progress_of(shared, "long.wav")["status"] == "processing"
    assert result_of(shared, "long.wav") is None
    second = _spawn(config, log_path)
    try:
        result = wait_for(lambda: result_of(shared, "long.wav"), timeout=300, what="long.wav after the restart")
        behind = wait_for(lambda: result_of(shared, "queued-behind.ogg"), timeout=120, what="the queued file")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    assert result["metadata"]["attempts"] == 2
    # The long clip is cut at VAD chunk borders mid-word, which costs accuracy;
    # the point here is that the restarted run produced the whole transcript.
    assert word_error_rate(long_russian.text, result["transcription"]["text"]) <= 0.6
    assert behind["metadata"]["attempts"] == 1
    assert list(shared.glob("*.in_progress")) == []
    assert list((shared / "manual_review").iterdir()) == []


def test_timeout_kills_and_respawns_the_real_worker(start_daemon, shared: Path, very_long_russian: Speech) -> None:
    # 12 s: below the ~20 s the 3-minute file needs, far above the 1 s tone even
    # on a busy machine (model loading does not count; a fresh worker's first
    # inference does: 8 s once timed the tone out too, on a loaded CI machine).
    daemon = start_daemon(
        {"processing": {"timeout_seconds": 12, "max_retry_attempts": 1}}, engine=WhisperXEngine,
    )
    first_pid = wait_for(lambda: daemon.workers()[0].pid, what="the worker")
    shutil.copy(very_long_russian.path, shared / "too-long.wav")
    sidecar = wait_for(lambda: in_progress_of(shared / "manual_review", "too-long.wav"), timeout=120,
                       what="the timed-out file in review")
    assert sidecar["attempts"][0]["error"]["code"] == "timeout"
    write_tone(shared / "tone-after-timeout.wav", seconds=1.0)
    wait_for(lambda: result_of(shared, "tone-after-timeout.wav")
             or in_progress_of(shared / "manual_review", "tone-after-timeout.wav"), timeout=180,
             what="a file on the new worker")
    assert result_of(shared, "tone-after-timeout.wav"), in_progress_of(shared / "manual_review",
                                                                       "tone-after-timeout.wav")
    assert daemon.workers()[0].pid not in (None, first_pid)
    assert daemon.workers()[0].restarts >= 1


def _spawn(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:  # the daemon has its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "transcriber", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
            cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def test_api_request_with_wait_returns_the_real_transcript(start_api, russian: Speech) -> None:
    api = start_api(engine=WhisperXEngine)
    shutil.copy(russian.path, api.shared / "клиент.ogg")
    (api.shared / ".pause").touch()  # so the scan does not take it before the request
    response = api.client.post("/transcribe", json={"filename": "клиент.ogg"})
    assert response.status_code == 202 and response.json()["priority"] == "high"
    (api.shared / ".pause").unlink()
    response = api.client.post("/transcribe", json={"filename": "клиент.ogg", "wait": 120}, timeout=150)
    assert response.status_code == 200, response.text
    text = response.json()["result"]["transcription"]["text"]
    assert word_error_rate(russian.text, text) <= MAX_WER, text
    srt = api.client.get("/result/клиент.ogg", params={"format": "srt"}).text
    assert srt.startswith("1\n00:00:00,") and "погода" in srt


def test_alignment_and_diarization_without_their_models_degrade_and_keep_the_transcript(
    tmp_path: Path, english: Speech, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Offline, a broken wav2vec2 folder cannot be loaded and pyannote's pipeline cannot be
    fetched: the transcript comes back with a warning for each (words timed from the
    cross-attention instead), and a second file does not retry the recognition model's
    load (the stages keep nothing half-loaded)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models = tmp_path / "models"
    (models / "alignment" / "en").mkdir(parents=True)  # a wav2vec2 folder with nothing in it
    (models / "base").symlink_to(REPO / "models" / "base")
    engine = WhisperXEngine(EngineOptions(models_dir=str(models), cache_dir=str(tmp_path)))
    settings = TranscriptionSettings("base", "en", 0.0, "int8", "cpu", diarize=True)
    stages: list[Stage] = []
    for _ in range(2):
        transcript = engine.transcribe(load_audio(english.path), settings, lambda stage, _: stages.append(stage))
        assert word_error_rate(english.text, transcript.text) <= MAX_WER, transcript.text
        assert [w.split(":")[0] for w in transcript.warnings] == ["alignment skipped", "diarization skipped"], (
            transcript.warnings)
        assert transcript.stages == {"word_timing": {"method": "cross_attention"}}
        assert all(segment["words"] for segment in transcript.segments)
    assert Stage.ALIGNING in stages and Stage.DIARIZING in stages
    assert engine.loaded_models() == ["base/cpu/int8"]
