"""How well a transcript's speakers match a dialogue's reference turns (pyannote.metrics)."""

from __future__ import annotations

import os
from typing import Any

from bench.dialogues import Dialogue, speaker_at

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")  # pyannote 4's telemetry stays off

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

MERGE_GAP = 0.5  # seconds: same-speaker words closer than this make one hypothesis turn


def score(dialogue: Dialogue, segments: list[dict[str, Any]], from_words: bool = True,
          turns: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """DER over the whole audio (pyannote's collar of 0.25 s, i.e. 0.125 s either side of each reference
    boundary; overlap skipped), the speaker count, and the share of words given the right speaker.

    The hypothesis is built from the words by default (``from_words``): WhisperX gives each word its own
    speaker, and a segment's one speaker and its span (pauses included) would hide a change of speaker inside
    a segment and count its pauses as speech.  Segments without timed, labelled words count by their span.
    Joining words across pauses under ``MERGE_GAP`` also fills a pause shorter than that between two turns of
    one speaker (false alarm beyond the collar: 0.012 on en-monologue scored against its own turns).

    With ``turns`` (``transcription.turns``: who spoke when, by the speech detector's speech), the
    hypothesis is those turns instead: what the diarization found, whatever the recognition made of it.

    ``words_right`` maps hypothesis labels to reference ones by the metric's optimal mapping and judges each
    word at its midpoint; words whose midpoint lies outside every reference turn are left out, words without
    a speaker count as wrong.  ``der`` can pass 1 when the hypothesis has much false alarm.
    """
    reference = Annotation(uri=dialogue.name)
    for turn in dialogue.turns:
        reference[Segment(turn.start, turn.end)] = turn.speaker
    hypothesis = hypothesis_of(segments, from_words) if turns is None else turns_annotation(turns)
    metric = DiarizationErrorRate(collar=0.25, skip_overlap=True)
    uem = Timeline([Segment(0.0, dialogue.seconds)])
    der = float(metric(reference, hypothesis, uem=uem))
    mapping = metric.optimal_mapping(reference, hypothesis, uem=uem)
    judged = right = 0
    for segment in segments:
        for word in segment.get("words") or []:
            if word.get("start") is None or word.get("end") is None:
                continue
            truth = speaker_at(dialogue, (word["start"] + word["end"]) / 2)
            if truth is None:
                continue
            judged += 1
            right += word.get("speaker") is not None and mapping.get(word["speaker"]) == truth
    found = {s["speaker"] for s in segments if s.get("speaker") is not None}
    found |= {w["speaker"] for s in segments for w in s.get("words") or [] if w.get("speaker") is not None}
    return {"der": der, "speakers_found": len(found), "speakers_true": dialogue.speakers,
            "count_right": len(found) == dialogue.speakers, "words": judged,
            "words_right": right / judged if judged else 0.0}


def turns_annotation(turns: list[dict[str, Any]]) -> Annotation:
    hypothesis = Annotation()
    for n, turn in enumerate(turns):
        if turn["end"] > turn["start"]:
            hypothesis[Segment(turn["start"], turn["end"]), n] = turn["speaker"]
    return hypothesis


def hypothesis_of(segments: list[dict[str, Any]], from_words: bool = True) -> Annotation:
    """The speakers' turns: each segment's (start, end, speaker), or its words' spans (``from_words``), where
    same-speaker words less than ``MERGE_GAP`` apart are joined; unlabelled spans are left out."""
    spans: list[tuple[float, float, str, bool]] = []  # (start, end, speaker, a word)
    for segment in segments:
        words = [w for w in segment.get("words") or []
                 if w.get("speaker") is not None and w.get("start") is not None and w.get("end") is not None]
        if from_words and words:
            spans += [(w["start"], w["end"], w["speaker"], True) for w in words]
        elif segment.get("speaker") is not None:
            spans.append((segment["start"], segment["end"], segment["speaker"], False))
    spans.sort()
    merged: list[tuple[float, float, str, bool]] = []
    for start, end, speaker, word in spans:
        last = merged[-1] if merged else None
        if last and word and last[3] and last[2] == speaker and start - last[1] < MERGE_GAP:
            merged[-1] = (last[0], max(last[1], end), speaker, True)
        else:
            merged.append((start, end, speaker, word))
    hypothesis = Annotation()
    for n, (start, end, speaker, _) in enumerate(merged):
        if end > start:
            hypothesis[Segment(start, end), n] = speaker
    return hypothesis
