"""Speakers onto the transcript: each word the speaker of its nearest window, segments cut where speakers change."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from transcriber.engine.speakers.embeddings import Window
from transcriber.engine.words import segment_of

Segments = list[dict[str, Any]]
FLIP_SECONDS = 1.0
TURN_GAP = 0.5  # seconds


def speaker_id(number: int) -> str:
    return f"SPEAKER_{number:02d}"


def turns_of(regions: list[tuple[float, float]], windows: list[Window], labels: np.ndarray) -> list[dict[str, Any]]:
    """Who spoke when: each region of speech cut where its windows' speaker changes (halfway between
    the two windows' middles), as ``{start, end, label}``; a region without windows takes its nearest one's."""
    nearest = _nearest(windows, labels)
    by_region: dict[int, list[tuple[float, int]]] = {}
    for window, label in zip(windows, labels, strict=True):
        by_region.setdefault(window.region, []).append((window.middle, int(label)))
    turns: list[dict[str, Any]] = []
    for index, (start, end) in enumerate(regions):
        inside = sorted(by_region.get(index) or [((start + end) / 2, nearest((start + end) / 2))])
        edge, label = start, inside[0][1]
        for (middle, before), (following, after) in itertools.pairwise(inside):
            if after != before:
                cut = (middle + following) / 2
                turns.append({"start": edge, "end": cut, "label": label})
                edge, label = cut, after
        turns.append({"start": edge, "end": end, "label": label})
    return turns


def merged_turns(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns with their speaker, one speaker's joined across pauses under ``TURN_GAP`` (a breath
    between two sentences is still their turn), times rounded to milliseconds."""
    merged: list[dict[str, Any]] = []
    for turn in turns:
        if merged and merged[-1]["speaker"] == turn["speaker"] and turn["start"] - merged[-1]["end"] < TURN_GAP:
            merged[-1]["end"] = turn["end"]
        else:
            merged.append({"start": turn["start"], "end": turn["end"], "speaker": turn["speaker"]})
    return [{**turn, "start": round(turn["start"], 3), "end": round(turn["end"], 3)} for turn in merged]


def _nearest(windows: list[Window], labels: np.ndarray) -> Callable[[float], int]:
    middles = np.array([window.middle for window in windows])
    order = np.argsort(middles)
    middles, ordered = middles[order], labels[order]

    def nearest(at: float) -> int:
        index = int(np.searchsorted(middles, at))
        candidates = [i for i in (index - 1, index) if 0 <= i < middles.size]
        return int(ordered[min(candidates, key=lambda i: abs(middles[i] - at))])

    return nearest


def assign(segments: Segments, windows: list[Window], labels: np.ndarray, language: str | None,
           turns: list[dict[str, Any]] | None = None) -> Segments:
    """The segments with ``speaker`` on each, and on each word; a segment two people speak in is cut in two.

    A word's speaker is that of the turn (``turns_of``) its middle falls in, or of its nearest window.
    ``labels`` are cluster numbers per window; speakers are named ``SPEAKER_00``… in the order they
    first speak in the transcript, and ``turns`` get ``speaker`` too (labels no word has come after).
    """
    if not windows:
        return segments
    nearest = _nearest(windows, labels)
    turns = turns or []
    starts = [turn["start"] for turn in turns]

    def label_at(at: float) -> int:
        index = bisect.bisect_right(starts, at) - 1
        if index >= 0 and at < turns[index]["end"]:
            return int(turns[index]["label"])
        return nearest(at)

    names: dict[int, str] = {}

    def name(label: int) -> str:
        return names.setdefault(label, speaker_id(len(names)))

    assigned: Segments = []
    for segment in segments:
        words = segment.get("words") or []
        if not words:
            assigned.append({**segment, "speaker": name(label_at((segment["start"] + segment["end"]) / 2))})
            continue
        labels_of_words = _smoothed([label_at((word["start"] + word["end"]) / 2) for word in words], words)
        labelled = [{**word, "speaker": name(label)} for word, label in zip(words, labels_of_words, strict=True)]
        assigned.append({**segment, "words": labelled})
    for turn in turns:
        turn["speaker"] = name(int(turn.pop("label")))
    return split_at_speakers(assigned, language)


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
