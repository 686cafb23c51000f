"""The ``.result`` document (docs/API.md, GET /result): the seed's schema, extended."""

from __future__ import annotations

from datetime import datetime
from importlib import metadata
from typing import Any

from transcriber.domain.analysis import DEFAULT_MIN_SILENCE_SECONDS, call_facts
from transcriber.domain.job import Job
from transcriber.domain.transcript import Transcript, audio_of, speaker_summary
from transcriber.folder.sidecars import format_time
from transcriber.folder.stability import Signature


def build_result(
    job: Job, transcript: Transcript, duration_seconds: float, started: datetime, finished: datetime,
    audio: Signature | None = None, min_silence_seconds: float = DEFAULT_MIN_SILENCE_SECONDS,
) -> dict[str, Any]:
    """``audio``: the file's size and mtime when the worker was given it; ``min_silence_seconds``:
    the shortest silence ``analysis.silence_marks`` lists (``analysis.min_silence_seconds``)."""
    settings = job.settings.to_dict()
    engine: dict[str, Any] = {"whisperx": whisperx_version(), "model": transcript.model}
    result_metadata: dict[str, Any] = {
        "duration_seconds": duration_seconds,  # where the specification puts it; also at the top level
        "confidence": transcript.confidence,
        "word_count": len(transcript.text.split()),
        "language_probability": transcript.language_probability,
        "attempts": job.current_attempt,
        "engine": engine,
    }
    result_metadata.update(transcript.stages)
    if transcript.warnings:
        result_metadata["warnings"] = list(transcript.warnings)
    # When each phase began: found by the watcher, queued, started; the .result's
    # mtime tells when it was written.  docs/PERFORMANCE.md measures from these.
    result_metadata["timeline"] = {
        "detected": format_time(job.detected_at), "queued": format_time(job.creation_time),
        "started": format_time(started), "finished": format_time(finished),
    }
    if audio is not None:
        # What was transcribed: a copy that paused for longer than the stability
        # window looked complete and was transcribed half; when the file changes
        # after that, the watcher sees it no longer matches and transcribes it again.
        result_metadata["audio_file"] = {"size_bytes": audio.size, "mtime_ns": audio.mtime_ns}
    transcription: dict[str, Any] = {
        "text": transcript.text,
        "language": transcript.language,
        # ``id``: the segment's index, how corrections (``.edits``) and fragments name it
        "segments": [{"id": number, **segment} for number, segment in enumerate(transcript.segments)],
    }
    speakers = speaker_summary(transcript.segments)
    if speakers:
        transcription["speakers"] = speakers
        transcription["turns"] = transcript.turns
    return {
        "task_id": job.task_id,
        "filename": job.filename,
        "processing_start": format_time(started),
        "processing_end": format_time(finished),
        "duration_seconds": duration_seconds,
        "processing_time_seconds": round((finished - started).total_seconds(), 3),
        "settings": settings,
        "transcription": transcription,
        "analysis": call_facts(transcript.segments, transcript.turns, transcript.speech, duration_seconds,
                               min_silence_seconds),
        "metadata": result_metadata,
    }


def transcribed_signature(document: dict[str, Any] | None) -> Signature | None:
    """The audio size and mtime a ``.result`` was made from; None when it does
    not say (written by an older version, or by hand)."""
    audio = audio_of(document) if isinstance(document, dict) else None
    return Signature(audio["size_bytes"], audio["mtime_ns"]) if audio else None


def whisperx_version() -> str | None:
    try:
        return metadata.version("whisperx")
    except metadata.PackageNotFoundError:
        return None
