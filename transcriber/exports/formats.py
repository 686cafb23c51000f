"""Rendering a ``.result`` document as plain text, SRT, WebVTT or TSV.

Used by ``GET /result?format=`` and for the files ``output.write_formats``
writes next to the ``.result`` (``call.mp3.srt``; ``json`` is the result
document itself, as ``call.mp3.json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Segments = list[dict[str, Any]]

# What may be written beside a ``.result``: what ``output.write_formats`` accepts.
FILE_FORMATS = ("txt", "srt", "vtt", "tsv", "json")


def render(result: dict[str, Any], fmt: str) -> str:
    transcription = result.get("transcription") or {}
    return RENDERERS[fmt](transcription.get("segments") or [], transcription.get("text") or "")


def render_file(result: dict[str, Any], fmt: str, json_indent: int | None = 2) -> str:
    """The content of the file ``<audio>.<fmt>``: a rendering, or for ``json`` the
    result document exactly as the ``.result`` holds it."""
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False, indent=json_indent)
    return render(result, fmt)


def _text(segments: Segments, text: str) -> str:
    """The text; diarized, one paragraph per speaker turn: ``SPEAKER_00: …``."""
    if not _diarized(segments):
        return text.strip() + "\n" if text.strip() else ""
    turns: list[tuple[str, list[str]]] = []
    for segment in segments:
        speaker, words = str(segment.get("speaker") or "?"), _plain(segment)
        if turns and turns[-1][0] == speaker:
            turns[-1][1].append(words)
        else:
            turns.append((speaker, [words]))
    return "".join(f"{speaker}: {' '.join(parts)}\n" for speaker, parts in turns)


def _diarized(segments: Segments) -> bool:
    return any(segment.get("speaker") for segment in segments)


def _srt(segments: Segments, _text_: str) -> str:
    blocks = [
        f"{number}\n{_clock(s['start'], ',')} --> {_clock(_end(s), ',')}\n{_line(s)}\n"
        for number, s in enumerate(segments, 1)
    ]
    return "\n".join(blocks)


def _vtt(segments: Segments, _text_: str) -> str:
    blocks = [f"{_clock(s['start'], '.')} --> {_clock(_end(s), '.')}\n{_voiced(s)}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _tsv(segments: Segments, _text_: str) -> str:
    """Whisper's TSV: start and end in integer milliseconds, then the text (diarized: the speaker before it)."""
    diarized = _diarized(segments)
    rows = ["start\tend\tspeaker\ttext" if diarized else "start\tend\ttext"]
    for s in segments:
        speaker = f"{s.get('speaker') or ''}\t" if diarized else ""
        rows.append(f"{round(s['start'] * 1000)}\t{round(s['end'] * 1000)}\t{speaker}{_plain(s)}")
    return "\n".join(rows) + "\n"


def _end(segment: dict[str, Any]) -> float:
    """A cue's end, a millisecond past its start at least (a one-word segment can be timed 0 s long)."""
    return max(float(segment["end"]), float(segment["start"]) + 0.001)


def _plain(segment: dict[str, Any]) -> str:
    return " ".join(str(segment.get("text", "")).split())


def _voiced(segment: dict[str, Any]) -> str:
    """WebVTT's voice tag: ``<v SPEAKER_00>text`` (``<``, ``>`` and ``&`` escaped in the text)."""
    text = _escaped(_plain(segment))
    speaker = _escaped(str(segment.get("speaker") or ""))
    return f"<v {speaker}>{text}" if speaker else text


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _line(segment: dict[str, Any]) -> str:
    text = _plain(segment)
    speaker = segment.get("speaker")
    return f"[{speaker}] {text}" if speaker else text


def _clock(seconds: float, decimal_mark: str) -> str:
    milliseconds = max(round(float(seconds) * 1000), 0)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}{milliseconds:03d}"


RENDERERS: dict[str, Callable[[Segments, str], str]] = {"txt": _text, "srt": _srt, "vtt": _vtt, "tsv": _tsv}
MEDIA_TYPES = {"txt": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt",
               "tsv": "text/tab-separated-values"}
