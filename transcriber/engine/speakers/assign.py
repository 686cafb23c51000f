"""Speakers onto the transcript: each word the speaker of its nearest window, segments cut where speakers change."""

from __future__ import annotations

from typing import Any

import numpy as np

from transcriber.engine.speakers.embeddings import Window
from transcriber.engine.words import segment_of

Segments = list[dict[str, Any]]
FLIP_SECONDS = 1.0


def speaker_id(number: int) -> str:
    return f"SPEAKER_{number:02d}"


def assign(segments: Segments, windows: list[Window], labels: np.ndarray, language: str | None) -> Segments:
    """The segments with ``speaker`` on each, and on each word; a segment two people speak in is cut in two.

    ``labels`` are cluster numbers per window, numbered in order of first
    appearance; speakers are named ``SPEAKER_00``… in the order they first
    speak in the transcript.
    """
    if not windows:
        return segments
    middles = np.array([window.middle for window in windows])
    order = np.argsort(middles)
    middles, ordered_labels = middles[order], labels[order]

    def nearest(at: float) -> int:
        index = int(np.searchsorted(middles, at))
        candidates = [i for i in (index - 1, index) if 0 <= i < middles.size]
        return int(ordered_labels[min(candidates, key=lambda i: abs(middles[i] - at))])

    names: dict[int, str] = {}

    def name(label: int) -> str:
        return names.setdefault(label, speaker_id(len(names)))

    assigned: Segments = []
    for segment in segments:
        words = segment.get("words") or []
        if not words:
            assigned.append({**segment, "speaker": name(nearest((segment["start"] + segment["end"]) / 2))})
            continue
        labels_of_words = _smoothed([nearest((word["start"] + word["end"]) / 2) for word in words], words)
        labelled = [{**word, "speaker": name(label)} for word, label in zip(words, labels_of_words, strict=True)]
        assigned.append({**segment, "words": labelled})
    return split_at_speakers(assigned, language)


def split_at_speakers(segments: Segments, language: str | None) -> Segments:
    """Segments cut where their words' speaker changes, each with ``speaker`` (its words' own)."""
    split: Segments = []
    for segment in segments:
        words = segment.get("words") or []
        if not words or all(word.get("speaker") == words[0].get("speaker") for word in words):
            speaker = words[0].get("speaker") if words else segment.get("speaker")
            split.append({**segment, "speaker": speaker} if speaker is not None else segment)
            continue
        run: list[dict[str, Any]] = []
        for word in words:
            if run and word.get("speaker") != run[-1].get("speaker"):
                split.append({**segment_of(run, language), "speaker": run[0].get("speaker")})
                run = []
            run.append(word)
        split.append({**segment_of(run, language), "speaker": run[0].get("speaker")})
    return split


def _smoothed(labels: list[int], words: list[dict[str, Any]]) -> list[int]:
    """Within one sentence, a run shorter than ``FLIP_SECONDS`` between two runs of one speaker is theirs:
    a window at a word's edge, not a second voice (a real interjection is a sentence of its own)."""
    runs: list[list[int]] = []  # [label, first, last] word indexes
    for index, label in enumerate(labels):
        if runs and runs[-1][0] == label:
            runs[-1][2] = index
        else:
            runs.append([label, index, index])
    smoothed = list(labels)
    for before, run, after in zip(runs, runs[1:], runs[2:], strict=False):
        if before[0] == after[0] and words[run[2]]["end"] - words[run[1]]["start"] < FLIP_SECONDS:
            smoothed[run[1]:run[2] + 1] = [before[0]] * (run[2] - run[1] + 1)
    return smoothed
