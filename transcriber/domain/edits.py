"""Human corrections of a transcript: speaker names and text, kept beside the machine output.

``call.mp3.edits`` holds them; ``.result`` stays what the engine produced.  A
segment is named by its index in ``transcription.segments`` (its ``id``); a
word by its index in the segment's ``words``.  Every correction remembers the
machine text it replaced (``original``), so that after a re-run a correction
is applied only where the engine still said the same thing, and is dropped
(and reported) where it did not.  The corrections also remember the audio they
were made on (size and modification time, as the ``.result`` records them): a
new recording under the same name is another call, whose ``SPEAKER_00`` is
someone else, and keeps none of them.  Pure: validation, application and rebasing
are functions of the documents (tests/unit/test_edits.py).
"""

from __future__ import annotations

import copy
import difflib
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

from transcriber.domain.transcript import audio_of, is_timed, plain_text, segments_of
from transcriber.errors import ErrorCode, TranscriberError

MAX_NAME = 100  # characters in a speaker's name
MAX_SEGMENT_TEXT = 5_000  # characters in one corrected segment
MAX_WORD = 100  # characters in one corrected word
MAX_DROPPED = 1_000  # corrections a re-run dropped that the sidecar keeps listing


class EditsError(TranscriberError):
    """A corrections document the transcript cannot take; ``field`` names what is wrong."""

    code = ErrorCode.INVALID_EDITS

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.field = where


@dataclass(frozen=True)
class SegmentEdit:
    original: str  # the machine text of the segment when the correction was made
    text: str | None = None  # the corrected text of the whole segment
    words: dict[int, str] = field(default_factory=dict)  # word index -> the corrected word


@dataclass(frozen=True)
class Edits:
    version: int = 0  # 0: no corrections were ever saved
    speakers: dict[str, str] = field(default_factory=dict)  # SPEAKER_00 -> "Dispatcher"
    segments: dict[int, SegmentEdit] = field(default_factory=dict)
    updated_at: str | None = None
    dropped: tuple[dict[str, Any], ...] = ()  # what the last re-run could not keep, and why
    audio: dict[str, int] | None = None  # the audio they were made on: audio_of() its result

    @property
    def empty(self) -> bool:
        return not self.speakers and not self.segments


def parse(body: dict[str, Any], result: dict[str, Any]) -> Edits:
    """The corrections of a client's document (``speakers``, ``segments``), checked against
    ``result``; raises :class:`EditsError` naming the first bad field."""
    # What GET /edits answers may be sent back as it is: the server's own fields are ignored.
    unknown = set(body) - {"version", "speakers", "segments", "updated_at", "dropped", "audio", "filename",
                           "task_id"}
    if unknown:
        raise EditsError(sorted(unknown)[0], "not a field of a corrections document")
    segments = segments_of(result)
    known_speakers = {str(s["speaker"]) for s in segments if s.get("speaker")}
    speakers = _mapping(_given(body.get("speakers")), "speakers")
    names: dict[str, str] = {}
    for speaker, name in speakers.items():
        where = f"speakers.{_shown(speaker)}"
        if speaker not in known_speakers:
            raise EditsError(where, "no such speaker in the transcript")
        names[speaker] = _clean(name, where, MAX_NAME, markup=False)
    edits: dict[int, SegmentEdit] = {}
    for key, value in _mapping(_given(body.get("segments")), "segments").items():
        where = f"segments.{_shown(key)}"
        index = _index(key, len(segments), where, "segment")
        edits[index] = _segment_edit(_mapping(value, where), segments[index], where)
    return Edits(speakers=names, segments=edits, audio=audio_of(result))


def based_on(body: dict[str, Any]) -> int:
    """The ``version`` a client's document was made on; raises :class:`EditsError`."""
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise EditsError("version", "the version the corrections were made on (GET /edits says it; "
                                    "0 for the first), a whole number")
    return version


def _segment_edit(value: dict[str, Any], segment: dict[str, Any], where: str) -> SegmentEdit:
    unknown = set(value) - {"text", "words", "original"}
    if unknown:
        raise EditsError(f"{where}.{sorted(unknown)[0]}", "not a field of a segment's correction")
    text = value.get("text")
    if text is not None:
        text = _clean(text, f"{where}.text", MAX_SEGMENT_TEXT, markup=True)
    count = len(segment.get("words") or [])
    words = {
        _index(key, count, f"{where}.words.{_shown(key)}", "word"):
            _clean(word, f"{where}.words.{_shown(key)}", MAX_WORD, markup=True)
        for key, word in _mapping(_given(value.get("words")), f"{where}.words").items()
    }
    if text is None and not words:
        raise EditsError(where, "a correction needs a text or words")
    return SegmentEdit(original=plain_text(segment), text=text, words=words)


def apply(result: dict[str, Any], edits: Edits) -> dict[str, Any]:
    """The result as people should read it: corrected text and words, ``speaker_name`` beside
    every ``speaker`` (segments, words, turns) and ``name`` in ``transcription.speakers``.
    The machine's ``speaker`` ids stay; ``metadata.edits`` says what was applied."""
    if edits.empty or not _same_audio(edits, result):
        return result  # another recording's: a re-run drops them (rebase), and until then none apply
    viewed = dict(result)
    transcription = dict(result.get("transcription") or {})
    segments = [_applied(n, s, edits) for n, s in enumerate(segments_of(result))]
    transcription["segments"] = segments
    if edits.segments:
        transcription["text"] = " ".join(plain_text(s) for s in segments if plain_text(s))
    if edits.speakers:
        transcription["turns"] = [_named(t, edits.speakers) for t in transcription.get("turns") or []]
        transcription["speakers"] = [
            {**s, "name": edits.speakers[s["id"]]} if s.get("id") in edits.speakers else s
            for s in transcription.get("speakers") or []
        ]
    viewed["transcription"] = transcription
    viewed["metadata"] = {**(result.get("metadata") or {}), "edits": {
        "version": edits.version, "updated_at": edits.updated_at,
        "corrected_segments": sorted(n for n in edits.segments if n < len(segments)),
        "speaker_names": dict(edits.speakers),
    }}
    return viewed


def _applied(index: int, segment: dict[str, Any], edits: Edits) -> dict[str, Any]:
    correction = edits.segments.get(index)
    if correction is None or correction.original != plain_text(segment):
        out = dict(segment)
    else:
        out = _corrected(segment, correction)
    out.setdefault("id", index)
    if edits.speakers:
        out = _named(out, edits.speakers)
        if out.get("words"):
            out["words"] = [_named(w, edits.speakers) for w in out["words"]]
    return out


def _corrected(segment: dict[str, Any], correction: SegmentEdit) -> dict[str, Any]:
    """The segment with its correction; its words follow the corrected text (:func:`_realigned`)."""
    out = copy.deepcopy(segment)
    words: list[dict[str, Any]] = out.get("words") or []
    for index, word in correction.words.items():
        if index < len(words):
            words[index]["word"] = word
    if correction.text is None:
        if words:
            out["text"] = " ".join(str(w["word"]).strip() for w in words)
        return out
    out["text"] = correction.text
    if words:
        out["words"] = _realigned(correction.text.split(), words, segment)
    return out


def _realigned(tokens: list[str], words: list[dict[str, Any]], segment: dict[str, Any]) -> list[dict[str, Any]]:
    """The corrected ``tokens`` as words, matched to the machine's ``words`` (difflib, on the
    words without case and punctuation): a word the person kept keeps its time, speaker and
    probability; a run of words replaced by as many takes theirs one for one; any other run
    is spread over the time the words it replaces took (an inserted one, over the pause it
    was put in, or the segment's start or end before or after every word), by length, each
    said by whoever said the machine's word at its place.  A word the person wrote has no
    probability: the model's was for another word."""
    matcher = difflib.SequenceMatcher(None, [_key(str(w.get("word", ""))) for w in words],
                                      [_key(t) for t in tokens], autojunk=False)
    out: list[dict[str, Any]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "delete":
            continue
        if tag == "equal":
            out += [{**word, "word": token} for word, token in zip(words[i1:i2], tokens[j1:j2], strict=True)]
        elif tag == "replace" and i2 - i1 == j2 - j1:
            out += [{**word, "word": token, "probability": None}
                    for word, token in zip(words[i1:i2], tokens[j1:j2], strict=True)]
        elif tag == "replace":
            out += _spread(tokens[j1:j2], words[i1:i2])
        else:  # insert: into the pause between the words around it
            out += _spread(tokens[j1:j2], [_pause(words[i1 - 1] if i1 else None,
                                                  words[i1] if i1 < len(words) else None, segment)])
    return out


def _pause(before: dict[str, Any] | None, after: dict[str, Any] | None, segment: dict[str, Any]) -> dict[str, Any]:
    """The time between two words as a word-like span (the segment's start before the first,
    its end after the last), said by the speaker of the word before it, else after."""
    speaker = (before or {}).get("speaker") or (after or {}).get("speaker")
    starts = [before["end"]] if before is not None and is_timed(before) else []
    ends = [after["start"]] if after is not None and is_timed(after) else []
    if before is None and is_timed(segment):
        starts = [segment["start"]]
    if after is None and is_timed(segment):
        ends = [segment["end"]]
    moments = [float(m) for m in (*starts, *ends)]
    if not moments:
        return {"speaker": speaker}
    return {"speaker": speaker, "start": moments[0], "end": max(moments)}


def _spread(tokens: list[str], words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``tokens`` over the span of ``words`` by length; untimed when none of them is timed."""
    timed = [w for w in words if is_timed(w)]
    total = sum(len(t) + 1 for t in tokens)
    out: list[dict[str, Any]] = []
    done = 0
    for token in tokens:
        share, middle = done / total, (done + (len(token) + 1) / 2) / total
        word: dict[str, Any] = {"word": token}
        if timed:
            start, end = float(timed[0]["start"]), max(float(timed[-1]["end"]), float(timed[0]["start"]))
            length = (end - start) * (len(token) + 1) / total
            word.update(start=round(start + (end - start) * share, 3),
                        end=round(start + (end - start) * share + length, 3), probability=None)
        said_by = words[min(int(middle * len(words)), len(words) - 1)].get("speaker")
        if said_by is not None:
            word["speaker"] = said_by
        out.append(word)
        done += len(token) + 1
    return out


def _key(word: str) -> str:
    """A word as compared when matching a correction to the machine's words."""
    return "".join(c for c in word.casefold() if c.isalnum())


def _named(item: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    speaker = item.get("speaker")
    return {**item, "speaker_name": names[speaker]} if speaker in names else item


def rebase(edits: Edits, result: dict[str, Any]) -> Edits:
    """The corrections that still hold for a new ``result`` (a re-run): speaker names of
    speakers it still has, corrections of segments that still say what they corrected;
    none when the result is of other audio than the corrections were made on.  What goes
    is listed in ``dropped`` with the reason."""
    audio = audio_of(result)
    if not _same_audio(edits, result):
        return replace(edits, speakers={}, segments={}, audio=audio, dropped=_everything(edits))
    segments = segments_of(result)
    speakers = {str(s["speaker"]) for s in segments if s.get("speaker")}
    dropped: list[dict[str, Any]] = []
    names = {}
    for speaker, name in edits.speakers.items():
        if speaker in speakers:
            names[speaker] = name
        else:
            dropped.append({"speaker": speaker, "name": name, "reason": "the new transcript has no such speaker"})
    kept = {}
    for index, correction in edits.segments.items():
        if index >= len(segments):
            dropped.append({"segment": index, "original": correction.original,
                            "reason": "the new transcript has no such segment"})
        elif plain_text(segments[index]) != correction.original:
            dropped.append({"segment": index, "original": correction.original,
                            "reason": "the segment's machine text changed"})
        else:
            kept[index] = correction
    return replace(edits, speakers=names, segments=kept, audio=audio or edits.audio,
                   dropped=tuple(dropped)[:MAX_DROPPED])


def _same_audio(edits: Edits, result: dict[str, Any]) -> bool:
    """False only when both say which recording they are of, and it is not the same one."""
    audio = audio_of(result)
    return edits.audio is None or audio is None or audio == edits.audio


def _everything(edits: Edits) -> tuple[dict[str, Any], ...]:
    reason = "the audio file was replaced by another recording"
    return tuple([{"speaker": s, "name": n, "reason": reason} for s, n in edits.speakers.items()]
                 + [{"segment": i, "original": c.original, "reason": reason} for i, c in edits.segments.items()]
                 )[:MAX_DROPPED]


def to_dict(edits: Edits) -> dict[str, Any]:
    """The sidecar's and the API's document."""
    return {
        "version": edits.version,
        "updated_at": edits.updated_at,
        "speakers": dict(edits.speakers),
        "segments": {str(n): _segment_dict(c) for n, c in sorted(edits.segments.items())},
        "dropped": list(edits.dropped),
        "audio": edits.audio,
    }


def _segment_dict(correction: SegmentEdit) -> dict[str, Any]:
    out: dict[str, Any] = {"original": correction.original}
    if correction.text is not None:
        out["text"] = correction.text
    if correction.words:
        out["words"] = {str(n): w for n, w in sorted(correction.words.items())}
    return out


def from_dict(document: dict[str, Any]) -> Edits:
    """A sidecar written by :func:`to_dict`; raises ValueError/TypeError/KeyError when it is not one."""
    segments = {
        int(key): SegmentEdit(original=str(value["original"]),
                              text=None if value.get("text") is None else str(value["text"]),
                              words={int(n): str(w) for n, w in (value.get("words") or {}).items()})
        for key, value in (document.get("segments") or {}).items()
    }
    version, audio = int(document["version"]), document.get("audio")
    if version < 0:
        raise ValueError("a negative version")
    return Edits(version=version, speakers={str(k): str(v) for k, v in (document.get("speakers") or {}).items()},
                 segments=segments, updated_at=document.get("updated_at"),
                 dropped=tuple(document.get("dropped") or ()), audio=audio_of({"metadata": {"audio_file": audio}}))


def _given(value: object) -> object:
    """An absent or null part of a document is an empty one (an empty list is refused, not read as that)."""
    return {} if value is None else value


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EditsError(where, "must be an object")
    return value


def _index(key: str, count: int, where: str, what: str) -> int:
    if not (key.isascii() and key.isdigit()) or len(key) > 9:
        raise EditsError(where, f"a {what} is named by its index, a number")
    index = int(key)
    if index >= count:
        raise EditsError(where, f"no {what} {index} (the transcript has {count})")
    return index


def _clean(value: object, where: str, limit: int, markup: bool) -> str:
    """Text a person typed: a string, not blank, within ``limit``, without control characters;
    a name (``markup=False``) also without ``<``/``>``: it is shown in headers and voice tags."""
    if not isinstance(value, str):
        raise EditsError(where, "must be a string")
    text = " ".join(value.split())
    if not text:
        raise EditsError(where, "must not be blank")
    if len(text) > limit:
        raise EditsError(where, f"longer than {limit} characters")
    refused = ("Cc", "Cs", "Co", "Cn") if markup else ("Cc", "Cf", "Cs", "Co", "Cn")  # Cf: bidi overrides
    if any(unicodedata.category(c) in refused for c in text):
        raise EditsError(where, "contains control or unassigned characters")
    if not markup and any(c in "<>" for c in text):
        raise EditsError(where, "a name cannot contain < or >")
    return text


def _shown(key: object) -> str:
    """A client's key, safe to quote in an error message."""
    text = str(key)[:40]
    return "".join(c if c.isprintable() else "?" for c in text)
