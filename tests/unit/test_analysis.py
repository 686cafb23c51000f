"""The call facts of a transcript (domain/analysis.py), as functions of what the engine found."""

from __future__ import annotations

from typing import Any

import pytest

from transcriber.domain.analysis import call_facts, merged, speech_of


def segment(start: float, end: float, text: str, speaker: str | None = None, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"start": start, "end": end, "text": text, **extra}
    if speaker is not None:
        found["speaker"] = speaker
    return found


def turn(start: float, end: float, speaker: str) -> dict[str, Any]:
    return {"start": start, "end": end, "speaker": speaker}


def test_silence_marks_at_the_start_in_the_middle_and_at_the_end() -> None:
    facts = call_facts([segment(3.0, 12.0, "hello there")], [], [(3.0, 5.0), (8.5, 12.0)], 20.0, 2.0)
    assert facts["silence_marks"] == [{"start": 0.0, "end": 3.0, "seconds": 3.0},
                                      {"start": 5.0, "end": 8.5, "seconds": 3.5},
                                      {"start": 12.0, "end": 20.0, "seconds": 8.0}]
    assert facts["speech_seconds"] == 5.5
    assert facts["longest_silence_seconds"] == 8.0
    assert (facts["duration_seconds"], facts["min_silence_seconds"]) == (20.0, 2.0)
    assert (facts["speakers"], facts["overlaps"], facts["overlap_seconds"]) == ([], [], 0.0)  # not diarized


@pytest.mark.parametrize(("gap", "marked"), [(1.999, False), (2.0, True), (2.001, True)])
def test_a_silence_as_long_as_the_threshold_is_marked_and_a_shorter_one_is_not(gap: float, marked: bool) -> None:
    speech = [(0.0, 1.0), (1.0 + gap, 5.0)]
    facts = call_facts([segment(0.0, 5.0, "a b")], [], speech, 5.0, 2.0)
    assert facts["silence_marks"] == ([{"start": 1.0, "end": round(1.0 + gap, 3), "seconds": gap}] if marked else [])
    assert facts["longest_silence_seconds"] == gap  # whatever the threshold


def test_an_empty_transcript_is_one_silence_as_long_as_the_file() -> None:
    facts = call_facts([], [], [], 42.5, 2.0)
    assert facts["silence_marks"] == [{"start": 0.0, "end": 42.5, "seconds": 42.5}]
    assert (facts["speech_seconds"], facts["longest_silence_seconds"], facts["speakers"]) == (0.0, 42.5, [])
    assert call_facts([], [], [], 1.5, 2.0)["silence_marks"] == []  # shorter than a mark


def test_speech_past_the_files_measured_end_is_cut_at_it() -> None:
    facts = call_facts([segment(0.0, 10.2, "x")], [], [(0.0, 10.2)], 10.0, 2.0)
    assert (facts["speech_seconds"], facts["silence_marks"]) == (10.0, [])


def test_without_the_detectors_speech_the_turns_then_the_words_then_the_segments_say_where_it_is() -> None:
    words = [{"word": "a", "start": 1.0, "end": 1.4}, {"word": "b", "start": 1.6, "end": 2.0},
             {"word": "c", "start": 4.0, "end": 4.5}]
    timed = [segment(1.0, 4.5, "a b c", words=words), segment(6.0, 7.0, "d")]
    assert speech_of(timed, [], []) == [(1.0, 2.0), (4.0, 4.5), (6.0, 7.0)]  # pauses under 0.3 s joined
    turns = [turn(0.5, 2.5, "SPEAKER_00"), turn(3.0, 5.0, "SPEAKER_01")]
    assert speech_of(timed, turns, []) == [(0.5, 2.5), (3.0, 5.0)]
    assert speech_of(timed, turns, [(0.9, 7.1)]) == [(0.9, 7.1)]


def test_each_speakers_talk_time_turns_words_and_pace() -> None:
    segments = [segment(0.0, 30.0, " ".join(["w"] * 60), "SPEAKER_00"),
                segment(30.0, 40.0, "yes indeed", "SPEAKER_01"),
                segment(40.0, 70.0, " ".join(["w"] * 30), "SPEAKER_00")]
    turns = [turn(0.0, 30.0, "SPEAKER_00"), turn(30.0, 40.0, "SPEAKER_01"), turn(40.0, 70.0, "SPEAKER_00")]
    facts = call_facts(segments, turns, [(0.0, 70.0)], 70.0, 2.0)
    assert facts["speakers"] == [
        {"id": "SPEAKER_00", "talk_seconds": 60.0, "turns": 2, "words": 90, "words_per_minute": 90.0},
        {"id": "SPEAKER_01", "talk_seconds": 10.0, "turns": 1, "words": 2, "words_per_minute": 12.0},
    ]
    assert facts["overlaps"] == []


def test_timed_words_count_for_their_own_speaker_and_a_speaker_without_talk_has_no_pace() -> None:
    words = [{"word": "hi", "start": 0.0, "end": 0.5, "speaker": "SPEAKER_00"},
             {"word": "hey", "start": 0.6, "end": 1.0, "speaker": "SPEAKER_01"}]
    segments = [segment(0.0, 1.0, "hi hey", "SPEAKER_00", words=words), segment(1.0, 1.0, "uh", "SPEAKER_02")]
    facts = call_facts(segments, [], [], 1.0, 2.0)  # no turns: the speakers' segments are their time
    assert [(s["id"], s["words"], s["talk_seconds"], s["words_per_minute"]) for s in facts["speakers"]] == [
        ("SPEAKER_00", 1, 1.0, 60.0), ("SPEAKER_02", 1, 0.0, 0.0), ("SPEAKER_01", 1, 0.0, 0.0)]  # words' last


def test_overlapping_turns_are_listed_with_both_speakers() -> None:
    # pyannote's turns can overlap: B answers before A has finished, A backchannels inside B's turn
    turns = [turn(0.0, 5.0, "SPEAKER_00"), turn(4.0, 9.0, "SPEAKER_01"), turn(6.0, 6.5, "SPEAKER_00"),
             turn(9.0, 12.0, "SPEAKER_00")]
    segments = [segment(0.0, 5.0, "a", "SPEAKER_00"), segment(4.0, 9.0, "b", "SPEAKER_01"),
                segment(9.0, 12.0, "c", "SPEAKER_00")]
    facts = call_facts(segments, turns, [(0.0, 12.0)], 12.0, 2.0)
    assert facts["overlaps"] == [
        {"start": 4.0, "end": 5.0, "seconds": 1.0, "speakers": ["SPEAKER_00", "SPEAKER_01"]},
        {"start": 6.0, "end": 6.5, "seconds": 0.5, "speakers": ["SPEAKER_00", "SPEAKER_01"]},
    ]
    assert facts["overlap_seconds"] == 1.5
    assert [(s["id"], s["talk_seconds"], s["turns"]) for s in facts["speakers"]] == [
        ("SPEAKER_00", 8.5, 2), ("SPEAKER_01", 5.0, 1)]  # by start: 0-5 | 4-9 | 6-6.5 and 9-12


def test_three_speakers_at_once_count_their_overlap_once() -> None:
    turns = [turn(0.0, 4.0, "A"), turn(1.0, 3.0, "B"), turn(2.0, 5.0, "C")]
    facts = call_facts([], turns, [], 5.0, 2.0)
    assert [(o["start"], o["end"], o["speakers"]) for o in facts["overlaps"]] == [
        (1.0, 3.0, ["A", "B"]), (2.0, 4.0, ["A", "C"]), (2.0, 3.0, ["B", "C"])]
    assert facts["overlap_seconds"] == 3.0  # 1 to 4: two or more speak


def test_one_speakers_own_turns_that_touch_or_overlap_are_one_stretch() -> None:
    turns = [turn(0.0, 2.0, "A"), turn(1.5, 3.0, "A"), turn(3.0, 4.0, "A")]
    facts = call_facts([], turns, [], 4.0, 2.0)
    assert facts["speakers"] == [{"id": "A", "talk_seconds": 4.0, "turns": 1, "words": 0, "words_per_minute": 0.0}]
    assert facts["overlaps"] == []


def test_spans_are_merged_sorted_and_joined_across_short_gaps() -> None:
    assert merged([(5.0, 6.0), (0.0, 1.0), (0.5, 2.0), (3.0, 3.0)]) == [(0.0, 2.0), (5.0, 6.0)]
    assert merged([(0.0, 1.0), (1.2, 2.0), (2.5, 3.0)], join=0.3) == [(0.0, 2.0), (2.5, 3.0)]
