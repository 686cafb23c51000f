"""The export registry and its renderers (issue 16, point 1), each output parsed back with a
real parser: ``srt``, ``webvtt-py``, python-docx.

Subtitles must keep the rules players need, whatever the transcript: lines of at most
42 characters, at most 2 of them, cues of at most 7 s that never overlap, end after they
start and never span two speakers, and every word of the transcript in them, in order.
"""

from __future__ import annotations

import gc
import html
import io
import itertools
import json
import random
import re
import tracemalloc
import zipfile
from dataclasses import dataclass
from typing import Any

import docx
import pytest
import srt
import webvtt

from bench.exports import synthetic_result
from transcriber.domain.edits import Edits
from transcriber.domain.transcript import MalformedResult
from transcriber.exports import EXPORTS, FILE_FORMATS, render_bytes, shown, stream

# Cyrillic words, a long recording's worth of them: the 82 s call that rendered as 3 cues.
RUSSIAN_TEXT = ("добрый день вас беспокоит служба поддержки клиентов мы получили вашу заявку о неисправности "
                "оборудования и хотели бы уточнить некоторые подробности когда именно возникла проблема и что "
                "вы делали перед этим пожалуйста опишите всё как можно подробнее чтобы мы могли быстрее помочь")
RUSSIAN = RUSSIAN_TEXT.split()


# Building results --------------------------------------------------------------------------------

def timed(start: float, texts: list[str], speakers: list[str | None] | str | None = None,
          step: float = 0.4, gap: float = 0.1) -> dict[str, Any]:
    """A segment of ``texts`` said one after another, each word ``step`` long; ``speakers``: one for
    the segment, or one per word (the segment takes the first)."""
    per_word = speakers if isinstance(speakers, list) else [speakers] * len(texts)
    words, moment = [], start
    for text, speaker in zip(texts, per_word, strict=True):
        word = {"word": text, "start": round(moment, 3), "end": round(moment + step, 3), "probability": 0.9}
        if speaker:
            word["speaker"] = speaker
        words.append(word)
        moment += step + gap
    segment: dict[str, Any] = {"start": words[0]["start"], "end": words[-1]["end"], "text": " ".join(texts),
                               "words": words}
    if per_word[0]:
        segment["speaker"] = per_word[0]
    return segment


def result_of(segments: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    text = " ".join(s["text"] for s in segments)
    return {"filename": "call.wav", "transcription": {"text": text, "language": "ru", "segments": segments},
            **extra}


def diarized_with_words() -> dict[str, Any]:
    long_turn = [f"word{n}" for n in range(40)]  # 40 words in 20 s: several cues
    return result_of([
        timed(0.0, ["Hello", "there,", "how", "are", "you?"], "SPEAKER_00"),
        # the speaker changes inside a segment: the cue must be cut there
        timed(3.0, ["Fine,", "thanks.", "And", "<you>", "&", "yours?"],
              ["SPEAKER_01", "SPEAKER_01", "SPEAKER_00", "SPEAKER_00", "SPEAKER_00", "SPEAKER_00"]),
        timed(7.0, long_turn, "SPEAKER_01"),
        # two speakers talking over each other: B starts before A's segment ends
        timed(27.0, ["overlapping", "speech", "here"], "SPEAKER_00", step=1.0),
        timed(28.0, ["at", "once"], "SPEAKER_01"),
    ])


def undiarized_without_words() -> dict[str, Any]:
    sentence = "this is a rather long sentence that goes on and on without any word timings at all"
    return result_of([
        {"start": 0.0, "end": 12.0, "text": f" {sentence}, and then it goes on even more than that."},
        {"start": 12.0, "end": 13.0, "text": " Short."},
        {"start": 13.5, "end": 40.0, "text": " " + " ".join([sentence] * 3)},
    ])


def long_russian(with_words: bool) -> dict[str, Any]:
    """About 80 s in 3 segments of 296 characters each (as the call that made 3 cues of 24-30 s)."""
    segments, start = [], 0.0
    for number in range(3):
        texts, length = [], -1
        for word in RUSSIAN[number:] + RUSSIAN:
            if length + 1 + len(word) > 296:
                break
            texts.append(word)
            length += 1 + len(word)
        texts[-1] += "." + "!" * (296 - length - 1)  # exactly 296 characters
        seconds = 24.0 + 3 * number
        if with_words:
            step = seconds / len(texts)
            segment = timed(start, texts, "SPEAKER_00" if number != 1 else "SPEAKER_01", step=step * 0.8,
                            gap=step * 0.2)
        else:
            segment = {"start": start, "end": start + seconds, "text": " ".join(texts)}
        assert len(segment["text"]) == 296
        segments.append(segment)
        start += seconds + 1.0
    return result_of(segments)


def zero_length_words() -> dict[str, Any]:
    first = timed(1.0, ["one", "two", "three"], "SPEAKER_00")
    first["words"][1]["end"] = first["words"][1]["start"]  # a word timed 0 s long
    only = {"start": 3.0, "end": 3.0, "text": "yes", "speaker": "SPEAKER_01",
            "words": [{"word": "yes", "start": 3.0, "end": 3.0, "speaker": "SPEAKER_01"}]}
    return result_of([first, only, timed(3.0, ["same", "moment"], "SPEAKER_00")])


def long_word() -> dict[str, Any]:
    word = "Donaudampfschifffahrtsgesellschaftskapitänswitwenrentenversicherung"  # 68 characters
    return result_of([timed(0.0, ["the", word, "pays"], "SPEAKER_00", step=1.0),
                      {"start": 5.0, "end": 9.0, "text": f"again {word} without times"},
                      timed(10.0, [word], "SPEAKER_01")])  # a line's worth after the label: a line of its own


CASES = {
    "diarized with words": diarized_with_words,
    "undiarized without words": undiarized_without_words,
    "long russian without words": lambda: long_russian(False),
    "long russian with words": lambda: long_russian(True),
    "zero-length words": zero_length_words,
    "a word longer than a line": long_word,
}


# Reading subtitles back --------------------------------------------------------------------------

@dataclass(frozen=True)
class Seen:
    start: int  # ms
    end: int
    speaker: str | None
    lines: list[str]  # as a viewer sees them (SRT: the label included)
    words: list[str]  # the words said, without the label


def read_srt(body: str) -> list[Seen]:
    seen = []
    for subtitle in srt.parse(body):
        lines = subtitle.content.split("\n")
        label = re.match(r"\[([^\]]+)\] ?", lines[0])
        said = " ".join(lines)[label.end():] if label else " ".join(lines)
        seen.append(Seen(_ms(subtitle.start.total_seconds()), _ms(subtitle.end.total_seconds()),
                         label.group(1) if label else None, lines, said.split()))
    return seen


def read_vtt(body: str) -> list[Seen]:
    seen = []
    for caption in webvtt.from_string(body):
        lines = [html.unescape(re.sub(r"^<v [^>]*>", "", line)) for line in caption.lines]
        speaker = html.unescape(caption.voice) if caption.voice else None
        seen.append(Seen(_clock(caption.start), _clock(caption.end), speaker, lines, " ".join(lines).split()))
    return seen


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _clock(text: str) -> int:
    hours, minutes, seconds = text.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


READERS = {"srt": read_srt, "vtt": read_vtt}


def said(result: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Every word of the transcript with who said it, in order."""
    out = []
    for segment in result["transcription"]["segments"]:
        words = segment.get("words")
        texts = segment["text"].split()
        speakers = ([w.get("speaker", segment.get("speaker")) for w in words] if words and len(words) == len(texts)
                    else [segment.get("speaker")] * len(texts))
        out.extend(zip(texts, speakers, strict=True))
    return out


def assert_player_rules(cues: list[Seen]) -> None:
    assert cues
    for cue, following in zip(cues, [*cues[1:], None], strict=True):
        assert 1 <= len(cue.lines) <= 2, cue
        assert all(len(line) <= 42 for line in cue.lines), cue
        assert cue.end - cue.start >= 1, cue
        assert cue.end - cue.start <= 7000, cue
        if following is not None:
            assert cue.end <= following.start, (cue, following)


# Subtitles ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["srt", "vtt"])
@pytest.mark.parametrize("case", list(CASES))
def test_subtitles_keep_the_players_rules_and_every_word(case: str, fmt: str) -> None:
    result = CASES[case]()
    cues = READERS[fmt](render_bytes(result, fmt).decode("utf-8"))
    assert_player_rules(cues)
    shown = [(word, cue.speaker) for cue in cues for word in cue.words]
    if case == "a word longer than a line":  # cut into lines: the same characters, in order
        assert "".join(w for w, _ in shown) == "".join(w for w, _ in said(result))
        assert any(len(w) == 42 for w, _ in shown)
    else:  # each word once, in order, under its own speaker's label
        assert shown == said(result)


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_a_long_russian_recording_becomes_many_short_cues(fmt: str) -> None:
    cues = READERS[fmt](render_bytes(long_russian(False), fmt).decode("utf-8"))
    assert len(cues) >= 3 * 296 // 84  # two full lines a cue at most
    assert max(len(line) for cue in cues for line in cue.lines) <= 42
    # without word times each segment's time is shared out by characters: the cues tile it
    first_segment = [cue for cue in cues if cue.end <= 24_000]
    assert first_segment[0].start == 0 and first_segment[-1].end == 24_000
    assert all(a.end == b.start for a, b in itertools.pairwise(first_segment))


def test_cues_cut_at_words_take_their_times_from_the_words() -> None:
    result = diarized_with_words()
    words = [w for s in result["transcription"]["segments"] for w in s["words"]]
    cues = read_srt(render_bytes(result, "srt").decode())
    position = 0
    for cue, following in zip(cues, [*cues[1:], None], strict=True):
        first, last = words[position], words[position + len(cue.words) - 1]
        assert cue.start == max(_ms(first["start"]), 0) or cue.start == cues[cues.index(cue) - 1].start + 1
        assert cue.end == min(_ms(last["end"]), following.start if following else 10**9), cue
        position += len(cue.words)
    assert [cue.words for cue in cues[:3]] == [["Hello", "there,", "how", "are", "you?"], ["Fine,", "thanks."],
                                               ["And", "<you>", "&", "yours?"]]


def test_a_pause_or_a_comma_is_where_a_long_turn_is_cut() -> None:
    texts = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine,", "ten", "eleven", "twelve",
             "thirteen", "fourteen", "fifteen"]  # 84 characters: 42 more than a line
    cues = read_vtt(render_bytes(result_of([timed(0.0, texts, step=0.2)]), "vtt").decode())
    assert [cue.words[-1] for cue in cues] == ["nine,", "fifteen"], cues
    paused = timed(0.0, ["before"]), timed(3.0, ["after"])
    joined = {**paused[0], "end": paused[1]["end"], "text": "before after",
              "words": paused[0]["words"] + paused[1]["words"]}
    assert [c.words for c in read_vtt(render_bytes(result_of([joined]), "vtt").decode())] == [["before"], ["after"]]


def test_whole_small_subtitles() -> None:
    result = result_of([timed(0.0, ["Hi", "<b>", "&", "bye."], "SPEAKER_00"),
                        {"start": 2.0, "end": 2.0, "text": "Yes.", "speaker": "SPEAKER_01"}])
    result["transcription"]["speakers"] = [{"id": "SPEAKER_00", "name": "Анна"}]
    assert render_bytes(result, "srt").decode() == (
        "1\n00:00:00,000 --> 00:00:01,900\n[Анна] Hi <b> & bye.\n\n"
        "2\n00:00:02,000 --> 00:00:02,001\n[SPEAKER_01] Yes.\n")
    assert render_bytes(result, "vtt").decode() == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.900\n<v Анна>Hi &lt;b&gt; &amp; bye.\n\n"
        "00:00:02.000 --> 00:00:02.001\n<v SPEAKER_01>Yes.\n")


def test_lines_are_balanced_and_the_srt_label_counts() -> None:
    texts = ["aaaa", "bbbb", "cccc", "dddd", "eeee", "ffff", "gggg", "hhhh", "iiii", "jjjj"]  # 49 characters
    segment = {"start": 0.0, "end": 3.0, "text": " ".join(texts), "speaker": "SPEAKER_00"}
    vtt = read_vtt(render_bytes(result_of([segment]), "vtt").decode())
    assert vtt[0].lines == ["aaaa bbbb cccc dddd eeee", "ffff gggg hhhh iiii jjjj"]
    srt_cue = read_srt(render_bytes(result_of([segment]), "srt").decode())[0]
    assert srt_cue.lines == ["[SPEAKER_00] aaaa bbbb cccc dddd", "eeee ffff gggg hhhh iiii jjjj"]


def test_a_corrected_text_with_other_words_keeps_its_words_and_the_segments_time() -> None:
    segment = timed(1.0, ["machine", "words"], "SPEAKER_00")
    segment["text"] = "what a person typed instead"  # words no longer the text's: times by characters
    segment["speaker_name"] = "Boris"
    cues = read_vtt(render_bytes(result_of([segment]), "vtt").decode())
    assert [c.words for c in cues] == [["what", "a", "person", "typed", "instead"]]
    assert (cues[0].start, cues[0].end, cues[0].speaker) == (1000, _ms(segment["end"]), "Boris")


def test_a_word_the_aligner_could_not_time_goes_between_its_neighbours() -> None:
    segment = timed(0.0, ["costs", "100", "dollars"])
    del segment["words"][1]["start"], segment["words"][1]["end"]
    cues = read_srt(render_bytes(result_of([segment]), "srt").decode())
    assert [c.words for c in cues] == [["costs", "100", "dollars"]]
    assert (cues[0].start, cues[0].end) == (0, _ms(segment["words"][2]["end"]))


def test_names_given_by_people_label_the_cues() -> None:
    result = diarized_with_words()
    result["transcription"]["speakers"] = [{"id": "SPEAKER_01", "name": "A & <B>"}]
    for segment in result["transcription"]["segments"]:
        for word in segment["words"]:
            if word.get("speaker") == "SPEAKER_00":
                word["speaker_name"] = "Клиент"
    speakers = {cue.speaker for cue in read_vtt(render_bytes(result, "vtt").decode())}
    assert speakers == {"Клиент", "A & <B>"}
    assert "<v A &amp; &lt;B&gt;>" in render_bytes(result, "vtt").decode()


# Text, table, Markdown ---------------------------------------------------------------------------

ANALYSIS = {"duration_seconds": 83.0, "speech_seconds": 70.4, "longest_silence_seconds": 4.25,
            "min_silence_seconds": 2.0, "silence_marks": [{"start": 10.0, "end": 14.25, "seconds": 4.25}],
            "speakers": [{"id": "SPEAKER_00", "talk_seconds": 40.0, "turns": 2, "words": 90,
                          "words_per_minute": 135.0}],
            "overlaps": [{"start": 20.0, "end": 21.5, "seconds": 1.5, "speakers": ["SPEAKER_00", "SPEAKER_01"]}]}


def call() -> dict[str, Any]:
    return {
        "filename": "звонок.mp3", "processing_end": "2026-03-01T10:20:30.000Z", "duration_seconds": 83.0,
        "transcription": {
            "text": "…", "language": "ru",
            "segments": [
                {"start": 0.0, "end": 5.0, "text": " Алло, *слушаю*.", "speaker": "SPEAKER_00"},
                {"start": 5.5, "end": 8.0, "text": " Да.", "speaker": "SPEAKER_00"},
                {"start": 83.0 - 20, "end": 83.0, "text": " Здравствуйте!", "speaker": "SPEAKER_01",
                 "speaker_name": "Оператор"},
            ],
            "speakers": [{"id": "SPEAKER_00", "talk_seconds": 40.0, "words": 3, "segments": 2, "name": "Анна"},
                         {"id": "SPEAKER_01", "talk_seconds": 20.0, "words": 1, "segments": 1}],
            "turns": [{"start": 0.0, "end": 8.0, "speaker": "SPEAKER_00"},
                      {"start": 63.0, "end": 83.0, "speaker": "SPEAKER_01"}],
        },
        "analysis": ANALYSIS,
    }


def test_markdown_has_the_header_then_one_paragraph_per_turn() -> None:
    assert render_bytes(call(), "md").decode() == (
        "# звонок.mp3\n\n"
        "- **File:** звонок.mp3\n"
        "- **Date:** 2026-03-01 10:20:30 UTC\n"
        "- **Duration:** 00:01:23\n"
        "- **Language:** ru\n"
        "- **Speakers:**\n"
        "  - Анна: 00:00:40 (2 turns, 135 words per minute)\n"
        "  - SPEAKER_01: 00:00:20\n"
        "- **Speech:** 00:01:10\n"
        "- **Silences of 2 s or more:** 1\n"
        "- **Longest silence:** 4.2 s\n"
        "- **Overlapping speech:** 1 times, 1.5 s\n"
        "\n**[00:00:00] Анна:** Алло, \\*слушаю\\*. Да.\n"
        "\n**[00:01:03] Оператор:** Здравствуйте!\n")


def test_markdown_of_a_fragment_without_speakers() -> None:
    result = {"filename": "a.wav", "fragment": {"from": 12.0, "to": 60.0, "relative": False},
              "transcription": {"segments": [{"start": 12.0, "end": 14.0, "text": " Hello"},
                                             {"start": 75.5, "end": 76.0, "text": " bye"}]}}
    assert render_bytes(result, "md").decode() == (
        "# a.wav\n\n- **File:** a.wav\n- **Fragment:** 00:00:12–00:01:00\n"
        "\n**[00:00:12]** Hello\n\n**[00:01:15]** bye\n")


def test_text_and_table_show_the_names_people_gave() -> None:
    assert render_bytes(call(), "txt").decode() == "Анна: Алло, *слушаю*. Да.\nОператор: Здравствуйте!\n"
    assert render_bytes(call(), "tsv").decode() == (
        "start\tend\tspeaker\ttext\n0\t5000\tАнна\tАлло, *слушаю*.\n5500\t8000\tАнна\tДа.\n"
        "63000\t83000\tОператор\tЗдравствуйте!\n")
    plain = result_of([{"start": 0.0, "end": 1.0, "text": " привет"}, {"start": 1.0, "end": 2.0, "text": "мир "}])
    assert render_bytes(plain, "txt").decode() == "привет мир\n"
    assert render_bytes(result_of([]), "txt") == b""


# docx ---------------------------------------------------------------------------------------------

def opened(result: dict[str, Any]) -> Any:
    return docx.Document(io.BytesIO(render_bytes(result, "docx")))


def test_docx_has_the_header_and_each_turn_with_its_time_and_the_speaker_in_bold() -> None:
    document = opened(call())
    paragraphs = [p for p in document.paragraphs if p.text]
    assert (paragraphs[0].style.name, paragraphs[0].text) == ("Title", "звонок.mp3")
    texts = [p.text for p in paragraphs]
    assert "Duration: 00:01:23" in texts and "Date: 2026-03-01 10:20:30 UTC" in texts and "Language: ru" in texts
    assert "Анна: 00:00:40 (2 turns, 135 words per minute)" in texts and "SPEAKER_01: 00:00:20" in texts
    assert "Longest silence: 4.2 s" in texts and "Overlapping speech: 1 times, 1.5 s" in texts
    turns = [p for p in paragraphs if re.match(r"\[\d\d:\d\d:\d\d\] ", p.text)]
    assert [p.text for p in turns] == ["[00:00:00] Анна: Алло, *слушаю*. Да.", "[00:01:03] Оператор: Здравствуйте!"]
    for paragraph, name in zip(turns, ["Анна", "Оператор"], strict=True):
        bold = [run.text for run in paragraph.runs if run.bold]
        assert bold == [name], bold
    assert document.core_properties.title == "звонок.mp3"


def test_docx_without_speakers_has_a_paragraph_per_segment() -> None:
    result = {"filename": "a.wav", "fragment": {"from": 12.0, "to": 60.0, "relative": True},
              "transcription": {"segments": [{"start": 0.0, "end": 2.0, "text": " Привет \x07мир"},
                                             {"start": 3725.0, "end": 3726.0, "text": " пока"}]}}
    texts = [p.text for p in opened(result).paragraphs]
    assert "[00:00:00] Привет мир" in texts and "[01:02:05] пока" in texts  # a control character dropped
    assert "Fragment: 00:00:12–00:01:00 (times from its start)" in texts
    assert not [run for p in opened(result).paragraphs if p.text.startswith("[") for run in p.runs if run.bold]


def test_a_long_docx_streams_in_chunks() -> None:
    rng = random.Random(16)  # text that does not compress to nothing
    segments = [{"start": n * 2.0, "end": n * 2.0 + 1.5, "speaker": f"SPEAKER_0{n % 2}",
                 "text": " ".join("".join(rng.choices("абвгдежзийклмнопрстуфхцчшщыэюя", k=7)) for _ in range(25))}
                for n in range(1500)]
    chunks = list(stream(result_of(segments), "docx"))
    assert len(chunks) > 1 and all(0 < len(chunk) <= 64 * 1024 for chunk in chunks)
    paragraphs = docx.Document(io.BytesIO(b"".join(chunks))).paragraphs
    assert paragraphs[-1].text == f"[00:49:58] SPEAKER_01: {segments[-1]['text']}"


def test_docx_text_is_escaped_and_the_package_is_python_docx_s_own() -> None:
    # A name edited into the .result by hand: markup, a control character, a line break.
    result = result_of([{"start": 1.0, "end": 2.0, "speaker": "SPEAKER_00", "speaker_name": 'A & "B"\x0b\r\nC',
                         "text": " <w:p>if a < b && c > d</w:p> \x0b"}])
    body = render_bytes(result, "docx")
    paragraphs = [p for p in docx.Document(io.BytesIO(body)).paragraphs if p.text.startswith("[")]
    assert [p.text for p in paragraphs] == ['[00:00:01] A & "B"  C: <w:p>if a < b && c > d</w:p>']
    assert [run.text for run in paragraphs[0].runs if run.bold] == ['A & "B"  C']
    with zipfile.ZipFile(io.BytesIO(body)) as package:
        assert package.testzip() is None
        names = package.namelist()
        assert names[0] == "[Content_Types].xml" and "word/document.xml" in names and "word/styles.xml" in names
        # No data descriptors: the sizes are in each local header, as Word's own files have them.
        assert not any(info.flag_bits & 0x08 for info in package.infolist())


def test_a_malformed_result_is_refused_before_the_first_byte() -> None:
    good = result_of([timed(0.0, ["да"])])
    for broken, where in (
        ({"start": "soon", "end": 1.0, "text": "да"}, "segments[0] has no start"),
        ({"start": 0.0, "end": float("inf"), "text": "да"}, "segments[0] has no start"),
        ({"start": 0.0, "end": 1.0, "text": ["да"]}, "must be strings"),
        ({"start": 0.0, "end": 1.0, "text": "да", "words": [{"word": "да", "start": "0"}]}, "words[0] has a time"),
        ({"start": 0.0, "end": 1.0, "text": "да", "words": "да"}, "words is not a list"),
    ):
        document = {"filename": "call.wav", "transcription": {"segments": [broken]}}
        for fmt in ("txt", "srt", "docx"):
            with pytest.raises(MalformedResult, match=re.escape(where)):
                shown(document, Edits(), fmt)
    as_it_is = {"transcription": {"segments": [{"start": 0.0, "end": 1.0, "text": ["да"]}]}}
    assert shown(as_it_is, Edits(), "json") == (as_it_is, None)  # json as the file holds it
    assert render_bytes(shown(good, Edits(), "srt")[0], "srt")


# json, the registry, streaming ---------------------------------------------------------------------

def test_json_is_the_result_document_streamed() -> None:
    result = synthetic_result(minutes=10)
    chunks = list(stream(result, "json"))
    assert len(chunks) > 1 and all(isinstance(chunk, bytes) for chunk in chunks)
    body = b"".join(chunks)
    assert json.loads(body) == result
    assert body == json.dumps(result, ensure_ascii=False, indent=2).encode("utf-8")


def test_the_registry() -> None:
    assert tuple(EXPORTS) == FILE_FORMATS == ("json", "txt", "srt", "vtt", "tsv", "md", "docx")
    assert all(name == export.name for name, export in EXPORTS.items())
    assert EXPORTS["srt"].media_type == "application/x-subrip; charset=utf-8"
    assert EXPORTS["docx"].media_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    with pytest.raises(KeyError):
        stream(call(), "pdf")


@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt", "tsv", "md", "json"])
def test_a_long_body_is_never_held_whole_while_it_streams(fmt: str) -> None:
    result = synthetic_result(minutes=60)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        size = chunks = 0
        for chunk in stream(result, fmt):
            size, chunks = size + len(chunk), chunks + 1
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert chunks > 1
    assert peak < size, (peak, size)  # holding the body, or its lines, would cost at least its size
