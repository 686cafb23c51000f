"""Latency: one 5 s clip into a warm daemon, each phase until its .result."""

from __future__ import annotations

import json
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench import audio
from bench.harness import Daemon, median

PHASES = ("detection", "stability", "queue", "transcription", "writing")


def run(workdir: Path, rounds: int = 7) -> dict[str, Any]:
    clips = audio.clips(workdir / "clips", rounds, 5.0)
    daemon = Daemon(workdir / "daemon")
    daemon.start()
    measured: dict[str, list[float]] = {phase: [] for phase in PHASES}
    try:
        daemon.wait_warm()
        time.sleep(1.0)
        for clip in clips:
            dropped = time.time()
            daemon.drop([clip])
            daemon.wait_results([clip.name])
            result_path = daemon.shared / f"{clip.name}.result"
            timeline = json.loads(result_path.read_text())["metadata"]["timeline"]
            moments = [dropped] + [_epoch(timeline[k]) for k in ("detected", "queued", "started", "finished")]
            moments.append(result_path.stat().st_mtime)
            for phase, (begin, end) in zip(PHASES, pairwise(moments), strict=True):
                measured[phase].append(max(end - begin, 0.0))
            time.sleep(0.5)
    finally:
        daemon.stop()
    medians = {phase: median(values) for phase, values in measured.items()}
    overhead = sum(v for k, v in medians.items() if k not in ("stability", "transcription"))
    return {"rounds": rounds, "median_seconds": medians, "all_seconds": measured,
            "overhead_without_stability_and_transcription_seconds": round(overhead, 4)}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
