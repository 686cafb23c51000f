"""Memory: peak resident memory of daemon plus worker on a long recording, beside WhisperX alone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil

from bench import audio
from bench.harness import Daemon, mb, whisperx_alone


def run(workdir: Path, minutes: float = 60.0) -> dict[str, Any]:
    recording = audio.recording(workdir / "hour" / "recording.wav", minutes)
    followers = [audio.recording(workdir / "hour" / f"follow-{n}.wav", 5.0) for n in range(1)]
    daemon = Daemon(workdir / "daemon")
    daemon.start()
    worker_after: list[float] = []
    try:
        daemon.wait_warm()
        started = time.perf_counter()
        daemon.drop([recording])
        daemon.wait_results([recording.name], timeout=4 * 3600)
        hour_seconds = time.perf_counter() - started
        worker_after.append(_worker_rss(daemon))
        for number in range(3):  # consecutive files: does the worker grow?
            copy = followers[0].with_name(f"again-{number}.wav")
            copy.write_bytes(followers[0].read_bytes())
            daemon.drop([copy])
            daemon.wait_results([copy.name])
            worker_after.append(_worker_rss(daemon))
    finally:
        peak = daemon.stop()
    alone = whisperx_alone([recording])
    return {"recording_minutes": minutes, "daemon_plus_worker_peak_mb": peak,
            "daemon_seconds": round(hour_seconds, 1), "whisperx_alone_peak_mb": alone["peak_rss_mb"],
            "whisperx_alone_seconds": round(alone["transcribe_seconds"] + alone["load_seconds"], 1),
            "worker_rss_after_each_file_mb": worker_after}


def _worker_rss(daemon: Daemon) -> float:
    assert daemon.process is not None
    children = psutil.Process(daemon.process.pid).children(recursive=True)
    return mb(sum(c.memory_info().rss for c in children if "spawn_main" in " ".join(c.cmdline())))
