"""The engine boundary: the only module that imports WhisperX.

WhisperX (and torch with it) is imported lazily, inside the worker process,
so the daemon and its API stay light.  Loaded pipelines are kept warm keyed
by (model, device, compute type); language and temperature are per call.
Exceptions from WhisperX are classified here into the job error hierarchy.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from transcriber.audio import Clip
from transcriber.errors import EngineError, JobError, ModelError, ModelUnavailableError, OutOfMemoryError
from transcriber.jobs import Stage, TranscriptionSettings
from transcriber.logs import quiet_libraries
from transcriber.models import resolve_model

log = logging.getLogger("Engine")

ProgressReporter = Callable[[Stage, float], None]
VAD_BATCH_SIZE = 8


@dataclass(frozen=True)
class EngineOptions:
    """Engine-wide settings from the config; picklable for the worker process."""

    models_dir: str
    cache_dir: str
    allow_download: bool = False
    batch_size: int = 4
    beam_size: int = 5
    cpu_threads: int = 0
    align: bool = False
    diarize: bool = False
    hf_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None
    segments: list[dict[str, Any]]
    model: str
    language_probability: float | None = None
    confidence: float | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


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


class WhisperXEngine:
    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self._pipelines: dict[tuple[str, str, str], Any] = {}
        if not options.allow_download:
            # Fail fast instead of waiting on network timeouts in a sealed network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    @staticmethod
    def verify(settings: TranscriptionSettings, options: EngineOptions) -> None:
        resolve_model(settings.model_size, Path(options.models_dir), options.allow_download)

    def is_loaded(self, settings: TranscriptionSettings) -> bool:
        return settings.engine_key() in self._pipelines

    def load(self, settings: TranscriptionSettings) -> float:
        key = settings.engine_key()
        if key in self._pipelines:
            return 0.0
        started = time.monotonic()
        self._pipelines[key] = self._load_pipeline(settings)
        seconds = time.monotonic() - started
        log.info("Loaded model %s on %s (%s) in %.1f s", *key, seconds)
        return seconds

    def loaded_models(self) -> list[str]:
        return [f"{model}/{device}/{compute}" for model, device, compute in self._pipelines]

    def unload(self) -> None:
        if not self._pipelines:
            return
        log.info("Unloading idle models: %s", ", ".join(self.loaded_models()))
        self._pipelines.clear()
        gc.collect()

    def transcribe(self, clip: Clip, settings: TranscriptionSettings, report: ProgressReporter) -> Transcript:
        try:
            return self._transcribe(clip.samples, settings, report)
        except JobError:
            raise
        except Exception as exc:  # the engine boundary: classify whatever WhisperX raised
            raise classify_engine_exception(exc) from exc

    def _transcribe(self, samples: np.ndarray, settings: TranscriptionSettings, report: ProgressReporter) -> Transcript:
        if settings.engine_key() not in self._pipelines:
            report(Stage.LOADING_MODEL, 0.0)
            self.load(settings)
        pipeline = self._pipelines[settings.engine_key()]
        pipeline.options = dataclasses.replace(pipeline.options, temperatures=[settings.temperature])
        language, probability = self._language(pipeline, samples, settings)
        report(Stage.TRANSCRIBING, 0.0)
        with _reporting_vad_batches(pipeline, report):
            output = pipeline.transcribe(
                samples, batch_size=self.options.batch_size, language=language,
                progress_callback=lambda percent: report(Stage.TRANSCRIBING, percent),
            )
        segments = [_clean_segment(s) for s in output["segments"]]
        warnings: list[str] = []
        if self.options.align and segments:
            report(Stage.ALIGNING, 0.0)
            segments = self._align(segments, samples, language or output["language"], settings, warnings)
        if self.options.diarize and segments:
            report(Stage.DIARIZING, 0.0)
            segments = self._diarize(segments, samples, settings, warnings)
        return Transcript(
            text=" ".join(s["text"] for s in segments if s["text"]).strip(),
            language=output["language"], segments=segments, model=settings.model_size,
            language_probability=probability, confidence=_confidence(output["segments"]),
            warnings=tuple(warnings),
        )

    def _load_pipeline(self, settings: TranscriptionSettings) -> Any:
        import whisperx  # heavy: torch, transformers, pyannote — worker process only
        import whisperx.asr

        whisperx.setup_logging(level="warning")  # its own handler and format otherwise
        quiet_libraries()

        try:
            model = resolve_model(settings.model_size, Path(self.options.models_dir), self.options.allow_download)
        except ModelError as exc:
            raise ModelUnavailableError(exc.message) from exc
        threads = self.options.cpu_threads or os.cpu_count() or 1
        try:
            import torch

            torch.set_num_threads(threads)
            pipeline = whisperx.load_model(
                model, settings.device, compute_type=settings.compute_type, language=None,
                asr_options={"beam_size": self.options.beam_size, "temperatures": [settings.temperature]},
                vad_method="pyannote", download_root=self.options.cache_dir,
                local_files_only=not self.options.allow_download, threads=threads,
            )
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"model {settings.model_size!r} could not be loaded: {exc}") from exc
        _limit_vad_batch(pipeline)
        return pipeline

    def _language(
        self, pipeline: Any, samples: np.ndarray, settings: TranscriptionSettings,
    ) -> tuple[str, float | None]:
        if not pipeline.model.model.is_multilingual:
            return "en", None
        if settings.language:
            return settings.language, None
        language, probability, _ = pipeline.model.detect_language(audio=samples)
        return language, round(float(probability), 4)

    def _align(
        self, segments: list[dict[str, Any]], samples: np.ndarray, language: str,
        settings: TranscriptionSettings, warnings: list[str],
    ) -> list[dict[str, Any]]:
        import whisperx

        try:
            model, metadata = whisperx.load_align_model(
                language_code=language, device=settings.device, model_dir=self.options.cache_dir,
            )
            aligned = whisperx.align(segments, model, metadata, samples, settings.device)
        except Exception as exc:  # noqa: BLE001 -- a missing alignment model degrades, it does not fail the job
            return _degrade(warnings, "alignment", exc, segments)
        return [_clean_segment(s) for s in aligned["segments"]]

    def _diarize(
        self, segments: list[dict[str, Any]], samples: np.ndarray,
        settings: TranscriptionSettings, warnings: list[str],
    ) -> list[dict[str, Any]]:
        try:
            import whisperx
            from whisperx.diarize import DiarizationPipeline

            pipeline = DiarizationPipeline(token=self.options.hf_token or None, device=settings.device)
            speakers = pipeline(samples)
            assigned = whisperx.assign_word_speakers(speakers, {"segments": segments})
        except Exception as exc:  # noqa: BLE001 -- a missing diarization model degrades, it does not fail the job
            return _degrade(warnings, "diarization", exc, segments)
        return [_clean_segment(s) for s in assigned["segments"]]


def _vad_inference(pipeline: Any) -> Any | None:
    """pyannote's sliding-window inference inside WhisperX's VAD, if it still has that shape."""
    inference = getattr(getattr(pipeline.vad_model, "vad_pipeline", None), "_segmentation", None)
    return inference if inference is not None and hasattr(inference, "batch_size") else None


def _limit_vad_batch(pipeline: Any) -> None:
    """Run pyannote's VAD over VAD_BATCH_SIZE windows at a time instead of its 32.

    Each 10-second window fans out to 80 SincNet channels; 32 at once held
    ~280 MB more at the peak of every file longer than half a minute
    (docs/PERFORMANCE.md, memory), for no measurable speed on a CPU.
    """
    inference = _vad_inference(pipeline)
    if inference is not None:
        inference.batch_size = VAD_BATCH_SIZE
    else:
        log.warning("WhisperX's VAD has changed shape; its batch size stays at the default")


@contextmanager
def _reporting_vad_batches(pipeline: Any, report: ProgressReporter) -> Iterator[None]:
    """Report (transcribing, 0 %) after each VAD batch.

    The VAD runs for a minute on an hour of audio before the first
    recognition progress; these reports keep the job visibly alive, and
    give the worker the moments it trims its heap in (heap.py: the VAD's
    freed buffers held 1.4 GB on an hour otherwise).
    """
    inference = _vad_inference(pipeline)
    if inference is None:
        yield
        return
    infer = inference.infer

    def infer_and_report(chunks: Any) -> Any:
        outputs = infer(chunks)
        report(Stage.TRANSCRIBING, 0.0)
        return outputs

    inference.infer = infer_and_report
    try:
        yield
    finally:
        del inference.infer  # the class's own method again


def classify_engine_exception(exc: BaseException) -> JobError:
    """Map what WhisperX / torch / CTranslate2 raised to a stable error code."""
    text = str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return OutOfMemoryError(f"ran out of memory: {text[:300]}")
    return EngineError(f"{type(exc).__name__}: {text[:500]}")


def _degrade(warnings: list[str], feature: str, exc: Exception, segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    message = f"{feature} skipped: its model is not available ({type(exc).__name__}: {str(exc)[:200]})"
    log.warning(message)
    warnings.append(message)
    return segments


def _clean_segment(segment: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {
        "start": round(float(segment["start"]), 3),
        "end": round(float(segment["end"]), 3),
        "text": str(segment["text"]).strip(),
    }
    if "speaker" in segment:
        cleaned["speaker"] = segment["speaker"]
    if "words" in segment:
        cleaned["words"] = [_clean_word(w) for w in segment["words"]]
    return cleaned


def _clean_word(word: dict[str, Any]) -> dict[str, Any]:
    return {key: (round(float(value), 3) if isinstance(value, float) else value) for key, value in word.items()
            if not (isinstance(value, float) and math.isnan(value))}


def _confidence(segments: list[dict[str, Any]]) -> float | None:
    """Duration-weighted mean token probability, from the segments' avg_logprob."""
    weighted = [
        (math.exp(s["avg_logprob"]), max(s["end"] - s["start"], 0.01))
        for s in segments if s.get("avg_logprob") is not None
    ]
    if not weighted:
        return None
    total = sum(weight for _, weight in weighted)
    return round(sum(p * w for p, w in weighted) / total, 4)
