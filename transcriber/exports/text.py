"""Plain text and Markdown, and what every rendering for people shares: who speaks
(by the name a person gave, else the engine's id), speaker turns, the header's
facts, timecodes, and the body encoded in batches.

A result handed here may carry corrections (domain/edits.py): ``speaker_name``
beside each ``speaker`` (segments, words, turns), ``name`` in
``transcription.speakers``; and be a fragment (domain/fragment.py) with
``fragment: {from, to, relative}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from transcriber.domain.transcript import plain_text as plain
from transcriber.domain.transcript import segments_of

# Bytes per chunk of a streamed body: big enough that a chunk is not a write per cue,
# small enough that a body is never held whole.  Encoding one holds about three times
# this (bench exports): 32 KB keeps an hour's txt (~130 KB) well under its own size.
CHUNK_BYTES = 32 * 1024


@dataclass(frozen=True)
class Turn:
    """Consecutive segments of one speaker (or, undiarized, one segment)."""

    start: float
    speaker: str | None
    text: str


class Names:
    """The name to show for a speaker: ``speaker_name`` on the item, else the name in
    ``transcription.speakers``, else the engine's id."""

    def __init__(self, result: dict[str, Any]) -> None:
        speakers = (result.get("transcription") or {}).get("speakers") or []
        self._names = {str(s.get("id")): str(s["name"]) for s in speakers if s.get("name")}

    def of(self, item: dict[str, Any], segment: dict[str, Any] | None = None) -> str | None:
        """``item``'s speaker; a word's own comes first, then its ``segment``'s."""
        for source in (item, segment or {}):
            if source.get("speaker_name"):
                return str(source["speaker_name"])
            if source.get("speaker"):
                return self.name(str(source["speaker"]))
        return None

    def name(self, speaker_id: str) -> str:
        return self._names.get(speaker_id, speaker_id)


def diarized(segments: Iterable[dict[str, Any]]) -> bool:
    return any(segment.get("speaker") or segment.get("speaker_name") for segment in segments)


def turns(result: dict[str, Any]) -> Iterator[Turn]:
    """Diarized: one per run of segments of one speaker; otherwise one per segment."""
    segments = segments_of(result)
    names = Names(result)
    if not diarized(segments):
        yield from (Turn(float(s["start"]), None, text) for s in segments if (text := plain(s)))
        return
    current: Turn | None = None
    parts: list[str] = []
    for segment in segments:
        speaker, text = names.of(segment) or "?", plain(segment)
        if current is not None and current.speaker != speaker:
            yield Turn(current.start, current.speaker, " ".join(parts))
            current, parts = None, []
        if current is None:
            current = Turn(float(segment["start"]), speaker, "")
        if text:
            parts.append(text)
    if current is not None:
        yield Turn(current.start, current.speaker, " ".join(parts))


def timecode(seconds: float) -> str:
    """``hh:mm:ss``, the second the moment falls in."""
    whole = max(int(float(seconds)), 0)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def encoded(pieces: Iterable[str]) -> Iterator[bytes]:
    """``pieces`` as UTF-8, in chunks of about ``CHUNK_BYTES``: each piece is encoded
    as it comes, so no more than a chunk is ever held."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece.encode("utf-8")
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


# The header of a document for people (md, docx) -------------------------------------------------

def title(result: dict[str, Any]) -> str:
    return str(result.get("filename") or "Transcript")


def facts(result: dict[str, Any]) -> list[tuple[str, str]]:
    """What the header says of the file first, in order, as (label, value); what the result
    lacks is left out.  Then come the speakers (:func:`speaker_lines`) and the call's facts
    (:func:`fact_lines`)."""
    found: list[tuple[str, str]] = []
    if result.get("filename"):
        found.append(("File", str(result["filename"])))
    if when := _date(result):
        found.append(("Date", when))
    if (duration := _duration(result)) is not None:
        found.append(("Duration", timecode(round(duration))))
    if language := (result.get("transcription") or {}).get("language"):
        found.append(("Language", str(language)))
    if fragment := _fragment(result):
        found.append(("Fragment", fragment))
    return found


def speaker_lines(result: dict[str, Any]) -> list[str]:
    """One line per speaker: ``Anna: 00:01:02`` and, with the call facts, turns and pace."""
    names = Names(result)
    analysis = result.get("analysis")
    if not isinstance(analysis, dict):
        analysis = {}
    analysed = {str(s.get("id")): s for s in analysis.get("speakers") or [] if isinstance(s, dict)}
    speakers = (result.get("transcription") or {}).get("speakers") or list(analysed.values())
    lines = []
    for speaker in speakers:
        speaker_id = str(speaker.get("id"))
        name = str(speaker.get("name") or names.name(speaker_id))
        facts_of = analysed.get(speaker_id, {})
        talk = facts_of.get("talk_seconds", speaker.get("talk_seconds"))  # the call facts' (turns), as the JSON says
        line = f"{name}: {timecode(round(float(talk)))}" if talk is not None else name
        extra = []
        if facts_of.get("turns") is not None:
            extra.append(f"{facts_of['turns']} turn{'' if facts_of['turns'] == 1 else 's'}")
        if facts_of.get("words_per_minute"):
            extra.append(f"{facts_of['words_per_minute']:g} words per minute")
        lines.append(f"{line} ({', '.join(extra)})" if extra else line)
    return lines


def _date(result: dict[str, Any]) -> str | None:
    stamp = result.get("processing_end") or ((result.get("metadata") or {}).get("timeline") or {}).get("finished")
    if not stamp:
        return None
    try:  # the sidecars' 2026-01-01T10:00:00.000Z, for people
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:
        return str(stamp)


def _duration(result: dict[str, Any]) -> float | None:
    for source in (result, result.get("metadata") or {}, result.get("analysis") or {}):
        if isinstance(source.get("duration_seconds"), int | float):
            return float(source["duration_seconds"])
    return None


def _fragment(result: dict[str, Any]) -> str | None:
    fragment = result.get("fragment")
    if not isinstance(fragment, dict):
        return None
    span = f"{timecode(float(fragment.get('from') or 0))}–{timecode(float(fragment.get('to') or 0))}"
    return f"{span} (times from its start)" if fragment.get("relative") else span


def fact_lines(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``analysis`` section (domain/analysis.py), whatever part of it there is (a fragment
    has none: its figures are the whole call's)."""
    analysis = result.get("analysis")
    if not isinstance(analysis, dict):
        return []
    found = []
    if isinstance(analysis.get("speech_seconds"), int | float):
        found.append(("Speech", timecode(round(analysis["speech_seconds"]))))
    marks = analysis.get("silence_marks")
    if isinstance(marks, list):
        over = analysis.get("min_silence_seconds")
        label = f"Silences of {over:g} s or more" if isinstance(over, int | float) else "Silences"
        found.append((label, str(len(marks))))
    if isinstance(analysis.get("longest_silence_seconds"), int | float):
        found.append(("Longest silence", f"{analysis['longest_silence_seconds']:.1f} s"))
    overlaps = analysis.get("overlaps")
    if isinstance(overlaps, list):
        seconds = sum(float(o.get("seconds") or 0) for o in overlaps if isinstance(o, dict))
        found.append(("Overlapping speech", f"{len(overlaps)} times, {seconds:.1f} s"))
    return found


# txt and md ------------------------------------------------------------------------------------

def render_txt(result: dict[str, Any]) -> Iterator[bytes]:
    """The text; diarized, one line per speaker turn: ``Anna: …``."""
    if diarized(segments_of(result)):
        return encoded(f"{turn.speaker}: {turn.text}\n" for turn in turns(result))
    return encoded(_spaced(turn.text for turn in turns(result)))


def _spaced(texts: Iterable[str]) -> Iterator[str]:
    """The texts on one line, a space between them; nothing at all for none."""
    first = True
    for text in texts:
        yield text if first else f" {text}"
        first = False
    if not first:
        yield "\n"


def render_md(result: dict[str, Any]) -> Iterator[bytes]:
    return encoded(_markdown(result))


def _markdown(result: dict[str, Any]) -> Iterator[str]:
    yield f"# {_escaped(title(result))}\n\n"
    for label, value in facts(result):
        yield f"- **{label}:** {_escaped(value)}\n"
    if speakers := speaker_lines(result):
        yield "- **Speakers:**\n"
        yield from (f"  - {_escaped(line)}\n" for line in speakers)
    for label, value in fact_lines(result):
        yield f"- **{label}:** {_escaped(value)}\n"
    for turn in turns(result):
        who = f" {_escaped(turn.speaker)}:" if turn.speaker else ""
        yield f"\n**[{timecode(turn.start)}]{who}** {_escaped(turn.text)}\n"


# ``_`` only where it could open or close emphasis: SPEAKER_01 stays as it is.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>#|]|(?<!\w)_|_(?!\w))")


def _escaped(text: str) -> str:
    """Said text is never markup: ``*``, ``_``, ``<`` … stand for themselves."""
    return _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(0), text)
