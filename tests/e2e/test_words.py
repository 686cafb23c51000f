"""Word timing from Whisper's cross-attention, on the real model (engine/words.py)."""

from __future__ import annotations

import itertools
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from tests.e2e.conftest import Speech
from tests.helpers import REPO, word_error_rate
from transcriber.domain.settings import TranscriptionSettings
from transcriber.engine import asr as asr_module
from transcriber.engine.asr import WhisperXEngine
from transcriber.engine.audio import load as load_audio
from transcriber.engine.base import EngineOptions

pytestmark = pytest.mark.e2e


def engine(tmp_path: Path) -> WhisperXEngine:
    return WhisperXEngine(EngineOptions(models_dir=str(REPO / "models"), cache_dir=str(tmp_path)))


def check_words(segments: list[dict], seconds: float) -> list[dict]:
    words = [word for segment in segments for word in segment["words"]]
    for segment in segments:
        assert segment["words"], segment
        assert segment["start"] == segment["words"][0]["start"]
        assert all(segment["start"] <= w["start"] <= w["end"] <= segment["end"] for w in segment["words"])
    assert all(0 <= w["start"] <= w["end"] <= seconds + 0.05 for w in words)
    assert all(earlier["start"] <= later["start"] for earlier, later in itertools.pairwise(words))
    assert all(0 <= w["probability"] <= 1 and w["word"] == w["word"].strip() and w["word"] for w in words)
    return words


def test_words_are_timed_without_changing_what_was_recognised(tmp_path: Path, english: Speech) -> None:
    asr = engine(tmp_path)
    plain = TranscriptionSettings("base", "en", 0.0, "int8", "cpu")
    timed = replace(plain, word_timestamps=True)
    without = asr.transcribe(load_audio(english.path), plain, lambda *_: None)
    clip = load_audio(english.path)
    transcript = asr.transcribe(clip, timed, lambda *_: None)
    assert abs(word_error_rate(english.text, transcript.text) - word_error_rate(english.text, without.text)) <= 0.01
    assert transcript.stages == {"word_timing": {"method": "cross_attention"}}
    words = check_words(transcript.segments, clip.seconds)
    assert len(words) == len(transcript.text.split())
    # espeak speaks evenly: the words spread over the clip, not bunched at a chunk's start
    assert words[-1]["start"] > 0.6 * clip.seconds, words[-3:]
    assert "words" not in without.segments[0]


def test_a_long_file_read_a_window_at_a_time_gets_the_whole_files_words(
    tmp_path: Path, long_russian: Speech, monkeypatch: pytest.MonkeyPatch,
) -> None:
    padded, recording = tmp_path / "padded.wav", tmp_path / "call.wav"  # as in test_windows.py
    subprocess.run(["sox", "-V1", str(long_russian.path), str(padded), "pad", "0", "75"], check=True)
    subprocess.run(["sox", "-V1", str(padded), str(long_russian.path), str(recording)], check=True)
    asr = engine(tmp_path)
    settings = TranscriptionSettings("base", "ru", 0.0, "int8", "cpu", word_timestamps=True)
    whole = asr.transcribe(load_audio(recording), settings, lambda *_: None)
    monkeypatch.setattr(asr_module, "WINDOW_SECONDS", 60.0)  # the least a window can be: ~130 s
    window = asr.window_for(settings)
    assert window is not None  # the cross-attention does not need the whole recording
    assert asr.window_for(replace(settings, diarize=True)) == window  # nor does diarization (it decodes again)
    (tmp_path / "aligned" / "alignment" / "ru").mkdir(parents=True)
    aligned = WhisperXEngine(EngineOptions(models_dir=str(tmp_path / "aligned"), cache_dir=str(tmp_path)))
    assert aligned.window_for(settings) is None  # a wav2vec2 aligner does
    clip = load_audio(recording, window)
    assert clip.rest is not None
    windowed = asr.transcribe(clip, settings, lambda *_: None)
    words = check_words(windowed.segments, clip.seconds)
    assert words[-1]["end"] > 150  # in the file's seconds, past the pause
    assert windowed.segments == whole.segments
