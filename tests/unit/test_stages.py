"""The stages after recognition (engine/stages.py): loaded once, freed with the engine,
skipped only when their model is unavailable."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pytest

from transcriber.domain.job import Stage
from transcriber.engine.stages import PostStage, Segments
from transcriber.errors import ModelError

SEGMENTS: Segments = [{"start": 0.0, "end": 1.0, "text": "hello"}]
SAMPLES = np.zeros(16_000, np.float32)


class Recorder:
    def __init__(self, fail_load: BaseException | None = None, fail_run: BaseException | None = None) -> None:
        self.loads: list[Hashable] = []
        self.fail_load, self.fail_run = fail_load, fail_run

    def load(self, key: Hashable) -> Any:
        self.loads.append(key)
        if self.fail_load is not None:
            raise self.fail_load
        return f"model for {key}"

    def run(self, model: Any, segments: Segments, samples: np.ndarray, language: str) -> Segments:
        if self.fail_run is not None:
            raise self.fail_run
        return [{**segment, "speaker": f"{model}/{language}"} for segment in segments]


def stage(recorder: Recorder) -> PostStage:
    return PostStage("diarization", Stage.DIARIZING, recorder.load, recorder.run)


def test_a_model_is_loaded_once_per_key_and_kept_until_unloaded() -> None:
    recorder = Recorder()
    diarization = stage(recorder)
    warnings: list[str] = []
    for _ in range(3):
        out = diarization.apply("cpu", SEGMENTS, SAMPLES, "en", warnings)
    assert out[0]["speaker"] == "model for cpu/en" and warnings == []
    diarization.apply("cuda", SEGMENTS, SAMPLES, "en", warnings)
    assert recorder.loads == ["cpu", "cuda"] and diarization.loaded() == ["cpu", "cuda"]
    diarization.unload()
    assert diarization.loaded() == []
    diarization.apply("cpu", SEGMENTS, SAMPLES, "en", warnings)
    assert recorder.loads == ["cpu", "cuda", "cpu"]


@pytest.mark.parametrize("unavailable", [FileNotFoundError("no pyannote model in models/"),
                                         ValueError("no default align-model for language: xx"),
                                         ImportError("No module named 'pyannote'"),
                                         ModelError("the speaker model is not installed")])
def test_an_unavailable_model_skips_the_stage_with_a_warning(unavailable: Exception) -> None:
    warnings: list[str] = []
    out = stage(Recorder(fail_load=unavailable)).apply("cpu", SEGMENTS, SAMPLES, "en", warnings)
    assert out is None
    assert len(warnings) == 1 and warnings[0].startswith("diarization skipped: its model is not available")
    assert type(unavailable).__name__ in warnings[0]


@pytest.mark.parametrize("failure", [MemoryError(), RuntimeError("DefaultCPUAllocator: not enough memory")])
def test_a_failure_while_loading_or_running_is_the_jobs_not_a_warning(failure: Exception) -> None:
    warnings: list[str] = []
    with pytest.raises(type(failure)):
        stage(Recorder(fail_load=failure)).apply("cpu", SEGMENTS, SAMPLES, "en", warnings)
    with pytest.raises(type(failure)):
        stage(Recorder(fail_run=failure)).apply("cpu", SEGMENTS, SAMPLES, "en", warnings)
    assert warnings == []
