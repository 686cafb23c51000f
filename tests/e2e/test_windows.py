"""A long file transcribed a window at a time gets the whole file's segments (engine._Windows)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Speech
from tests.helpers import REPO
from transcriber.domain.settings import TranscriptionSettings
from transcriber.engine import asr as engine_module
from transcriber.engine.asr import WhisperXEngine, _Windows
from transcriber.engine.audio import load as load_audio
from transcriber.engine.base import EngineOptions

pytestmark = pytest.mark.e2e


def test_windows_give_the_whole_files_segments(
    tmp_path: Path, long_russian: Speech, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Speech, a long pause, speech: windows cut in speech and in silence.  The shortest
    # windows (an hour's are ten minutes) make several of them.
    padded, recording = tmp_path / "padded.wav", tmp_path / "call.wav"
    subprocess.run(["sox", "-V1", str(long_russian.path), str(padded), "pad", "0", "75"], check=True)
    subprocess.run(["sox", "-V1", str(padded), str(long_russian.path), str(recording)], check=True)
    engine = WhisperXEngine(EngineOptions(models_dir=str(REPO / "models"), cache_dir=str(tmp_path)))
    settings = TranscriptionSettings("base", "ru", 0.0, "int8", "cpu")
    whole = engine.transcribe(load_audio(recording), settings, lambda *_: None)

    monkeypatch.setattr(engine_module, "WINDOW_SECONDS", 60.0)  # the least a window can be: ~130 s
    passes: list[int] = []
    score = _Windows._score
    monkeypatch.setattr(_Windows, "_score", lambda self, samples, *args: (
        passes.append(samples.size), score(self, samples, *args))[1])
    clip = load_audio(recording, window_seconds=engine.window_for(settings))
    assert clip.rest is not None
    progress: list[float] = []
    windowed = engine.transcribe(clip, settings, lambda _, percentage: progress.append(percentage))

    assert len(passes) >= 3, passes
    assert clip.seconds == load_audio(recording).seconds
    assert whole.text.count("погода") >= 10 and len(whole.segments) >= 5
    assert windowed.segments == whole.segments  # times to the millisecond, and the text
    assert windowed.confidence == whole.confidence
    assert max(progress) > 50 and progress == sorted(progress)  # the file's progress, never back to 0
