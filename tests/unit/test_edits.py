"""Corrections and fragments as functions of the documents (domain/edits.py, domain/fragment.py)."""

from __future__ import annotations

import copy
import itertools
import math

import pytest

from transcriber.domain import edits as corrections
from transcriber.domain.fragment import RangeError, check_range, cut


def _word(word: str, start: float, end: float, speaker: str) -> dict:
    return {"word": word, "start": start, "end": end, "probability": 0.9, "speaker": speaker}


RESULT = {
    "task_id": "t1", "filename": "call.wav", "duration_seconds": 20.0,
    "transcription": {
        "text": "Hello, dispatch here. There is a fire. Where exactly?",
        "language": "en",
        "segments": [
            {"start": 0.0, "end": 2.0, "text": " Hello, dispatch here.", "speaker": "SPEAKER_00",
             "words": [_word("Hello,", 0.0, 0.6, "SPEAKER_00"), _word("dispatch", 0.7, 1.4, "SPEAKER_00"),
                       _word("here.", 1.5, 2.0, "SPEAKER_00")]},
            {"start": 3.0, "end": 6.0, "text": "There is a fire.", "speaker": "SPEAKER_01",
             "words": [_word("There", 3.0, 3.4, "SPEAKER_01"), _word("is", 3.5, 3.7, "SPEAKER_01"),
                       _word("a", 3.8, 3.9, "SPEAKER_01"), _word("fire.", 4.0, 6.0, "SPEAKER_01")]},
            {"start": 8.0, "end": 9.0, "text": "Where exactly?", "speaker": "SPEAKER_00"},
        ],
        "speakers": [{"id": "SPEAKER_00", "talk_seconds": 3.0, "words": 3, "segments": 2},
                     {"id": "SPEAKER_01", "talk_seconds": 3.0, "words": 4, "segments": 1}],
        "turns": [{"start": 0.0, "end": 2.2, "speaker": "SPEAKER_00"},
                  {"start": 2.8, "end": 6.1, "speaker": "SPEAKER_01"},
                  {"start": 7.9, "end": 9.1, "speaker": "SPEAKER_00"}],
    },
    "metadata": {"word_count": 9},
    "analysis": {"speech_seconds": 7.0},
}


def test_names_and_corrections_are_applied_without_touching_the_result() -> None:
    before = copy.deepcopy(RESULT)
    edits = corrections.parse({"version": 0, "speakers": {"SPEAKER_00": "Dispatcher"},
                               "segments": {"1": {"text": "There is a big fire."},
                                            "2": {"words": {}, "text": "Where?"}}},
                              RESULT)
    viewed = corrections.apply(RESULT, edits)
    assert before == RESULT  # the machine output is never rewritten
    segments = viewed["transcription"]["segments"]
    assert [s["text"] for s in segments] == [" Hello, dispatch here.", "There is a big fire.", "Where?"]
    assert segments[0]["speaker"] == "SPEAKER_00" and segments[0]["speaker_name"] == "Dispatcher"
    assert all(w["speaker_name"] == "Dispatcher" for w in segments[0]["words"])
    assert "speaker_name" not in segments[1]
    assert [s.get("name") for s in viewed["transcription"]["speakers"]] == ["Dispatcher", None]
    assert viewed["transcription"]["turns"][0]["speaker_name"] == "Dispatcher"
    assert viewed["transcription"]["text"] == "Hello, dispatch here. There is a big fire. Where?"
    assert viewed["metadata"]["edits"]["corrected_segments"] == [1, 2]
    # Five words where the machine heard four: re-timed over the same span, in order.
    words = segments[1]["words"]
    assert [w["word"] for w in words] == ["There", "is", "a", "big", "fire."]
    assert words[0]["start"] == 3.0 and words[-1]["end"] == pytest.approx(6.0, abs=0.01)
    assert all(a["end"] <= b["start"] + 1e-9 for a, b in itertools.pairwise(words))


def test_a_word_correction_keeps_the_word_timing_and_rebuilds_the_text() -> None:
    edits = corrections.parse({"version": 0, "segments": {"0": {"words": {"1": "despatch"}}}}, RESULT)
    segment = corrections.apply(RESULT, edits)["transcription"]["segments"][0]
    assert segment["text"] == "Hello, despatch here."
    assert segment["words"][1] == {**RESULT["transcription"]["segments"][0]["words"][1], "word": "despatch"}


@pytest.mark.parametrize(("body", "field"), [
    ({"segments": {"7": {"text": "x"}}}, "segments.7"),  # no such segment
    ({"segments": {"-1": {"text": "x"}}}, "segments.-1"),
    ({"segments": {"one": {"text": "x"}}}, "segments.one"),
    ({"segments": {"0": {"words": {"9": "x"}}}}, "segments.0.words.9"),
    ({"segments": {"0": {}}}, "segments.0"),
    ({"segments": {"0": {"text": "x" * 5001}}}, "segments.0.text"),
    ({"segments": {"0": {"text": "   "}}}, "segments.0.text"),
    ({"segments": {"0": {"text": "bell\x07"}}}, "segments.0.text"),
    ({"segments": {"0": {"text": 5}}}, "segments.0.text"),
    ({"segments": {"0": {"colour": "red"}}}, "segments.0.colour"),
    ({"segments": []}, "segments"),
    ({"speakers": {"SPEAKER_09": "Nobody"}}, "speakers.SPEAKER_09"),
    ({"speakers": {"SPEAKER_00": "<script>alert(1)</script>"}}, "speakers.SPEAKER_00"),
    ({"speakers": {"SPEAKER_00": "Dis\x00patcher"}}, "speakers.SPEAKER_00"),
    ({"speakers": {"SPEAKER_00": "Dis\u202epatcher"}}, "speakers.SPEAKER_00"),  # a bidi override
    ({"speakers": {"SPEAKER_00": "x" * 101}}, "speakers.SPEAKER_00"),
    ({"speakers": {"SPEAKER_00": None}}, "speakers.SPEAKER_00"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_document_names_its_field(body: dict, field: str) -> None:
    with pytest.raises(corrections.EditsError) as raised:
        corrections.parse({"version": 0, **body}, RESULT)
    assert raised.value.field == field


def test_what_get_answers_can_be_sent_back_and_round_trips() -> None:
    edits = corrections.parse({"version": 0, "speakers": {"SPEAKER_01": "Caller  O'Brien & Sons"},
                               "segments": {"0": {"words": {"0": "Hallo,"}}}}, RESULT)
    assert edits.speakers == {"SPEAKER_01": "Caller O'Brien & Sons"}  # white space collapsed, & allowed
    document = corrections.to_dict(edits)
    assert corrections.from_dict(document) == edits
    assert corrections.parse(document, RESULT) == edits
    answered = {"filename": "call.wav", "task_id": "t1", **document}  # GET /edits' answer, sent back
    assert corrections.parse(answered, RESULT) == edits


@pytest.mark.parametrize("version", [None, -1, True, 1.5, "2"])
def test_the_version_a_document_was_made_on_is_a_whole_number(version: object) -> None:
    with pytest.raises(corrections.EditsError) as raised:
        corrections.based_on({"version": version})
    assert raised.value.field == "version"


def test_a_rerun_keeps_what_still_holds_and_reports_the_rest() -> None:
    edits = corrections.parse({"version": 0, "speakers": {"SPEAKER_00": "Dispatcher", "SPEAKER_01": "Caller"},
                               "segments": {"0": {"text": "Hello, dispatch speaking."}, "2": {"text": "Where?"}}},
                              RESULT)
    rerun = copy.deepcopy(RESULT)
    rerun["transcription"]["segments"] = rerun["transcription"]["segments"][:2]  # segment 2 gone
    rerun["transcription"]["segments"][1]["speaker"] = "SPEAKER_00"  # and SPEAKER_01 with it
    rebased = corrections.rebase(edits, rerun)
    assert rebased.speakers == {"SPEAKER_00": "Dispatcher"}
    assert set(rebased.segments) == {0}
    assert {(d.get("segment"), d.get("speaker")) for d in rebased.dropped} == {(2, None), (None, "SPEAKER_01")}
    changed = copy.deepcopy(RESULT)
    changed["transcription"]["segments"][0]["text"] = "Hello, this is dispatch."
    assert 0 not in corrections.rebase(edits, changed).segments  # never applied to other words


def test_a_correction_is_not_applied_to_a_segment_that_says_something_else() -> None:
    edits = corrections.parse({"version": 0, "segments": {"1": {"text": "There is a big fire."}}}, RESULT)
    changed = copy.deepcopy(RESULT)
    changed["transcription"]["segments"][1]["text"] = "The house burns."
    assert corrections.apply(changed, edits)["transcription"]["segments"][1]["text"] == "The house burns."


def test_a_fragment_keeps_the_words_said_in_it() -> None:
    part = cut(RESULT, 1.0, 3.65)
    segments = part["transcription"]["segments"]
    assert [s["id"] for s in segments] == [0, 1]
    assert segments[0]["text"] == "dispatch here." and segments[0]["start"] == 1.0  # clipped to the range
    assert segments[1]["text"] == "There is" and segments[1]["end"] == 3.65
    assert part["transcription"]["text"] == "dispatch here. There is"
    assert [t["start"] for t in part["transcription"]["turns"]] == [1.0, 2.8]
    assert part["transcription"]["speakers"][0]["words"] == 2
    assert "analysis" not in part and part["fragment"] == {"from": 1.0, "to": 3.65, "relative": False}
    relative = cut(RESULT, 1.0, 3.65, relative=True)["transcription"]["segments"]
    assert relative[0]["start"] == 0.0
    assert relative[1]["words"][0]["start"] == 2.0


def test_a_fragment_keeps_a_segment_without_words_whole_clipped_to_the_range() -> None:
    segments = cut(RESULT, 8.5, 20.0)["transcription"]["segments"]
    assert segments == [{**RESULT["transcription"]["segments"][2], "start": 8.5, "end": 9.0, "id": 2}]


@pytest.mark.parametrize(("start", "end"), [(-1.0, 5.0), (5.0, 5.0), (6.0, 2.0), (25.0, 30.0), (math.nan, 3.0),
                                            (0.0, math.inf), (math.inf, None)])
def test_bad_ranges_are_refused(start: float, end: float | None) -> None:
    with pytest.raises(RangeError):
        check_range(start, end, 20.0)


def test_a_range_past_the_end_is_cut_at_the_end() -> None:
    assert check_range(12.5, 60.0, 20.0) == (12.5, 20.0)
    assert check_range(None, None, 20.0) == (0.0, 20.0)
    assert check_range(3.0, 9.0, None) == (3.0, 9.0)
    with pytest.raises(RangeError):  # no length known, no end given: a fragment must end somewhere
        check_range(3.0, None, None)


def _with_audio(result: dict, size: int, mtime_ns: int) -> dict:
    return {**result, "metadata": {**result["metadata"], "audio_file": {"size_bytes": size, "mtime_ns": mtime_ns}}}


def test_corrections_remember_their_audio_and_a_new_recording_keeps_none() -> None:
    made_on = _with_audio(RESULT, 1000, 5)
    edits = corrections.parse({"version": 0, "speakers": {"SPEAKER_00": "Dispatcher"},
                               "segments": {"0": {"text": "Hello, dispatch speaking."}}}, made_on)
    assert edits.audio == {"size_bytes": 1000, "mtime_ns": 5}
    assert corrections.from_dict(corrections.to_dict(edits)) == edits
    same = corrections.rebase(edits, made_on)  # a forced re-run of the same recording
    assert same.speakers == {"SPEAKER_00": "Dispatcher"} and set(same.segments) == {0} and not same.dropped
    replaced = corrections.rebase(edits, _with_audio(RESULT, 2000, 9))  # the same words, another call
    assert replaced.speakers == {} and replaced.segments == {}
    assert replaced.audio == {"size_bytes": 2000, "mtime_ns": 9}
    assert {(d.get("segment"), d.get("speaker"), d["reason"]) for d in replaced.dropped} == {
        (0, None, "the audio file was replaced by another recording"),
        (None, "SPEAKER_00", "the audio file was replaced by another recording")}
    older = corrections.Edits(version=3, speakers={"SPEAKER_00": "Dispatcher"})  # saved before audio was kept
    assert corrections.rebase(older, _with_audio(RESULT, 2000, 9)).speakers == {"SPEAKER_00": "Dispatcher"}


def test_a_corrected_text_of_another_length_keeps_who_said_each_word() -> None:
    mixed = copy.deepcopy(RESULT)  # a segment whose last two words the other speaker said
    for word in mixed["transcription"]["segments"][1]["words"][2:]:
        word["speaker"] = "SPEAKER_00"
    edits = corrections.parse({"version": 0, "segments": {"1": {"text": "There is a big fire here."}}}, mixed)
    words = corrections.apply(mixed, edits)["transcription"]["segments"][1]["words"]
    assert [w["word"] for w in words] == ["There", "is", "a", "big", "fire", "here."]
    assert [w["speaker"] for w in words] == ["SPEAKER_01", "SPEAKER_01", "SPEAKER_00", "SPEAKER_00", "SPEAKER_00",
                                             "SPEAKER_00"]
    assert words[0]["start"] == 3.0 and words[-1]["end"] == 6.0
    assert all(a["end"] <= b["start"] + 1e-9 for a, b in itertools.pairwise(words))


def test_a_corrected_text_of_as_many_words_keeps_each_word_as_it_was() -> None:
    untimed = copy.deepcopy(RESULT)  # an aligner left "a" without times
    words = untimed["transcription"]["segments"][1]["words"]
    words[2] = {"word": "a", "speaker": "SPEAKER_00"}
    edits = corrections.parse({"version": 0, "segments": {"1": {"text": "Where is the fire?"}}}, untimed)
    corrected = corrections.apply(untimed, edits)["transcription"]["segments"][1]["words"]
    assert [w["word"] for w in corrected] == ["Where", "is", "the", "fire?"]
    assert [(w.get("start"), w.get("end"), w["speaker"]) for w in corrected] == [
        (3.0, 3.4, "SPEAKER_01"), (3.5, 3.7, "SPEAKER_01"), (None, None, "SPEAKER_00"), (4.0, 6.0, "SPEAKER_01")]


def test_corrections_of_another_recording_are_never_applied() -> None:
    edits = corrections.parse({"version": 0, "speakers": {"SPEAKER_00": "Dispatcher"}}, _with_audio(RESULT, 1000, 5))
    assert corrections.apply(_with_audio(RESULT, 1000, 5), edits)["transcription"]["speakers"][0]["name"] == \
        "Dispatcher"
    other = _with_audio(RESULT, 2000, 9)  # copied over the name, not yet transcribed again (or .edits unreadable then)
    assert corrections.apply(other, edits) is other


def test_words_added_before_the_first_and_after_the_last_take_the_segment_s_edges() -> None:
    padded = copy.deepcopy(RESULT)
    padded["transcription"]["segments"][1].update(start=2.5, end=6.5)
    edits = corrections.parse({"version": 0, "segments": {"1": {"text": "Look, there is a fire. Hurry!"}}}, padded)
    words = corrections.apply(padded, edits)["transcription"]["segments"][1]["words"]
    assert [w["word"] for w in words] == ["Look,", "there", "is", "a", "fire.", "Hurry!"]
    assert (words[0]["start"], words[0]["end"]) == (2.5, 3.0) and (words[-1]["start"], words[-1]["end"]) == (6.0, 6.5)
    assert words[0]["speaker"] == words[-1]["speaker"] == "SPEAKER_01"
    assert words[0]["probability"] is None and words[1]["probability"] == 0.9  # a kept word keeps the model's
