"""SRT and WebVTT: cues a player can show.

Whole segments as cues made 24-30 s cues with 296-character lines (issue 16).
Now every cue keeps the rules players and subtitle guidelines expect: lines of
at most ``WIDTH`` characters, at most ``MAX_LINES`` of them, on screen at most
``MAX_CUE_MS``, one speaker, within one segment, ending after it starts and no
later than the next cue starts.  A segment with timed words is cut at its
words (a cue runs from its first word's start to its last word's end);
without them its text is cut at spaces and the segment's time shared out by
characters.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from transcriber.domain.transcript import is_timed, segments_of
from transcriber.domain.transcript import plain_text as plain
from transcriber.exports.text import Names, encoded

WIDTH = 42  # characters a line
MAX_LINES = 2
MAX_CUE_MS = 7_000
MAX_PAUSE_MS = 1_500  # a longer pause between two words starts a new cue
MAX_LABEL = 20  # characters of a speaker's name in an SRT label
_BREAK_AFTER = re.compile(r"[.!?…,;:]$")  # where a cut reads best, when there is a choice


@dataclass(frozen=True)
class Token:
    """A word (or a piece of one longer than a line), timed in milliseconds."""

    text: str
    start: int
    end: int
    speaker: str | None


@dataclass(frozen=True)
class Cue:
    start: int
    end: int
    speaker: str | None
    lines: tuple[str, ...]  # the first may be empty: the SRT label alone on it


# The two formats ---------------------------------------------------------------------------------

def render_srt(result: dict[str, Any]) -> Iterator[bytes]:
    return encoded(_srt_blocks(result))


def _srt_blocks(result: dict[str, Any]) -> Iterator[str]:
    for number, cue in enumerate(cues(result, lambda speaker: len(_label(speaker))), 1):
        label = _label(cue.speaker)
        first = (label + cue.lines[0]).rstrip()
        text = "\n".join((first, *cue.lines[1:]))
        yield f"{'' if number == 1 else chr(10)}{number}\n{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}\n{text}\n"


def _label(speaker: str | None) -> str:
    """``[Anna] `` before a cue's first line; a long name shortened, to leave room for the words."""
    if not speaker:
        return ""
    name = speaker if len(speaker) <= MAX_LABEL else speaker[:MAX_LABEL - 1] + "…"
    return f"[{name}] "


def render_vtt(result: dict[str, Any]) -> Iterator[bytes]:
    return encoded(_vtt_blocks(result))


def _vtt_blocks(result: dict[str, Any]) -> Iterator[str]:
    yield "WEBVTT\n"
    for cue in cues(result, lambda _speaker: 0):
        text = "\n".join(_escaped(line) for line in cue.lines)
        voiced = f"<v {_escaped(cue.speaker)}>{text}" if cue.speaker else text
        yield f"\n{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}\n{voiced}\n"


def _escaped(text: str) -> str:
    """WebVTT's cue text: ``&``, ``<`` and ``>`` as entities (a ``<`` would open a tag)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clock(milliseconds: int, decimal_mark: str) -> str:
    hours, milliseconds = divmod(max(milliseconds, 0), 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}{milliseconds:03d}"


# Cues --------------------------------------------------------------------------------------------

def cues(result: dict[str, Any], lead: Callable[[str | None], int]) -> Iterator[Cue]:
    """The cues of ``result`` in time order, no two overlapping; ``lead``: the characters a
    speaker's label takes on a cue's first line."""
    names = Names(result)
    segments = sorted(segments_of(result), key=lambda s: float(s["start"]))
    previous: Cue | None = None
    for segment in segments:
        for cue in _segment_cues(tokens(segment, names), lead):
            if previous is not None:
                # Starts strictly increase, so each cue can end after it starts and
                # no later than the next one starts (speakers talking over each other).
                cue = replace(cue, start=max(cue.start, previous.start + 1))
                yield _ended(previous, cue.start)
            previous = cue
    if previous is not None:
        yield _ended(previous, previous.end)


def _ended(cue: Cue, next_start: int) -> Cue:
    return replace(cue, end=max(min(cue.end, next_start), cue.start + 1))


def _segment_cues(segment_tokens: list[Token], lead: Callable[[str | None], int]) -> Iterator[Cue]:
    """Greedy: words join a cue while it still keeps the rules; a cut goes after a
    punctuation mark in the cue's second half when there is one."""
    run: list[Token] = []
    for token in segment_tokens:
        while run and _layout([*run, token], lead) is None:
            cut = _cut(run) if _joins(run, token) else len(run)
            yield _cue(run[:cut], lead)
            run = run[cut:]
        run.append(token)
    if run:
        yield _cue(run, lead)


def _joins(run: list[Token], token: Token) -> bool:
    """Whether ``token`` could have joined ``run`` but for the lines: then where to cut is a choice."""
    return token.speaker == run[0].speaker and token.start - run[-1].end <= MAX_PAUSE_MS and \
        token.end - run[0].start <= MAX_CUE_MS


def _cut(run: list[Token]) -> int:
    for index in range(len(run) - 1, (len(run) + 1) // 2 - 1, -1):
        if index and _BREAK_AFTER.search(run[index - 1].text):
            return index
    return len(run)


def _cue(run: list[Token], lead: Callable[[str | None], int]) -> Cue:
    lines = _layout(run, lead)
    assert lines is not None  # a run is only ever made of tokens that fit
    start = run[0].start
    end = min(max(token.end for token in run), start + MAX_CUE_MS)
    return Cue(start, end, run[0].speaker, lines)


def _layout(run: list[Token], lead: Callable[[str | None], int]) -> tuple[str, ...] | None:
    """The lines of ``run`` as one cue, balanced; None when it cannot be one cue (two
    speakers, too long a pause or time, too many characters)."""
    if len(run) > 1 and not _joins(run[:-1], run[-1]):
        return None
    texts = [token.text for token in run]
    label = lead(run[0].speaker)
    whole = len(" ".join(texts))
    if label + whole <= WIDTH:
        return (" ".join(texts),)
    # Line one holds texts[:k] after the label, line two the rest; balanced, then the longer
    # line below.  The label alone on line one (k = 0) only when nothing else fits.
    widths = list(itertools.accumulate((len(text) + 1 for text in texts), initial=0))
    fitting = [(max(first, second), first, k) for k in range(1, len(texts))
               if (first := label + widths[k] - 1) <= WIDTH and (second := whole - widths[k]) <= WIDTH]
    if fitting:
        k = min(fitting)[2]
    elif label and whole <= WIDTH:
        k = 0
    else:
        return None
    return (" ".join(texts[:k]), " ".join(texts[k:]))


# Tokens ------------------------------------------------------------------------------------------

def tokens(segment: dict[str, Any], names: Names) -> list[Token]:
    """The segment's words with their times: its timed words when they are its text's words
    (a corrected text with other words has only the segment's time), otherwise its text
    timed by characters; a word longer than a line in pieces."""
    texts = plain(segment).split()
    start, end = _ms(segment.get("start")), _ms(segment.get("end"))
    words = segment.get("words") or []
    times = _word_times(words, start, end) if len(words) == len(texts) else None
    if times is None:
        speaker = names.of(segment)
        timed = [Token(text, s, e, speaker) for text, (s, e) in zip(texts, _shared(texts, start, end), strict=True)]
    else:
        timed = [Token(text, s, e, names.of(word, segment))
                 for text, (s, e), word in zip(texts, times, words, strict=True)]
    return [piece for token in timed for piece in _pieces(token)]


def _word_times(words: list[dict[str, Any]], start: int, end: int) -> list[tuple[int, int]] | None:
    """Each word's (start, end); a word the aligner could not time (a number, a symbol) is
    put between its neighbours.  None when no word has a time."""
    starts = [_ms(w["start"]) if is_timed(w) else None for w in words]
    ends = [_ms(w["end"]) if is_timed(w) else None for w in words]
    if all(s is None for s in starts):
        return None
    following: list[int] = []  # the next known start after each word
    upcoming = end
    for known in reversed(starts):
        following.append(upcoming)
        upcoming = known if known is not None else upcoming
    following.reverse()
    times, previous_end = [], start
    for own_start, own_end, next_start in zip(starts, ends, following, strict=True):
        word_start = own_start if own_start is not None else previous_end
        word_end = max(own_end if own_end is not None else next_start, word_start)
        times.append((word_start, word_end))
        previous_end = word_end
    return times


def _shared(texts: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """The segment's time shared out by characters (a word's space after it included), so
    that the cues cut from it follow one another without a gap."""
    total = sum(len(text) + 1 for text in texts) - 1
    span = max(end - start, 0)
    offsets = list(itertools.accumulate((len(text) + 1 for text in texts), initial=0))
    times = [(start + span * offsets[i] // total, start + span * offsets[i + 1] // total)
             for i in range(len(texts))]
    if times:
        times[-1] = (times[-1][0], end)
    return times


def _pieces(token: Token) -> list[Token]:
    """A word longer than a line, cut into lines, its time shared out."""
    if len(token.text) <= WIDTH:
        return [token]
    parts = [token.text[i:i + WIDTH] for i in range(0, len(token.text), WIDTH)]
    times = _shared(parts, token.start, token.end)
    return [Token(part, s, e, token.speaker) for part, (s, e) in zip(parts, times, strict=True)]


def _ms(seconds: Any) -> int:
    return max(round(float(seconds or 0) * 1000), 0)
