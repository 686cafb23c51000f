"""The offline speaker pipeline: the speech heard (or the words') → CAM++ embeddings → clustering → speakers on words.

Runs after word timing, on the recording's samples (docs/PERFORMANCE.md has
its accuracy on bench/dialogues.py's set and its speed).  Loaded once per
worker, like the recognition model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transcriber.engine.speakers.assign import assign, merged_turns, turns_of
from transcriber.engine.speakers.clustering import ONE_VOICE, cluster
from transcriber.engine.speakers.embeddings import Audio, SpeakerEmbedder, regions_of, speech_regions, windows_of

log = logging.getLogger("Engine")

BACKEND = "campplus"


@dataclass(frozen=True)
class Hints:
    min_speakers: int | None = None
    max_speakers: int | None = None


@dataclass(frozen=True)
class Diarized:
    segments: list[dict[str, Any]]
    turns: list[dict[str, Any]]  # [{start, end, speaker}]: who spoke when, by the detector's speech


class SpeakerDiarizer:
    def __init__(self, weights: Path, device: str, one_voice: float = ONE_VOICE) -> None:
        self.embedder = SpeakerEmbedder(weights, device)
        self.one_voice = one_voice  # bench/diarization.py tunes it

    def __call__(self, audio: Audio, segments: list[dict[str, Any]], language: str | None, hints: Hints,
                 progress: Callable[[float], None] = lambda _: None,
                 speech: list[tuple[float, float]] | None = None) -> Diarized:
        """Speakers on ``segments`` (words timed), and the speaker turns; ``speech``: the detector's
        speech regions (seconds), or None to take the words' own."""
        regions = regions_of(speech, segments) if speech else speech_regions(segments)
        windows = windows_of(regions, audio.seconds)
        if not windows:
            return Diarized(segments, [])
        embeddings = self.embedder.embed(audio, windows, lambda percent: progress(0.9 * percent))
        heard = np.linalg.norm(embeddings, axis=1) > 0  # windows too short to embed take their neighbours'
        if heard.any():
            labels = cluster(embeddings[heard], hints.min_speakers, hints.max_speakers, self.one_voice)
            windows = [window for window, used in zip(windows, heard, strict=True) if used]
        else:
            labels = np.zeros(len(windows), np.int64)
        log.debug("Diarization: %d windows, %d speakers", len(windows), labels.max() + 1)
        turns = turns_of(regions, windows, labels)
        assigned = assign(segments, windows, labels, language, turns)
        return Diarized(assigned, merged_turns(turns))
