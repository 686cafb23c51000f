"""Exports: the time and memory of rendering an hour's diarized transcript in every format.

A synthetic 60-minute result (3 speakers, ~9,000 timed words in ~900 segments,
turns, speakers, call facts) is rendered in each format of the registry:

- ``seconds``: the best of 3 renderings, the body streamed and dropped (as a response sends it);
- ``peak_kb``: Python's peak allocation while streaming it (``tracemalloc``, peak minus the
  baseline), beside ``body_kb``; ``whole_peak_kb`` the same for ``render_bytes``, which
  holds the body (the files of ``output.write_formats``);
- ``rss_peak_mb``: how far the resident memory of a fresh process rises while it renders
  (sampled every millisecond), once a one-minute rendering of the format has loaded its
  modules and templates: it counts what tracemalloc cannot see (lxml's trees for docx).

Target (issue 16): every format under 1 s, the streamed peak well under twice the body.
"""

from __future__ import annotations

import gc
import itertools
import json
import multiprocessing
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.harness import RssRise
from transcriber.domain.transcript import speaker_summary
from transcriber.exports import EXPORTS, render_bytes, stream

VOCABULARY = ("добрый день вас беспокоит служба поддержки мы получили заявку о неисправности оборудования "
              "уточните пожалуйста когда возникла проблема hello yes okay номер договора двенадцать "
              "тридцать четыре спасибо понятно сейчас проверю минуточку подождите")
WORDS = VOCABULARY.split()
SPEAKERS = ("SPEAKER_00", "SPEAKER_01", "SPEAKER_02")


def synthetic_result(minutes: float = 60.0, seed: int = 16) -> dict[str, Any]:
    """A diarized ``.result`` of ``minutes``: ten timed words a segment, ~150 words a minute."""
    rng = random.Random(seed)
    segments: list[dict[str, Any]] = []
    moment, speaker = 0.5, SPEAKERS[0]
    while moment < minutes * 60 - 5:
        if segments and rng.random() < 0.4:
            speaker = rng.choice([s for s in SPEAKERS if s != speaker])
        words = []
        for _ in range(10):
            length = rng.uniform(0.15, 0.35)
            words.append({"word": rng.choice(WORDS), "start": round(moment, 3), "end": round(moment + length, 3),
                          "probability": round(rng.uniform(0.5, 1.0), 3), "speaker": speaker})
            moment += length + rng.uniform(0.02, 0.08)
        words[-1]["word"] += "."
        segments.append({"id": len(segments), "start": words[0]["start"], "end": words[-1]["end"],
                         "text": " " + " ".join(w["word"] for w in words), "speaker": speaker, "words": words})
        moment += rng.choice((0.2, 0.3, 0.5, 2.5))
    duration = round(minutes * 60, 3)
    turns = _turns(segments)
    return {
        "task_id": "bench-exports", "filename": "hour.wav", "processing_start": "2026-01-01T10:00:00.000Z",
        "processing_end": "2026-01-01T10:06:00.000Z", "duration_seconds": duration,
        "transcription": {"text": " ".join(s["text"].strip() for s in segments), "language": "ru",
                          "segments": segments, "speakers": speaker_summary(segments), "turns": turns},
        "metadata": {"duration_seconds": duration},
        "analysis": _analysis(segments, turns, duration),
    }


def _turns(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for segment in segments:
        if turns and turns[-1]["speaker"] == segment["speaker"]:
            turns[-1]["end"] = segment["end"]
        else:
            turns.append({"start": segment["start"], "end": segment["end"], "speaker": segment["speaker"]})
    return turns


def _analysis(segments: list[dict[str, Any]], turns: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    """The call facts' shape (domain/analysis.py), from the synthetic segments."""
    gaps = [(a["end"], b["start"]) for a, b in itertools.pairwise(segments) if b["start"] - a["end"] >= 2]
    talk = {s["id"]: s["talk_seconds"] for s in speaker_summary(segments)}
    return {
        "duration_seconds": duration, "speech_seconds": round(sum(s["end"] - s["start"] for s in segments), 3),
        "silence_marks": [{"start": s, "end": e, "seconds": round(e - s, 3)} for s, e in gaps],
        "longest_silence_seconds": max((round(e - s, 3) for s, e in gaps), default=0.0), "min_silence_seconds": 2.0,
        "speakers": [{"id": speaker, "talk_seconds": seconds, "turns": sum(t["speaker"] == speaker for t in turns),
                      "words": 10 * sum(s["speaker"] == speaker for s in segments),
                      "words_per_minute": round(10 * sum(s["speaker"] == speaker for s in segments) * 60 / seconds, 1)}
                     for speaker, seconds in talk.items()],
        "overlaps": [],
    }


def run(workdir: Path, minutes: float = 60.0) -> dict[str, Any]:
    result = synthetic_result(minutes)
    segments = result["transcription"]["segments"]
    figures: dict[str, Any] = {
        "minutes": minutes, "segments": len(segments), "words": sum(len(s["words"]) for s in segments),
        "result_json_kb": round(len(json.dumps(result, ensure_ascii=False, indent=2).encode()) / 1024, 1),
        "formats": {fmt: _measure(result, fmt) | {"rss_peak_mb": _rss_peak_mb(minutes, fmt)} for fmt in EXPORTS},
    }
    figures["result_json_dumps_seconds"] = _best_of(3, lambda: json.dumps(result, ensure_ascii=False, indent=2))
    _print_table(figures)
    return figures


def _measure(result: dict[str, Any], fmt: str) -> dict[str, Any]:
    seconds = _best_of(3, lambda: _drain(result, fmt))
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        size = _drain(result, fmt)
        peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        whole = render_bytes(result, fmt)
        whole_peak = tracemalloc.get_traced_memory()[1] - baseline
        del whole
    finally:
        tracemalloc.stop()
    return {"seconds": round(seconds, 3), "body_kb": round(size / 1024, 1), "peak_kb": round(peak / 1024, 1),
            "peak_over_body": round(peak / size, 2), "whole_peak_kb": round(whole_peak / 1024, 1)}


def _drain(result: dict[str, Any], fmt: str) -> int:
    return sum(len(chunk) for chunk in stream(result, fmt))


def _best_of(times: int, work: Any) -> float:
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def _rss_peak_mb(minutes: float, fmt: str) -> float:
    """How far rendering ``fmt`` raises a fresh process's resident high-water mark."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return float(pool.apply(_rss_child, (minutes, fmt)))


def _rss_child(minutes: float, fmt: str) -> float:
    result = synthetic_result(minutes)
    _drain(synthetic_result(1), fmt)  # modules and templates loaded: only this rendering is counted
    gc.collect()
    with RssRise() as memory:
        _drain(result, fmt)
    return round(memory.rise / 2**20, 1)


def _print_table(figures: dict[str, Any]) -> None:
    print(f"\n{figures['minutes']:g} minutes, {figures['segments']} segments, {figures['words']} words; "
          f"result JSON {figures['result_json_kb']} KB (json.dumps {figures['result_json_dumps_seconds']} s)")
    print(f"{'format':<6} {'seconds':>8} {'body KB':>9} {'peak KB':>9} {'peak/body':>9} {'whole KB':>9} "
          f"{'RSS+ MB':>8}")
    for fmt, row in figures["formats"].items():
        print(f"{fmt:<6} {row['seconds']:>8} {row['body_kb']:>9} {row['peak_kb']:>9} {row['peak_over_body']:>9} "
              f"{row['whole_peak_kb']:>9} {row['rss_peak_mb']:>8}")
