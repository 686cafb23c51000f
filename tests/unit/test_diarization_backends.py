"""Which diarization backend runs, and pyannote's pipeline behind the same result shape.

pyannote's pipeline needs a hub download or a local pipeline folder, neither of which
this machine has, so its output is faked at the engine boundary (a DataFrame of turns,
the shape WhisperX's ``DiarizationPipeline`` returns); what the engine makes of it is real.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transcriber.engine import asr
from transcriber.engine.base import EngineOptions
from transcriber.engine.model_files import SPEAKER_WEIGHTS
from transcriber.engine.speakers.diarizer import Hints
from transcriber.engine.speakers.embeddings import InMemory
from transcriber.errors import ModelError


def engine(tmp_path: Path, installed: bool, **options: object) -> asr.WhisperXEngine:
    if installed:
        weights = tmp_path / "models" / SPEAKER_WEIGHTS.name / SPEAKER_WEIGHTS.file
        weights.parent.mkdir(parents=True)
        weights.write_bytes(b"weights")
    return asr.WhisperXEngine(EngineOptions(models_dir=str(tmp_path / "models"), cache_dir=str(tmp_path),
                                            **options))  # type: ignore[arg-type]


@pytest.mark.parametrize(("installed", "options", "backend"), [
    (True, {}, "campplus"),
    (True, {"pyannote_pipeline": "/models/pyannote"}, "campplus"),  # the packaged one first
    (False, {"pyannote_pipeline": "/models/pyannote"}, "pyannote"),
    (False, {"allow_download": True, "hf_token": "hf_x"}, "pyannote"),
    (False, {"hf_token": "hf_x"}, "campplus"),  # a token without downloads allowed reaches nothing
    (False, {}, "campplus"),  # whose warning says how to install it
    (True, {"diarization_backend": "pyannote"}, "pyannote"),
])
def test_auto_picks_the_best_available_backend(tmp_path: Path, installed: bool, options: dict[str, object],
                                               backend: str) -> None:
    assert engine(tmp_path, installed, **options)._diarization_backend() == backend


def test_pyannote_without_a_pipeline_is_an_unavailable_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"diarization\.pyannote_pipeline"):
        engine(tmp_path, False, diarization_backend="pyannote")._load_diarizer(("pyannote", "cpu"))


def test_pyannotes_turns_give_the_same_result_shape() -> None:
    asked = {}

    def pipeline(samples: np.ndarray, min_speakers: int | None, max_speakers: int | None) -> pd.DataFrame:
        asked.update(seconds=samples.size / 16000, min_speakers=min_speakers, max_speakers=max_speakers)
        return pd.DataFrame({"start": [3.0, 0.0], "end": [4.0, 2.0], "speaker": ["SPEAKER_00", "SPEAKER_01"]})

    word = lambda text, start, end: {"word": text, "start": start, "end": end, "probability": 0.9}  # noqa: E731
    segments = [{"start": 0.0, "end": 4.0, "text": "Hello there. Yes.",
                 "words": [word("Hello", 0.0, 0.5), word("there.", 0.6, 1.2), word("Yes.", 3.1, 3.5)]}]
    diarized = asr._diarize(pipeline, segments, InMemory(np.zeros(64000, np.float32)), "en", Hints(2, 3),
                            lambda _: None, None)
    assert asked == {"seconds": 4.0, "min_speakers": 2, "max_speakers": 3}
    # Named in order of first appearance, and the segment is cut where the speaker changes.
    assert [(s["speaker"], s["text"]) for s in diarized.segments] == [("SPEAKER_00", "Hello there."),
                                                                       ("SPEAKER_01", "Yes.")]
    assert [w["speaker"] for s in diarized.segments for w in s["words"]] == ["SPEAKER_00", "SPEAKER_00",
                                                                             "SPEAKER_01"]
    assert diarized.turns == [{"start": 0.0, "end": 2.0, "speaker": "SPEAKER_00"},
                              {"start": 3.0, "end": 4.0, "speaker": "SPEAKER_01"}]
