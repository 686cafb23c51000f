"""The transcript an engine returns: what a ``.result`` is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def segments_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The segments of a ``.result`` document (none when it has none)."""
    return list((result.get("transcription") or {}).get("segments") or [])


def plain_text(segment: dict[str, Any]) -> str:
    """A segment's text on one line, its whitespace collapsed."""
    return " ".join(str(segment.get("text") or "").split())


def is_timed(word: dict[str, Any]) -> bool:
    """A word with both times as numbers (an aligner can leave a number or a symbol untimed)."""
    return all(isinstance(word.get(key), int | float) and not isinstance(word.get(key), bool)
               for key in ("start", "end"))


def speaker_summary(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``transcription.speakers``: each speaker's talk time, words and segments, in order of first appearance."""
    summary: dict[str, dict[str, Any]] = {}
    for segment in segments:
        speaker = segment.get("speaker")
        if speaker is None:
            continue
        entry = summary.setdefault(speaker, {"id": speaker, "talk_seconds": 0.0, "words": 0, "segments": 0})
        entry["talk_seconds"] += max(float(segment["end"]) - float(segment["start"]), 0.0)
        entry["words"] += len(segment.get("words") or [])
        entry["segments"] += 1
    return [{**entry, "talk_seconds": round(entry["talk_seconds"], 3)} for entry in summary.values()]


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
    # Diarized: who spoke when, [{"start", "end", "speaker"}], by the speech detector's speech.
    turns: list[dict[str, Any]] = field(default_factory=list)
    # The speech detector's speech, [(start, end)] in seconds, for the result's analysis
    # (domain/analysis.py); empty when the engine does not know it (the words are used then).
    speech: list[tuple[float, float]] = field(default_factory=list)
