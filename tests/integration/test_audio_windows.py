"""Decoding with ffmpeg into arrays of their own, whole or a window at a time (transcriber/engine/audio.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import write_tone
from transcriber.engine import audio
from transcriber.errors import AudioDecodeError


def _ffmpeg_samples(path: Path) -> np.ndarray:
    """What the decoder must produce: ffmpeg's float32 output, read in one piece."""
    output = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-ac", "1",
         "-acodec", "pcm_f32le", "-ar", "16000", "-"], capture_output=True, check=True,
    ).stdout
    return np.frombuffer(output, np.float32)


def test_a_whole_file_grows_in_place_past_its_first_allocation(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "tone.wav", seconds=130.0)  # over two doublings of the first minute
    clip = audio.load(tone)
    assert clip.rest is None and clip.seconds == 130.0
    assert clip.samples.flags.owndata  # an array viewing a buffer made WhisperX grow with the file
    assert np.array_equal(clip.samples, _ffmpeg_samples(tone))


def test_a_long_file_comes_a_window_at_a_time_with_the_same_samples(tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "tone.wav", seconds=7.3, frequency=300.0)
    clip = audio.load(tone, window_seconds=2.0)
    assert clip.rest is not None and clip.samples.size == 32_000 and clip.seconds == 2.0
    pieces = [clip.samples]
    buffer = np.zeros(40_000, np.float32)
    while not clip.rest.ended:
        filled = clip.rest.read_into(buffer, 7)  # into the middle of an array, as the engine reuses its buffer
        pieces.append(buffer[7:filled].copy())
    assert clip.seconds == 7.3
    assert np.array_equal(np.concatenate(pieces), _ffmpeg_samples(tone))
    clip.close()  # idempotent once the decoder has ended


def test_a_short_file_is_whole_even_when_windows_are_asked_for(tmp_path: Path) -> None:
    clip = audio.load(write_tone(tmp_path / "short.wav", seconds=1.5), window_seconds=2.0)
    assert clip.rest is None and clip.seconds == 1.5


def test_a_job_ending_early_stops_the_decoder(tmp_path: Path) -> None:
    clip = audio.load(write_tone(tmp_path / "tone.wav", seconds=30.0), window_seconds=1.0)
    assert clip.rest is not None
    ffmpeg = clip.rest._ffmpeg
    clip.close()
    assert ffmpeg.poll() is not None  # no ffmpeg left blocked on a full pipe


def test_broken_files_are_classified_with_windows_too(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not audio at all " * 200)
    with pytest.raises(AudioDecodeError, match="not a readable media file"):
        audio.load(junk, window_seconds=2.0)
