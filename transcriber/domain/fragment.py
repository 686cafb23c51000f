"""A part of a transcript: what was said between two moments (``?from=&to=`` on every export).

Words are kept by where they are said (their middle within the range), their
times clipped to it; a
segment without word times is kept whole when it overlaps the range, its text
cannot be cut.  Times stay those of the recording, or start at 0 with
``relative``.  The call facts (``analysis``) describe the whole call and are
left out of a fragment; the speakers' figures are those of the fragment.
"""

from __future__ import annotations

import math
from typing import Any

from transcriber.domain.transcript import is_timed, speaker_summary
from transcriber.errors import ErrorCode, TranscriberError


class RangeError(TranscriberError):
    code = ErrorCode.INVALID_RANGE


def check_range(start: float | None, end: float | None, duration: float | None) -> tuple[float, float]:
    """``(start, end)`` in seconds with the defaults filled in (0, the end); raises RangeError."""
    whole = float(duration) if duration is not None and math.isfinite(float(duration)) else math.inf
    first = 0.0 if start is None else start
    last = whole if end is None else end
    if not (math.isfinite(first) and (math.isfinite(last) or last == whole)):
        raise RangeError("from and to must be finite numbers of seconds")
    if first < 0:
        raise RangeError(f"from is negative ({first:g} s)")
    if last <= first:
        raise RangeError(f"to ({last:g} s) must be after from ({first:g} s)")
    if first >= whole:
        raise RangeError(f"from ({first:g} s) is past the end of the recording ({whole:g} s)")
    if not math.isfinite(min(last, whole)):
        raise RangeError("the recording's length is unknown: give to as well")
    return first, min(last, whole)


def cut(result: dict[str, Any], start: float, end: float, relative: bool = False) -> dict[str, Any]:
    """``result`` between ``start`` and ``end`` seconds (checked by :func:`check_range`)."""
    shift = start if relative else 0.0
    transcription = dict(result.get("transcription") or {})
    segments = [part for index, segment in enumerate(transcription.get("segments") or [])
                if (part := _segment_part(index, segment, start, end, shift)) is not None]
    transcription["segments"] = segments
    transcription["text"] = " ".join(str(s.get("text") or "").strip() for s in segments).strip()
    if transcription.get("turns"):
        transcription["turns"] = [
            {**turn, "start": _moved(max(float(turn["start"]), start), shift),
             "end": _moved(min(float(turn["end"]), end), shift)}
            for turn in transcription["turns"] if float(turn["end"]) > start and float(turn["start"]) < end
        ]
    if transcription.get("speakers"):
        names = {s["id"]: s["name"] for s in transcription["speakers"] if s.get("name")}
        transcription["speakers"] = [{**s, "name": names[s["id"]]} if s["id"] in names else s
                                     for s in speaker_summary(segments)]
    cut_result = {key: value for key, value in result.items() if key != "analysis"}
    cut_result["transcription"] = transcription
    cut_result["fragment"] = {"from": start, "to": end, "relative": relative}
    return cut_result


def _segment_part(index: int, segment: dict[str, Any], start: float, end: float,
                  shift: float) -> dict[str, Any] | None:
    words = segment.get("words") or []
    timed = bool(words) and all(is_timed(w) for w in words)
    if timed:
        kept = [w for w in words if start <= (float(w["start"]) + float(w["end"])) / 2 < end]
        if not kept:
            return None
        part = {**segment, "words": [{**w, "start": _moved(max(float(w["start"]), start), shift),
                                      "end": _moved(min(float(w["end"]), end), shift)} for w in kept]}
        if len(kept) < len(words):
            part["text"] = " ".join(str(w["word"]).strip() for w in kept)
        part["start"], part["end"] = part["words"][0]["start"], part["words"][-1]["end"]
    elif float(segment["end"]) > start and float(segment["start"]) < end:
        part = {**segment, "start": _moved(max(float(segment["start"]), start), shift),
                "end": _moved(min(float(segment["end"]), end), shift)}
    else:
        return None
    part.setdefault("id", index)  # the id of the segment in the whole transcript, for corrections
    return part


def _moved(seconds: Any, shift: float) -> float:
    return round(float(seconds) - shift, 3)
