"""Reading audio with ffprobe/ffmpeg, classifying what cannot be read.

Runs inside the worker process.  Failures become permanent job errors
(``empty_file``, ``no_audio_stream``, ``audio_decode_failed``), so a broken
file goes to review at once instead of being retried.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transcriber.errors import AudioDecodeError, EmptyFileError, NoAudioStreamError

SAMPLE_RATE = 16_000
PROBE_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class AudioInfo:
    duration_seconds: float | None
    codec: str | None


@dataclass(frozen=True)
class Clip:
    """Decoded audio handed to the engine: where it came from, and its samples."""

    path: Path
    samples: np.ndarray

    @property
    def seconds(self) -> float:
        return self.samples.size / SAMPLE_RATE


def probe(path: Path) -> AudioInfo:
    """Check that ``path`` holds an audio stream; raise a permanent error if not."""
    if path.stat().st_size == 0:
        raise EmptyFileError("the file is empty (0 bytes)")
    command = [
        "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", str(path),
    ]
    try:
        completed = subprocess.run(command, capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioDecodeError(f"ffprobe did not finish within {PROBE_TIMEOUT_SECONDS} s") from exc
    if completed.returncode != 0:
        raise AudioDecodeError(f"not a readable media file: {_last_line(completed.stderr, path)}")
    try:
        document = json.loads(completed.stdout or b"{}")
    except ValueError as exc:
        raise AudioDecodeError("ffprobe returned unreadable output") from exc
    audio_streams = [s for s in document.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio_streams:
        kinds = sorted({s.get("codec_type", "unknown") for s in document.get("streams", [])})
        found = ", ".join(kinds) if kinds else "no streams at all"
        raise NoAudioStreamError(f"the file has no audio stream (found: {found})")
    duration = _float_or_none(document.get("format", {}).get("duration"))
    return AudioInfo(duration_seconds=duration, codec=audio_streams[0].get("codec_name"))


def decode(path: Path) -> Clip:
    """The first audio stream as 16 kHz mono float32, like ``whisperx.load_audio``."""
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-threads", "0", "-i", str(path), "-map", "0:a:0",
        "-f", "s16le", "-ac", "1", "-acodec", "pcm_s16le", "-ar", str(SAMPLE_RATE), "-",
    ]
    completed = subprocess.run(command, capture_output=True, check=False)
    if completed.returncode != 0:
        raise AudioDecodeError(f"ffmpeg could not decode the audio: {_last_line(completed.stderr, path)}")
    samples = np.frombuffer(completed.stdout, np.int16).astype(np.float32) / 32768.0
    if samples.size == 0:
        raise EmptyFileError("the audio stream holds no samples")
    return Clip(path, samples)


def _last_line(stderr: bytes, path: Path) -> str:
    """ffmpeg's last complaint, without the server's folder (it reaches API clients)."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].replace(str(path), path.name)[:300] if lines else "no details from ffmpeg"


def _float_or_none(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
