"""Speaker diarization on bench/dialogues.py's set: DER, speaker count, words, speed.

Each dialogue is transcribed as the daemon does it (``base``, words and
speakers, the engine's own pipeline), after one warm-up file so that model
loading is not counted; ``diarization_x`` is the diarization stage's seconds
over the audio's (``metadata.diarization.seconds``), ``pipeline_x`` the whole
transcription's; ``word_timing_cost`` the whole set without words, with words,
and with speakers, with each dialogue's word error rate in each.
``--sweep`` re-clusters each dialogue at other floors of the one-speaker
silhouette (the embeddings are the same) to show where ``clustering.ONE_VOICE``
sits.
"""

from __future__ import annotations

import time
from pathlib import Path
from statistics import mean
from typing import Any

from bench.dialogues import Dialogue, build, two_speaker
from bench.harness import REPO
from bench.speakers_score import score
from bench.wer import word_error_rate
from transcriber.domain.settings import TranscriptionSettings
from transcriber.engine.asr import WhisperXEngine
from transcriber.engine.audio import load
from transcriber.engine.base import EngineOptions
from transcriber.engine.model_files import speaker_weights
from transcriber.engine.speakers.diarizer import SpeakerDiarizer

SWEEP = (0.15, 0.2, 0.25, 0.3, 0.35)


def run(work: Path, sweep: bool = False) -> dict[str, Any]:
    dialogues = build(work / "dialogues")
    engine = WhisperXEngine(EngineOptions(models_dir=str(REPO / "models"), cache_dir=str(work / "cache")))
    warm = two_speaker(work / "warm")
    engine.transcribe(load(warm.path), _settings(warm), lambda *_: None)
    rows = []
    for dialogue in dialogues:
        started = time.perf_counter()
        transcript = engine.transcribe(load(dialogue.path), _settings(dialogue), lambda *_: None)
        seconds = time.perf_counter() - started
        figures = score(dialogue, transcript.segments, turns=transcript.turns)
        diarized = transcript.stages.get("diarization", {})
        rows.append({"name": dialogue.name, "language": dialogue.language, "audio_seconds": round(dialogue.seconds, 1),
                     **{k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()},
                     "diarization_x": round(diarized.get("seconds", float("nan")) / dialogue.seconds, 4),
                     "pipeline_x": round(seconds / dialogue.seconds, 4), "warnings": list(transcript.warnings)})
        print(_line(rows[-1]), flush=True)
    result: dict[str, Any] = {
        "dialogues": rows,
        "der_mean": round(mean(r["der"] for r in rows), 4), "der_worst": round(max(r["der"] for r in rows), 4),
        "count_right_share": round(mean(r["count_right"] for r in rows), 3),
        "words_right": round(sum(r["words_right"] * r["words"] for r in rows) / sum(r["words"] for r in rows), 4),
        "diarization_x_worst": max(r["diarization_x"] for r in rows),
        "pipeline_x_worst": max(r["pipeline_x"] for r in rows),
    }
    result["word_timing_cost"] = _word_timing_cost(engine, dialogues)
    if sweep:
        result["sweep"] = _sweep(engine, dialogues)
    return result


def _word_timing_cost(engine: WhisperXEngine, dialogues: list[Dialogue]) -> dict[str, Any]:
    """Seconds to transcribe the whole set without words, with words, and with words and speakers,
    and the word error rate of each dialogue in each (words must not change what is recognised)."""
    totals, errors = {}, {}
    for name, extra in (("plain", {}), ("words", {"word_timestamps": True}), ("speakers", {"diarize": True})):
        started, texts = time.perf_counter(), []
        for dialogue in dialogues:
            settings = TranscriptionSettings("base", dialogue.language, 0.0, "int8", "cpu", **extra)
            texts.append(engine.transcribe(load(dialogue.path), settings, lambda *_: None).text)
        totals[name] = round(time.perf_counter() - started, 2)
        errors[name] = [round(word_error_rate(" ".join(turn.text for turn in dialogue.turns), text), 4)
                        for dialogue, text in zip(dialogues, texts, strict=True)]
    audio = sum(d.seconds for d in dialogues)
    print(f"plain / words / speakers: {totals} s for {audio:.0f} s of audio; WER {errors}", flush=True)
    return {**{f"{k}_seconds": v for k, v in totals.items()}, "audio_seconds": round(audio, 1),
            "words_over_plain": round(totals["words"] / totals["plain"], 3),
            "speakers_over_plain": round(totals["speakers"] / totals["plain"], 3),
            "wer": errors,
            "wer_change_worst": max(abs(w - p) for mode in ("words", "speakers")
                                    for w, p in zip(errors[mode], errors["plain"], strict=True))}


def _settings(dialogue: Dialogue) -> TranscriptionSettings:
    return TranscriptionSettings("base", dialogue.language, 0.0, "int8", "cpu", diarize=True)


def _sweep(engine: WhisperXEngine, dialogues: list[Dialogue]) -> dict[str, Any]:
    """DER mean / worst and count share per one-speaker floor; each dialogue's inputs to the diarizer (samples,
    words, the detector's speech) recorded from one transcription and diarized again at each floor."""
    inputs: list[tuple[Dialogue, tuple[Any, ...], dict[str, Any]]] = []
    diarize = SpeakerDiarizer.__call__

    def recording(self: SpeakerDiarizer, *args: Any, **kwargs: Any) -> Any:
        inputs.append((current, args, kwargs))
        return diarize(self, *args, **kwargs)

    SpeakerDiarizer.__call__ = recording  # type: ignore[method-assign]
    try:
        for current in dialogues:
            engine.transcribe(load(current.path), _settings(current), lambda *_: None)
    finally:
        SpeakerDiarizer.__call__ = diarize  # type: ignore[method-assign]
    diarizer = SpeakerDiarizer(speaker_weights(REPO / "models"), "cpu")
    table = {}
    for threshold in SWEEP:
        diarizer.one_voice = threshold
        scores = [score(d, found.segments, turns=found.turns) for d, args, kwargs in inputs
                  for found in [diarizer(*args, **kwargs)]]
        table[str(threshold)] = {"der_mean": round(mean(s["der"] for s in scores), 4),
                                 "der_worst": round(max(s["der"] for s in scores), 4),
                                 "count_right_share": round(mean(s["count_right"] for s in scores), 3),
                                 "words_right": round(mean(s["words_right"] for s in scores), 4)}
        print(f"threshold {threshold}: {table[str(threshold)]}", flush=True)
    return table


def _line(row: dict[str, Any]) -> str:
    return (f"{row['name']:16} DER {row['der']:.3f}  speakers {row['speakers_found']}/{row['speakers_true']}  "
            f"words {row['words_right']:.3f}  diarization {row['diarization_x']:.3f}x  "
            f"pipeline {row['pipeline_x']:.3f}x")
