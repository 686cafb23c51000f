"""The offline speaker pipeline: the words' speech → CAM++ embeddings → clustering → speakers on words.

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

from transcriber.engine.audio import SAMPLE_RATE
from transcriber.engine.speakers.assign import assign
from transcriber.engine.speakers.clustering import cluster
from transcriber.engine.speakers.embeddings import SpeakerEmbedder, speech_regions, windows_of

log = logging.getLogger("Engine")

BACKEND = "campplus"


@dataclass(frozen=True)
class Hints:
    min_speakers: int | None = None
    max_speakers: int | None = None


class SpeakerDiarizer:
    def __init__(self, weights: Path, device: str) -> None:
        self.embedder = SpeakerEmbedder(weights, device)

    def __call__(self, samples: np.ndarray, segments: list[dict[str, Any]], language: str | None, hints: Hints,
                 progress: Callable[[float], None] = lambda _: None) -> list[dict[str, Any]]:
        windows = windows_of(speech_regions(segments), samples.size / SAMPLE_RATE)
        if not windows:
            return segments
        embeddings = self.embedder.embed(samples, windows, lambda percent: progress(0.9 * percent))
        heard = np.linalg.norm(embeddings, axis=1) > 0  # windows too short to embed take their neighbours'
        if not heard.any():
            return assign(segments, windows, np.zeros(len(windows), np.int64), language)
        labels = cluster(embeddings[heard], hints.min_speakers, hints.max_speakers)
        kept = [window for window, used in zip(windows, heard, strict=True) if used]
        log.debug("Diarization: %d windows, %d speakers", len(kept), labels.max() + 1)
        return assign(segments, kept, labels, language)
