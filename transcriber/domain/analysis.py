"""Call facts, the ``.result``'s ``analysis``: silences, talk time, turns and overlaps.

Arithmetic on what the engine already found, no model of its own.  Speech is,
first found first: the speech detector's regions (``Transcript.speech``, the
VAD WhisperX cuts its chunks from), else the speaker turns (made from the same
detector's speech), else the timed words (pauses under ``WORD_GAP`` joined),
else the segments.  The speakers' facts come from the turns, or from the
segments' speakers when there are no turns.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from transcriber.domain.transcript import is_timed

Span = tuple[float, float]

DEFAULT_MIN_SILENCE_SECONDS = 2.0
# Words this close are one stretch of speech: the gap between two words of a
# sentence, which word timing reports as a few hundredths to a few tenths.
WORD_GAP = 0.3


def call_facts(
    segments: Sequence[dict[str, Any]], turns: Sequence[dict[str, Any]], speech: Sequence[Sequence[float]],
    duration_seconds: float, min_silence_seconds: float,
) -> dict[str, Any]:
    """The ``analysis`` of one transcript (docs/API.md, GET /result)."""
    spoken = _clipped(merged(speech_of(segments, turns, speech)), duration_seconds)
    gaps = silences(spoken, duration_seconds)
    floors = speaker_spans(segments, turns)
    overlapping = overlaps(floors)
    return {
        "duration_seconds": round(duration_seconds, 3),
        "speech_seconds": _seconds(spoken),
        "silence_marks": [_mark(gap) for gap in gaps if _length(gap) >= min_silence_seconds],
        "longest_silence_seconds": max((_length(gap) for gap in gaps), default=0.0),
        "min_silence_seconds": min_silence_seconds,
        "speakers": speaker_facts(segments, floors),
        "overlaps": overlapping,
        "overlap_seconds": _seconds(merged((o["start"], o["end"]) for o in overlapping)),
    }


def speech_of(
    segments: Sequence[dict[str, Any]], turns: Sequence[dict[str, Any]], speech: Sequence[Sequence[float]],
) -> list[Span]:
    """The stretches of speech, from the best source there is (the module's docstring)."""
    if speech:
        return [(float(start), float(end)) for start, end in speech]
    if turns:
        return [(float(t["start"]), float(t["end"])) for t in turns]
    return merged(itertools.chain.from_iterable(_spoken(segment) for segment in segments), WORD_GAP)


def _spoken(segment: dict[str, Any]) -> list[Span]:
    words = [(float(w["start"]), float(w["end"])) for w in segment.get("words") or [] if is_timed(w)]
    return words or [(float(segment["start"]), float(segment["end"]))]


def merged(spans: Iterable[Sequence[float]], join: float = 0.0) -> list[Span]:
    """Sorted, overlapping spans (and those less than ``join`` apart) made one; empty ones dropped."""
    result: list[Span] = []
    for start, end in sorted((float(s), float(e)) for s, e in spans if e > s):
        if result and (start <= result[-1][1] or start - result[-1][1] < join):
            result[-1] = (result[-1][0], max(result[-1][1], end))
        else:
            result.append((start, end))
    return result


def silences(spoken: Sequence[Span], duration_seconds: float) -> list[Span]:
    """The gaps between ``spoken`` (sorted, disjoint), the file's start and end included."""
    edges = [0.0, *itertools.chain.from_iterable(spoken), max(duration_seconds, spoken[-1][1] if spoken else 0.0)]
    return [(start, end) for start, end in zip(edges[::2], edges[1::2], strict=True) if end > start]


def speaker_spans(segments: Sequence[dict[str, Any]], turns: Sequence[dict[str, Any]]) -> dict[str, list[Span]]:
    """Each speaker's time (sorted, disjoint spans), in order of first appearance in the transcript:
    from the turns, or from the speakers' segments when there are none."""
    order = [s["speaker"] for s in segments if s.get("speaker") is not None]
    sources = turns or [s for s in segments if s.get("speaker") is not None]
    spans: dict[str, list[Span]] = {speaker: [] for speaker in order}
    for span in sorted(sources, key=lambda t: float(t["start"])):
        spans.setdefault(span["speaker"], []).append((float(span["start"]), float(span["end"])))
    return {speaker: merged(own) for speaker, own in spans.items()}


def speaker_facts(segments: Sequence[dict[str, Any]], floors: dict[str, list[Span]]) -> list[dict[str, Any]]:
    """Each speaker's facts, those of ``floors`` first, then any that only a timed word names."""
    words = _words(segments)
    taken = _turns_taken(floors)
    facts = []
    for speaker in [*floors, *(speaker for speaker in words if speaker not in floors)]:
        talk = _seconds(floors.get(speaker, []))
        said = words.get(speaker, 0)
        facts.append({"id": speaker, "talk_seconds": talk, "turns": taken.get(speaker, 0), "words": said,
                      "words_per_minute": round(said * 60 / talk, 1) if talk > 0 else 0.0})
    return facts


def _words(segments: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Words per speaker: each timed word by its own speaker, else the segment's text by the segment's."""
    counts: dict[str, int] = {}
    for segment in segments:
        words = segment.get("words")
        speakers = ([w.get("speaker", segment.get("speaker")) for w in words] if words
                    else [segment.get("speaker")] * len(str(segment.get("text", "")).split()))
        for speaker in speakers:
            if speaker is not None:
                counts[speaker] = counts.get(speaker, 0) + 1
    return counts


def _turns_taken(floors: dict[str, list[Span]]) -> dict[str, int]:
    """How many times each speaker took the floor: runs of one speaker in the order the spans start
    (a word said inside another's turn is one; the speaker going on after it, the same run)."""
    ordered = sorted((start, speaker) for speaker, spans in floors.items() for start, _ in spans)
    counts: dict[str, int] = {}
    for speaker, _ in itertools.groupby(speaker for _, speaker in ordered):
        counts[speaker] = counts.get(speaker, 0) + 1
    return counts


def overlaps(floors: dict[str, list[Span]]) -> list[dict[str, Any]]:
    """Where two speakers' spans intersect; each speaker's own spans are disjoint."""
    ordered = sorted((start, end, speaker) for speaker, spans in floors.items() for start, end in spans)
    found: list[dict[str, Any]] = []
    active: list[tuple[float, float, str]] = []
    for start, end, speaker in ordered:
        active = [span for span in active if span[1] > start]
        for _, other_end, other in active:
            if other != speaker and min(end, other_end) - start >= 0.001:
                found.append({**_mark((start, min(end, other_end))), "speakers": sorted((other, speaker))})
        active.append((start, end, speaker))
    return found


def _clipped(spans: Sequence[Span], duration_seconds: float) -> list[Span]:
    """Within the file: speech the engine timed past its measured length is cut at its end."""
    if duration_seconds <= 0:
        return list(spans)
    return [(max(s, 0.0), min(e, duration_seconds)) for s, e in spans if e > 0 and s < duration_seconds]


def _length(span: Span) -> float:
    return round(span[1] - span[0], 3)


def _seconds(spans: Iterable[Span]) -> float:
    return round(float(sum(end - start for start, end in spans)), 3)


def _mark(span: Span) -> dict[str, float]:
    return {"start": round(span[0], 3), "end": round(span[1], 3), "seconds": _length(span)}
