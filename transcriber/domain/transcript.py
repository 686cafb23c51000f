"""The transcript an engine returns: what a ``.result`` is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Transcript:
    """Text, language and segments (``start``, ``end``, ``text``) of one file."""

    text: str
    language: str | None
    segments: list[dict[str, Any]]
    model: str
    language_probability: float | None = None
    confidence: float | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    # How the stages after recognition ran, recorded in the result's metadata under
    # their names: {"word_timing": {"method": "cross_attention"}}.
    stages: dict[str, Any] = field(default_factory=dict)
