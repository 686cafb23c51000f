"""Which chunks of a long file's window are decided (engine._Windows): those the whole file has too."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from transcriber.engine.asr import CHUNK_SECONDS, _FileSamples, _Windows

STEP, FRAME, CONTEXT = 8_000, 270, 96_000  # WhisperX's VAD: windows 0.5 s apart, frames of 270 samples; 6 s


def windows() -> _Windows:
    return _Windows(SimpleNamespace(vad_model=None), STEP, FRAME, CONTEXT)


def chunk(*segments: tuple[float, float]) -> dict[str, Any]:
    return {"start": segments[0][0], "end": segments[-1][1], "segments": list(segments)}


def test_windows_start_where_the_vad_scores_frames_as_over_the_whole_file() -> None:
    assert windows().grid == 216_000  # 13.5 s: a multiple of both the window step and the frame
    assert windows().settled == 6.0 + CHUNK_SECONDS / 2 + 1.0  # 22 s before the window's end


def test_a_chunk_is_decided_once_the_speech_after_it_is() -> None:
    chunks = [chunk((0.5, 12.0), (12.8, 29.0)), chunk((29.0, 55.0)), chunk((56.0, 80.0)), chunk((81.0, 97.0))]
    assert windows()._final(chunks, seconds=120.0) == 3  # settled up to 98 s: 81-97 is, what follows not
    assert windows()._pending(chunks, 3, seconds=120.0) == 81.0
    # Settled up to 78 s: 56-80 is not, but whatever it turns out to be ends after 78 s, more than
    # 30 s after 29 s: it cannot join the chunk from 29 s (which starts at a split of long speech).
    assert windows()._final(chunks, seconds=100.0) == 2
    assert windows()._pending(chunks, 2, seconds=100.0) == 56.0
    assert windows()._final(chunks, seconds=80.0) == 1  # settled up to 58 s
    assert windows()._pending(chunks, 1, seconds=80.0) == 29.0


def test_a_last_chunk_is_decided_once_nothing_after_the_settled_part_could_join_it() -> None:
    lone = [chunk((3.0, 10.0))]
    assert windows()._final(lone, seconds=600.0) == 1
    assert windows()._pending(lone, 1, seconds=600.0) == 600.0 - windows().settled  # silence up to there
    late = [chunk((560.0, 570.0))]  # speech within a chunk's length of the settled part could still join it
    assert windows()._final(late, seconds=600.0) == 0
    assert windows()._pending(late, 0, seconds=600.0) == 560.0
    assert windows()._final([], seconds=600.0) == 0


def test_chunks_are_cut_from_a_window_by_the_files_sample_numbers() -> None:
    samples = _FileSamples(np.arange(100, 200, dtype=np.float32), start=100)
    assert samples[150:153].tolist() == [150.0, 151.0, 152.0]
