"""The transcript an engine returns: what a ``.result`` is built from."""

from __future__ import annotations

import math
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


def audio_of(result: dict[str, Any]) -> dict[str, int] | None:
    """The audio a ``.result`` was made from (``metadata.audio_file``: size and mtime), or
    None when it does not say (an older or hand-written result)."""
    metadata = result.get("metadata")
    audio = metadata.get("audio_file") if isinstance(metadata, dict) else None
    if not isinstance(audio, dict):
        return None
    try:
        return {"size_bytes": int(audio["size_bytes"]), "mtime_ns": int(audio["mtime_ns"])}
    except (TypeError, KeyError, ValueError):
        return None


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


class MalformedResult(ValueError):
    """A ``.result`` that is not what the daemon writes (edited by hand, or cut short): the
    message says where, so that an export refuses it before its first byte is sent."""


def check_result(result: dict[str, Any]) -> None:
    """What every rendering reads, of the types it reads them as; raises :class:`MalformedResult`."""
    transcription = result.get("transcription")
    if transcription is None:
        return
    if not isinstance(transcription, dict):
        raise MalformedResult("transcription is not an object")
    for key in ("segments", "speakers", "turns"):
        items = transcription.get(key)
        if items is not None and not (isinstance(items, list) and all(isinstance(i, dict) for i in items)):
            raise MalformedResult(f"transcription.{key} is not a list of objects")
    for n, segment in enumerate(transcription.get("segments") or []):
        where = f"transcription.segments[{n}]"
        if not _finite(segment):
            raise MalformedResult(f"{where} has no start or end time in seconds")
        if not isinstance(segment.get("text") or "", str) or not isinstance(segment.get("speaker") or "", str):
            raise MalformedResult(f"{where}: its text and speaker must be strings")
        words = segment.get("words")
        if words is None:
            continue
        if not isinstance(words, list):
            raise MalformedResult(f"{where}.words is not a list")
        for k, word in enumerate(words):
            if not isinstance(word, dict) or not isinstance(word.get("word"), str):
                raise MalformedResult(f"{where}.words[{k}] is not a word")
            if any(word.get(key) is not None for key in ("start", "end")) and not _finite(word):
                raise MalformedResult(f"{where}.words[{k}] has a time that is not a number")
    for n, turn in enumerate(transcription.get("turns") or []):
        if not _finite(turn):
            raise MalformedResult(f"transcription.turns[{n}] has no start or end time in seconds")
    analysis = result.get("analysis")
    analysed = analysis.get("speakers") if isinstance(analysis, dict) else None
    for where, speakers in (("transcription.speakers", transcription.get("speakers")), ("analysis.speakers", analysed)):
        for n, speaker in enumerate(speakers if isinstance(speakers, list) else []):
            talk = speaker.get("talk_seconds") if isinstance(speaker, dict) else None
            if talk is not None and not (isinstance(talk, int | float) and not isinstance(talk, bool)):
                raise MalformedResult(f"{where}[{n}].talk_seconds is not a number")


def _finite(item: dict[str, Any]) -> bool:
    return is_timed(item) and all(math.isfinite(item[key]) for key in ("start", "end"))
