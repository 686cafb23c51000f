"""The speaker pipeline's parts, without the network: regions and windows, clustering, assignment."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest

from transcriber.domain.transcript import speaker_summary
from transcriber.engine.speakers import clustering
from transcriber.engine.speakers.assign import assign, merged_turns, speaker_id, split_at_speakers, turns_of
from transcriber.engine.speakers.clustering import cluster
from transcriber.engine.speakers.embeddings import (
    MIN_WINDOW,
    STEP,
    WINDOW,
    Window,
    regions_of,
    speech_regions,
    windows_of,
)


def word(text: str, start: float, end: float, **extra: object) -> dict[str, object]:
    return {"word": text, "start": start, "end": end, "probability": 0.9, **extra}


def voices(rng: np.random.Generator, centres: np.ndarray, counts: list[int], noise: float = 0.35) -> np.ndarray:
    """Embeddings around each centre (L2-normalised), ``counts[i]`` of speaker i, in turns."""
    rows = [centres[i] + noise * rng.standard_normal((n, centres.shape[1])) / np.sqrt(centres.shape[1])
            for i, n in enumerate(counts)]
    stacked = np.concatenate(rows)
    return (stacked / np.linalg.norm(stacked, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def centres() -> np.ndarray:
    rng = np.random.default_rng(7)
    raw = rng.standard_normal((4, 192))
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def test_regions_follow_the_words_and_split_at_pauses() -> None:
    segments = [{"start": 0.0, "end": 5.0, "text": "a b c", "words": [
        word("a", 0.2, 0.6), word("b", 0.7, 1.0), word("c", 2.0, 2.4)]},
        {"start": 5.0, "end": 6.0, "text": "no words"}]
    assert speech_regions(segments) == [(0.2, 1.0), (2.0, 2.4), (5.0, 6.0)]


def test_windows_cover_long_regions_and_give_short_ones_a_window_of_their_own() -> None:
    windows = windows_of([(0.0, 4.0), (10.0, 10.1)], duration=20.0)
    long = [w for w in windows if w.region == 0]
    assert all(w.end - w.start == pytest.approx(WINDOW) for w in long)
    assert long[0].start == 0.0 and long[-1].end == pytest.approx(4.0)
    assert all(b.start - a.start <= STEP + 1e-9 for a, b in itertools.pairwise(long))
    [short] = [w for w in windows if w.region == 1]
    assert short.end - short.start == pytest.approx(MIN_WINDOW) and short.middle == pytest.approx(10.05)


def test_two_voices_are_two_clusters_and_hints_bound_the_count(centres: np.ndarray) -> None:
    embeddings = voices(np.random.default_rng(1), centres[:2], [40, 30])
    labels = cluster(embeddings)
    assert list(labels[:40]) == [0] * 40 and list(labels[40:]) == [1] * 30
    assert set(cluster(embeddings, max_speakers=1)) == {0}
    assert len(set(cluster(embeddings, min_speakers=3))) == 3
    assert list(cluster(embeddings[:1])) == [0] and cluster(embeddings[:0]).size == 0


def test_one_voice_stays_one_speaker(centres: np.ndarray) -> None:
    assert set(cluster(voices(np.random.default_rng(2), centres[:1], [80]))) == {0}


def test_hints_past_the_usual_count_and_on_one_voice_are_honoured(centres: np.ndarray) -> None:
    one = voices(np.random.default_rng(4), centres[:1], [80])
    for wanted in (2, 3, 12):  # one voice cut by force: the cuts' silhouettes can all be negative
        assert len(set(cluster(one, min_speakers=wanted))) >= wanted
        assert len(set(cluster(one, min_speakers=wanted, max_speakers=wanted))) == wanted


def test_windows_all_alike_are_one_speaker(centres: np.ndarray) -> None:
    same = np.repeat(centres[:1].astype(np.float32), 50, axis=0)  # the same audio over and over
    assert set(cluster(same)) == {0}
    assert set(cluster(np.concatenate([same, np.zeros((3, 192), np.float32)]))) == {0}  # and silent ones


def test_a_cluster_of_a_few_windows_joins_its_nearest(centres: np.ndarray) -> None:
    embeddings = voices(np.random.default_rng(3), centres[:3], [50, 45, 2])  # 2 of 97 windows: a cough
    labels = cluster(embeddings)
    assert len(set(labels)) == 2
    assert len(set(cluster(embeddings, min_speakers=3))) == 3  # unless the hints ask for it


def test_long_recordings_cluster_in_two_stages_within_bounded_memory(centres: np.ndarray) -> None:
    counts = [1000, 900, 1100, 1000, 800]  # 4,800 windows (an hour), in turns of three speakers
    rng = np.random.default_rng(4)
    embeddings = np.concatenate([voices(rng, centres[i % 3:i % 3 + 1], [n]) for i, n in enumerate(counts)])
    truth = np.concatenate([[i % 3] * n for i, n in enumerate(counts)])
    tracemalloc.start()
    labels = cluster(embeddings)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(set(labels)) == 3
    assert all(len(set(labels[truth == t])) == 1 for t in range(3))
    direct = embeddings.shape[0] ** 2 // 2 * 8  # all pairs' distances in float64: 92 MB
    assert peak < direct / 3, peak
    assert embeddings.shape[0] > clustering.DIRECT_LIMIT


def test_words_take_their_windows_speaker_and_segments_split_where_it_changes() -> None:
    segments = [{"start": 0.0, "end": 4.0, "text": "hello there. yes", "words": [
        word("hello", 0.0, 0.5), word("there.", 0.6, 1.2), word("yes", 3.0, 3.4)]}]
    windows = [Window(0.0, 1.2, 0), Window(3.0, 3.4, 1)]
    split = assign(segments, windows, np.array([0, 1]), "en")
    assert [(s["speaker"], s["text"], s["start"], s["end"]) for s in split] == [
        ("SPEAKER_00", "hello there.", 0.0, 1.2), ("SPEAKER_01", "yes", 3.0, 3.4)]
    assert [w["speaker"] for s in split for w in s["words"]] == ["SPEAKER_00", "SPEAKER_00", "SPEAKER_01"]


def test_speakers_are_named_in_order_of_first_appearance() -> None:
    segments = [{"start": 0.0, "end": 1.0, "text": "a", "words": [word("a", 0.0, 1.0)]},
                {"start": 2.0, "end": 3.0, "text": "b", "words": [word("b", 2.0, 3.0)]}]
    split = assign(segments, [Window(0.0, 1.0, 0), Window(2.0, 3.0, 1)], np.array([1, 0]), "en")
    assert [s["speaker"] for s in split] == ["SPEAKER_00", "SPEAKER_01"]


def test_a_flicker_inside_a_sentence_is_smoothed_away() -> None:
    words = [word(w, n * 0.4, n * 0.4 + 0.3) for n, w in enumerate(["one", "two", "three", "four", "five", "six"])]
    segments = [{"start": 0.0, "end": 2.3, "text": "one two three four five six", "words": words}]
    windows = [Window(0.0, 0.9, 0), Window(0.8, 1.1, 0), Window(1.2, 2.3, 0)]
    split = assign(segments, windows, np.array([0, 1, 0]), "en")
    assert [s["speaker"] for s in split] == ["SPEAKER_00"] and split[0]["text"] == segments[0]["text"]


def test_split_at_speakers_keeps_unspaced_languages_together() -> None:
    words = [word("你好", 0.0, 0.5, speaker="SPEAKER_00"), word("再见", 0.6, 1.0, speaker="SPEAKER_01"),
             word("吧", 1.0, 1.2, speaker="SPEAKER_01")]
    split = split_at_speakers([{"start": 0.0, "end": 1.2, "text": "你好再见吧", "words": words}], "zh")
    assert [(s["speaker"], s["text"]) for s in split] == [("SPEAKER_00", "你好"), ("SPEAKER_01", "再见吧")]


def test_the_speaker_summary_counts_talk_words_and_segments() -> None:
    segments = [{"start": 0.0, "end": 2.0, "text": "a b", "speaker": "SPEAKER_00", "words": [{}, {}]},
                {"start": 2.5, "end": 3.0, "text": "c", "speaker": "SPEAKER_01", "words": [{}]},
                {"start": 3.0, "end": 4.25, "text": "d", "speaker": "SPEAKER_00", "words": [{}]}]
    assert speaker_summary(segments) == [
        {"id": "SPEAKER_00", "talk_seconds": 3.25, "words": 3, "segments": 2},
        {"id": "SPEAKER_01", "talk_seconds": 0.5, "words": 1, "segments": 1}]
    assert speaker_summary([{"start": 0.0, "end": 1.0, "text": "x"}]) == []


def test_the_detectors_speech_is_cut_between_sentences() -> None:
    segments = [{"start": 0.2, "end": 2.0, "text": "One."}, {"start": 2.4, "end": 4.0, "text": "Two."},
                {"start": 6.0, "end": 7.0, "text": "Three."}]
    assert regions_of([(0.1, 4.1), (5.9, 7.2)], segments) == [(0.1, 2.2), (2.2, 4.1), (5.9, 7.2)]


def test_turns_change_halfway_between_windows_and_join_across_breaths() -> None:
    regions = [(0.0, 3.0), (3.3, 5.0)]
    windows = [Window(0.0, 1.5, 0), Window(0.75, 2.25, 0), Window(1.5, 3.0, 0), Window(3.3, 5.0, 1)]
    turns = turns_of(regions, windows, np.array([0, 0, 1, 1]))
    assert turns == [{"start": 0.0, "end": 1.875, "label": 0}, {"start": 1.875, "end": 3.0, "label": 1},
                     {"start": 3.3, "end": 5.0, "label": 1}]
    for turn in turns:
        turn["speaker"] = speaker_id(turn.pop("label"))
    assert merged_turns(turns) == [{"start": 0.0, "end": 1.875, "speaker": "SPEAKER_00"},
                                   {"start": 1.875, "end": 5.0, "speaker": "SPEAKER_01"}]


def test_words_take_the_speaker_of_the_turn_they_are_in() -> None:
    windows = [Window(0.0, 1.5, 0), Window(1.5, 3.0, 0)]
    turns = [{"start": 0.0, "end": 1.875, "label": 0}, {"start": 1.875, "end": 3.0, "label": 1}]
    segments = [{"start": 0.0, "end": 3.0, "text": "a b. c", "words": [
        word("a", 0.1, 0.5), word("b.", 0.6, 1.7), word("c", 2.0, 2.9)]}]
    split = assign(segments, windows, np.array([0, 1]), "en", turns)
    assert [(s["speaker"], s["text"]) for s in split] == [("SPEAKER_00", "a b."), ("SPEAKER_01", "c")]
    assert [t["speaker"] for t in turns] == ["SPEAKER_00", "SPEAKER_01"]
