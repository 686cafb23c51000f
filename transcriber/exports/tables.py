"""Tables: whisper's TSV, one row per segment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from transcriber.domain.transcript import plain_text as plain
from transcriber.domain.transcript import segments_of
from transcriber.exports.text import Names, diarized, encoded


def render_tsv(result: dict[str, Any]) -> Iterator[bytes]:
    """Start and end in integer milliseconds, then the text (diarized: the speaker before it)."""
    return encoded(_rows(result))


def _rows(result: dict[str, Any]) -> Iterator[str]:
    segments = segments_of(result)
    with_speakers = diarized(segments)
    names = Names(result)
    yield "start\tend\tspeaker\ttext\n" if with_speakers else "start\tend\ttext\n"
    for segment in segments:
        speaker = f"{_cell(names.of(segment) or '')}\t" if with_speakers else ""
        start, end = round(float(segment["start"]) * 1000), round(float(segment["end"]) * 1000)
        yield f"{start}\t{end}\t{speaker}{plain(segment)}\n"


def _cell(text: str) -> str:
    """A name a person typed, on one line, without the tabs that would make it two columns."""
    return " ".join(text.split())
