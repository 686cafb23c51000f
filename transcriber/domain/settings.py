"""The transcription settings: one definition, read by the config, the API and the CLI.

A job's settings are the daemon's defaults (``whisperx:`` in the config) with
whatever a request or the command line overrides (``apply_overrides``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from transcriber.errors import InvalidSettingsError

COMPUTE_TYPES = ("int8", "int8_float32", "int8_float16", "int16", "float16", "bfloat16", "float32", "default")
DEVICES = ("cpu", "cuda")
AUTO_LANGUAGE = "auto"  # the spelling of "detect the language" in the config, requests and the CLI
SPEAKER_HINTS = (1, 20)  # the range of min_speakers / max_speakers
# The settings a request or the command line may override, in the order they are documented.
OVERRIDABLE = ("model_size", "language", "temperature", "compute_type", "device", "word_timestamps", "diarize",
               "min_speakers", "max_speakers")


def language_of(value: Any) -> Any:
    """None (detect) for "auto", "" or None; any other value unchanged."""
    return None if value in ("", AUTO_LANGUAGE, None) else value


def speaker_hints_error(min_speakers: int | None, max_speakers: int | None) -> tuple[str, str] | None:
    """(field, message) when the speaker-count hints are out of range or contradict each other."""
    low, high = SPEAKER_HINTS
    for name, value in (("min_speakers", min_speakers), ("max_speakers", max_speakers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            return name, f"{name}: a whole number from {low} to {high}"
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        return "max_speakers", f"max_speakers: {max_speakers} is fewer than min_speakers ({min_speakers})"
    return None


@dataclass(frozen=True)
class TranscriptionSettings:
    """What a job asks of the engine; part of the sidecar and the result."""

    model_size: str
    language: str | None
    temperature: float
    compute_type: str
    device: str
    word_timestamps: bool = False  # every word's start, end and probability; on whenever ``diarize`` is
    diarize: bool = False  # who speaks when: ``speaker`` on segments and words
    min_speakers: int | None = None  # hints for diarization (``SPEAKER_HINTS``)
    max_speakers: int | None = None

    def __post_init__(self) -> None:
        error = speaker_hints_error(self.min_speakers, self.max_speakers)
        if error is not None:
            raise InvalidSettingsError(*error)
        if self.diarize and not self.word_timestamps:  # speakers are given word by word
            object.__setattr__(self, "word_timestamps", True)

    def engine_key(self) -> tuple[str, str, str]:
        """Loaded models are shared between jobs with the same key."""
        return (self.model_size, self.device, self.compute_type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_size": self.model_size, "language": self.language, "temperature": self.temperature,
            "compute_type": self.compute_type, "device": self.device, "word_timestamps": self.word_timestamps,
            "diarize": self.diarize, "min_speakers": self.min_speakers, "max_speakers": self.max_speakers,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscriptionSettings:
        return cls(
            model_size=str(data["model_size"]), language=data.get("language"),
            temperature=float(data["temperature"]), compute_type=str(data["compute_type"]),
            device=str(data["device"]), word_timestamps=bool(data.get("word_timestamps", False)),
            diarize=bool(data.get("diarize", False)), min_speakers=data.get("min_speakers"),
            max_speakers=data.get("max_speakers"),
        )  # sidecars from before word timing and speakers have none of the last four


def apply_overrides(defaults: TranscriptionSettings, overrides: Mapping[str, Any]) -> TranscriptionSettings:
    """``defaults`` with the ``OVERRIDABLE`` values of ``overrides`` that are given.

    None means "not given" (the default stays); a language of "auto" means
    detect.  Keys outside ``OVERRIDABLE`` are ignored (``debug`` is what a
    request asks to be told, not how to transcribe: ``Job.debug``).
    """
    changes = {key: overrides[key] for key in OVERRIDABLE if overrides.get(key) is not None}
    if "language" in changes:
        changes["language"] = language_of(changes["language"])
    return replace(defaults, **changes)
