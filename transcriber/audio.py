"""Reading audio with ffmpeg, classifying what cannot be read.

Runs inside the worker process.  Failures become permanent job errors
(``empty_file``, ``no_audio_stream``, ``audio_decode_failed``), so a broken
file goes to review at once instead of being retried.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transcriber.errors import AudioDecodeError, EmptyFileError, NoAudioStreamError

SAMPLE_RATE = 16_000
_READ_BYTES = 1 << 20


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
    ffmpeg writes float32 itself, read into one growing buffer and copied
    once into an array of its own: an hour costs 460 MB for a moment, not the
    575 MB of 16-bit output plus two float copies.  The samples must own
    their memory: an array viewing the buffer made WhisperX's recognition
    grow with the file's length, to 3.6 GB on an hour instead of 2.0 GB
    (docs/PERFORMANCE.md, memory).
    """
    if path.stat().st_size == 0:
        raise EmptyFileError("the file is empty (0 bytes)")
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-threads", "0", "-i", str(path), "-map", "0:a:0",
        "-f", "f32le", "-ac", "1", "-acodec", "pcm_f32le", "-ar", str(SAMPLE_RATE), "-",
    ]
    # stderr to a file: a badly damaged file can log more than a pipe holds while stdout is read.
    with tempfile.TemporaryFile() as errors, subprocess.Popen(command, stdout=subprocess.PIPE,
                                                               stderr=errors) as ffmpeg:
        assert ffmpeg.stdout is not None
        decoded = bytearray()
        while chunk := ffmpeg.stdout.read(_READ_BYTES):
            decoded += chunk  # large bytearrays grow in place (realloc), no copy per chunk
        returncode = ffmpeg.wait()
        errors.seek(0)
        stderr = errors.read()
    if returncode != 0:
        if b"matches no streams" in stderr:
            raise NoAudioStreamError("the file has no audio stream")
        raise AudioDecodeError(f"not a readable media file: {_last_line(stderr, path)}")
    whole = len(decoded) - len(decoded) % 4  # whole samples only, should ffmpeg stop mid-sample
    samples = np.frombuffer(decoded, np.float32, count=whole // 4).copy()
    del decoded
    if samples.size == 0:
        raise EmptyFileError("the audio stream holds no samples")
    return Clip(path, samples)


def _last_line(stderr: bytes, path: Path) -> str:
    """ffmpeg's last complaint, without the server's folder (it reaches API clients)."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].replace(str(path), path.name)[:300] if lines else "no details from ffmpeg"


