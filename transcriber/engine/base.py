"""The engine's interface: what the worker needs of any speech engine.

Light on purpose: the daemon imports it to pass options and an engine class
to its workers, without numpy, WhisperX or torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from transcriber.domain.job import Stage
from transcriber.domain.settings import TranscriptionSettings
from transcriber.domain.transcript import Transcript

if TYPE_CHECKING:
    from transcriber.engine.audio import Clip

ProgressReporter = Callable[[Stage, float], None]


@dataclass(frozen=True)
class EngineOptions:
    """Engine-wide settings from the config; picklable for the worker process."""

    models_dir: str
    cache_dir: str
    allow_download: bool = False
    batch_size: int = 4
    beam_size: int = 5
    cpu_threads: int = 0
    hf_token: str = field(default="", repr=False)
    diarization_backend: str = "auto"  # auto | campplus | pyannote (config.py, DiarizationConfig)
    pyannote_pipeline: str = ""


class Engine(Protocol):
    def is_loaded(self, settings: TranscriptionSettings) -> bool: ...

    def load(self, settings: TranscriptionSettings) -> float:
        """Make the model for ``settings`` warm; return seconds spent loading (0 if warm)."""

    def transcribe(self, clip: Clip, settings: TranscriptionSettings, report: ProgressReporter) -> Transcript: ...

    def unload(self) -> None:
        """Free every loaded model (idle timeout)."""

    def loaded_models(self) -> list[str]: ...


class EngineFactory(Protocol):
    """An engine class: builds the engine in the worker, checks the model in the daemon."""

    def __call__(self, options: EngineOptions) -> Engine: ...

    @staticmethod
    def verify(settings: TranscriptionSettings, options: EngineOptions) -> None:
        """Raise ModelError at start when ``settings`` cannot be served (no heavy imports)."""
