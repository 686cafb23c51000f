"""Reading audio with ffmpeg, classifying what cannot be read.

Runs inside the worker process.  Failures become permanent job errors
(``empty_file``, ``no_audio_stream``, ``audio_decode_failed``), so a broken
file goes to review at once instead of being retried.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transcriber.errors import AudioDecodeError, EmptyFileError, NoAudioStreamError

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Clip:
    """Decoded audio handed to the engine: where it came from, and its samples."""

    path: Path
    samples: np.ndarray

    @property
    def seconds(self) -> float:
        return self.samples.size / SAMPLE_RATE


def load(path: Path) -> Clip:
    """The first audio stream as 16 kHz mono float32, like ``whisperx.load_audio``.

    One ffmpeg run both decodes and classifies: a separate ffprobe cost
    ~50 ms per file, a tenth of a short clip's transcription (bench/).
    """
    if path.stat().st_size == 0:
        raise EmptyFileError("the file is empty (0 bytes)")
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-threads", "0", "-i", str(path), "-map", "0:a:0",
        "-f", "s16le", "-ac", "1", "-acodec", "pcm_s16le", "-ar", str(SAMPLE_RATE), "-",
    ]
    completed = subprocess.run(command, capture_output=True, check=False)
    if completed.returncode != 0:
        if b"matches no streams" in completed.stderr:
            raise NoAudioStreamError("the file has no audio stream")
        raise AudioDecodeError(f"not a readable media file: {_last_line(completed.stderr, path)}")
    samples = np.frombuffer(completed.stdout, np.int16).astype(np.float32) / 32768.0
    if samples.size == 0:
        raise EmptyFileError("the audio stream holds no samples")
    return Clip(path, samples)


def _last_line(stderr: bytes, path: Path) -> str:
    """ffmpeg's last complaint, without the server's folder (it reaches API clients)."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].replace(str(path), path.name)[:300] if lines else "no details from ffmpeg"


