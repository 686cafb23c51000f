"""The synthetic diarization dialogues (bench/dialogues.py) and their scorer (bench/speakers_score.py)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from bench.dialogues import speaker_at, two_speaker
from bench.speakers_score import score


def test_the_short_dialogue_has_exact_turns_and_scores_perfectly_against_itself(tmp_path: Path) -> None:
    dialogue = two_speaker(tmp_path)
    rows = [line.split() for line in dialogue.rttm.read_text().splitlines()]
    assert [row[0] for row in rows] == ["SPEAKER"] * len(dialogue.turns)
    assert all(len(row) == 10 and row[1] == dialogue.name for row in rows)
    assert [row[7] for row in rows] == [turn.speaker for turn in dialogue.turns]
    for row, turn in zip(rows, dialogue.turns, strict=True):
        assert abs(float(row[3]) - turn.start) < 0.002 and abs(float(row[3]) + float(row[4]) - turn.end) < 0.002
    turns = dialogue.turns
    assert dialogue.speakers == 2 and 4 <= len(turns) <= 6
    assert all(turn.end - turn.start > 0.3 for turn in turns)
    assert all(before.end < after.start for before, after in pairwise(turns))
    assert turns[0].start <= 0.1 and abs(dialogue.seconds - turns[-1].end) <= 0.1
    assert speaker_at(dialogue, (turns[1].start + turns[1].end) / 2) == turns[1].speaker
    assert speaker_at(dialogue, (turns[0].end + turns[1].start) / 2) is None

    segments = []
    for turn in turns:
        span = {"start": turn.start, "end": turn.end, "speaker": f"SPEAKER_{turn.speaker}"}
        segments.append({**span, "text": turn.text, "words": [{**span, "word": turn.text}]})
    result = score(dialogue, segments)
    assert result["der"] == 0.0 and result["words_right"] == 1.0 and result["count_right"]
    assert two_speaker(tmp_path) == dialogue  # built once, then reused
