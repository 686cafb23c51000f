"""The transcription settings: one definition, read by the config, the API and the CLI.

A job's settings are the daemon's defaults (``whisperx:`` in the config) with
whatever a request or the command line overrides (``apply_overrides``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

COMPUTE_TYPES = ("int8", "int8_float32", "int8_float16", "int16", "float16", "bfloat16", "float32", "default")
DEVICES = ("cpu", "cuda")
AUTO_LANGUAGE = "auto"  # the spelling of "detect the language" in the config, requests and the CLI
# The settings a request or the command line may override, in the order they are documented.
OVERRIDABLE = ("model_size", "language", "temperature", "compute_type", "device")


def language_of(value: Any) -> Any:
    """None (detect) for "auto", "" or None; any other value unchanged."""
    return None if value in ("", AUTO_LANGUAGE, None) else value


@dataclass(frozen=True)
class TranscriptionSettings:
    """What a job asks of the engine; part of the sidecar and the result."""

    model_size: str
    language: str | None
    temperature: float
    compute_type: str
    device: str

    def engine_key(self) -> tuple[str, str, str]:
        """Loaded models are shared between jobs with the same key."""
        return (self.model_size, self.device, self.compute_type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_size": self.model_size, "language": self.language, "temperature": self.temperature,
            "compute_type": self.compute_type, "device": self.device,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscriptionSettings:
        return cls(
            model_size=str(data["model_size"]), language=data.get("language"),
            temperature=float(data["temperature"]), compute_type=str(data["compute_type"]),
            device=str(data["device"]),
        )


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
