"""Segments cut at sentences from timed words (engine/words.py)."""

from __future__ import annotations

from transcriber.engine.words import segment_of, split_at_sentences


def word(text: str, start: float, end: float) -> dict:
    return {"word": text, "start": start, "end": end, "probability": 0.9}


def test_a_chunk_is_cut_after_each_sentence_and_keeps_its_words() -> None:
    words = [word("Hello.", 0.0, 0.5), word("How", 0.7, 0.9), word("are", 0.9, 1.0), word("you?", 1.0, 1.4),
             word("Fine", 2.0, 2.4)]
    segments = split_at_sentences([{"start": 0.0, "end": 3.0, "text": "Hello. How are you? Fine", "words": words}],
                                  "en")
    assert [s["text"] for s in segments] == ["Hello.", "How are you?", "Fine"]
    assert [(s["start"], s["end"]) for s in segments] == [(0.0, 0.5), (0.7, 1.4), (2.0, 2.4)]
    assert [w for s in segments for w in s["words"]] == words


def test_a_long_sentence_is_cut_before_it_passes_the_limit() -> None:
    words = [word(f"w{n}", n * 1.0, n * 1.0 + 0.5) for n in range(40)]
    segments = split_at_sentences([{"start": 0.0, "end": 40.0, "text": "", "words": words}], "en", max_seconds=15)
    assert all(s["end"] - s["start"] <= 15 for s in segments)
    assert sum(len(s["words"]) for s in segments) == 40


def test_segments_without_words_are_kept_and_unspaced_languages_are_joined_without_spaces() -> None:
    plain = {"start": 0.0, "end": 1.0, "text": "…"}
    assert split_at_sentences([plain], "en") == [plain]
    assert segment_of([word("你好", 0.0, 0.5), word("世界", 0.5, 1.0)], "zh")["text"] == "你好世界"
