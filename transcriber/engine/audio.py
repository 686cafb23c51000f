"""Reading audio with ffmpeg, classifying what cannot be read.

Runs inside the worker process.  Failures become permanent job errors
(``empty_file``, ``no_audio_stream``, ``audio_decode_failed``), so a broken
file goes to review at once instead of being retried.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from transcriber.errors import AudioDecodeError, EmptyFileError, NoAudioStreamError

SAMPLE_RATE = 16_000
_READ_BYTES = 1 << 20
_FIRST_SAMPLES = 60 * SAMPLE_RATE  # a minute; doubled as often as the file needs


@dataclass(frozen=True)
class Clip:
    """Decoded audio handed to the engine: where it came from, and its samples.

    A file longer than the window the engine asked for (``load``) comes with
    ``rest``, the decoder still running: ``samples`` is then its first window,
    and the engine reads the others as it goes.
    """

    path: Path
    samples: np.ndarray
    rest: Decoder | None = None

    @property
    def seconds(self) -> float:
        """The file's length, or what has been decoded of it so far."""
        return (self.rest.samples_read if self.rest is not None else self.samples.size) / SAMPLE_RATE

    def close(self) -> None:
        if self.rest is not None:
            self.rest.close()


def load(path: Path, window_seconds: float | None = None) -> Clip:
    """The first audio stream as 16 kHz mono float32, like ``whisperx.load_audio``.

    One ffmpeg run both decodes and classifies: a separate ffprobe cost
    ~50 ms per file, a tenth of a short clip's transcription (bench/).
    ffmpeg writes float32 itself, read straight into the array the engine
    gets, which grows in place (``_read_into``): an hour costs its 220 MB
    and nothing more, where a buffer copied into an array once complete held
    440 MB for a moment, and 16-bit output plus float copies 575 MB.  The
    samples own their memory: an array viewing a buffer made WhisperX's
    recognition grow with the file's length, to 3.6 GB on an hour instead of
    2.0 GB (docs/PERFORMANCE.md, memory).

    With ``window_seconds``, a longer file is not decoded whole: the clip
    holds its first window and the decoder (``Clip.rest``), so that memory
    does not grow with the file's length.
    """
    if path.stat().st_size == 0:
        raise EmptyFileError("the file is empty (0 bytes)")
    decoder = Decoder(path)
    try:
        samples = decoder.read_all() if window_seconds is None else decoder.read(round(window_seconds * SAMPLE_RATE))
    except BaseException:
        decoder.close()
        raise
    if samples.size == 0:
        raise EmptyFileError("the audio stream holds no samples")
    return Clip(path, samples, None if decoder.ended else decoder)


class Decoder:
    """One ffmpeg run over a file, read as far as the caller needs.

    Reaching the end waits for ffmpeg and raises what its failure means
    (``NoAudioStreamError``, ``AudioDecodeError``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples_read = 0
        self.ended = False
        command = [
            "ffmpeg", "-nostdin", "-v", "error", "-threads", "0", "-i", str(path), "-map", "0:a:0",
            "-f", "f32le", "-ac", "1", "-acodec", "pcm_f32le", "-ar", str(SAMPLE_RATE), "-",
        ]
        # stderr to a file: a badly damaged file can log more than a pipe holds while stdout is read.
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 -- open while ffmpeg runs, closed by close()
        self._ffmpeg = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._errors, bufsize=0)
        self._partial = b""  # the bytes of a sample split between two reads

    def read(self, count: int) -> np.ndarray:
        """The next ``count`` samples; fewer only at the end of the stream."""
        samples = np.empty(count, np.float32)
        filled = self.read_into(samples, 0)
        samples.resize(filled, refcheck=False)
        return samples

    def read_into(self, samples: np.ndarray, filled: int) -> int:
        """Read into ``samples[filled:]`` until it is full or the stream ends; the new fill."""
        if filled >= samples.size or self.ended:
            return filled
        return self._fill(samples, filled)

    def read_all(self) -> np.ndarray:
        """Every sample left, in one array grown in place.

        Doubled when full and cut to size at the end: ``ndarray.resize``
        reallocates, and glibc moves a block this large by remapping its
        pages (``mremap``), never by copying it; the doubling's unused pages
        are never touched, so never resident.
        """
        samples = np.empty(_FIRST_SAMPLES, np.float32)
        filled = 0
        while not self.ended:
            if filled == samples.size:
                samples.resize(samples.size * 2, refcheck=False)  # no view of it is alive here
            filled = self._fill(samples, filled)
        samples.resize(filled, refcheck=False)
        return samples

    def _fill(self, samples: np.ndarray, filled: int) -> int:
        """Read into ``samples[filled:]`` until it is full or the stream ends; the new fill."""
        stdout = cast(io.BufferedReader, self._ffmpeg.stdout)  # Popen's, unbuffered reads into our buffer
        assert stdout is not None
        with samples.data.cast("B") as view:
            at = filled * 4
            view[at:at + len(self._partial)] = self._partial
            at += len(self._partial)
            while at < len(view) and not self.ended:
                with view[at:at + _READ_BYTES] as window:
                    count = stdout.readinto(window)
                if count:
                    at += count
                else:
                    self._finish()
            whole = at - at % 4  # whole samples only; a split one waits for the next read
            self._partial = bytes(view[whole:at])
        self.samples_read += whole // 4 - filled
        return whole // 4

    def _finish(self) -> None:
        self.ended = True
        returncode = self._ffmpeg.wait()
        self._errors.seek(0)
        stderr = self._errors.read()
        self.close()
        if returncode != 0:
            if b"matches no streams" in stderr:
                raise NoAudioStreamError("the file has no audio stream")
            raise AudioDecodeError(f"not a readable media file: {_last_line(stderr, self.path)}")

    def close(self) -> None:
        """Stop ffmpeg if it still runs (the job ended early); idempotent."""
        if self._ffmpeg.poll() is None:
            self._ffmpeg.kill()
            self._ffmpeg.wait()
        if self._ffmpeg.stdout is not None:
            self._ffmpeg.stdout.close()
        self._errors.close()


def probe_seconds(path: Path) -> float | None:
    """The container's duration by ffprobe, or None when it does not say (progress of long files only)."""
    try:
        completed = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
            capture_output=True, text=True, timeout=30, check=False,
        )
        seconds = float(completed.stdout.strip())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return seconds if seconds > 0 else None


def _last_line(stderr: bytes, path: Path) -> str:
    """ffmpeg's last complaint, without the server's folder (it reaches API clients)."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].replace(str(path), path.name)[:300] if lines else "no details from ffmpeg"
