"""Memory: peak resident memory of daemon plus worker on a long recording, beside WhisperX alone.

The figures the target is about (docs/PERFORMANCE.md, memory):

- ``daemon_plus_worker_peak_mb``: the whole process tree (daemon, worker,
  ffmpeg) at its highest, sampled every 50 ms, from the hour's drop to the
  last follower's result;
- ``idle_worker_rss_mb``: the worker's resident memory ``IDLE_SETTLE_SECONDS``
  after the last of three 5-minute files that follow the hour, with nothing
  to do (what a container holds between files).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench import audio
from bench.harness import Daemon, mb, whisperx_alone

IDLE_SETTLE_SECONDS = 5.0


def run(workdir: Path, minutes: float = 60.0, alone: bool = True) -> dict[str, Any]:
    recording = audio.recording(workdir / "hour" / "recording.wav", minutes)
    followers = [audio.recording(workdir / "hour" / f"follow-{n}.wav", 5.0) for n in range(1)]
    daemon = Daemon(workdir / "daemon")
    daemon.start()
    worker_after: list[float] = []
    try:
        daemon.wait_warm()
        time.sleep(IDLE_SETTLE_SECONDS)
        warm_worker = _worker_rss(daemon)
        started = time.perf_counter()
        daemon.drop([recording])
        daemon.wait_results([recording.name], timeout=4 * 3600)
        hour_seconds = time.perf_counter() - started
        assert daemon.memory is not None
        hour_peak = mb(daemon.memory.peak)
        hour_at_peak = dict(daemon.memory.at_peak)
        worker_after.append(_worker_rss(daemon))
        for number in range(3):  # consecutive files: does the worker grow?
            copy = followers[0].with_name(f"again-{number}.wav")
            copy.write_bytes(followers[0].read_bytes())
            daemon.drop([copy])
            daemon.wait_results([copy.name])
            worker_after.append(_worker_rss(daemon))
        time.sleep(IDLE_SETTLE_SECONDS)
        idle_worker = _worker_rss(daemon)
        daemon_own = daemon.own_rss_mb()
    finally:
        peak = daemon.stop()
    figures: dict[str, Any] = {
        "recording_minutes": minutes, "daemon_plus_worker_peak_mb": peak,
        "daemon_plus_worker_peak_on_the_hour_mb": hour_peak,
        "hour_peak_by_process_mb": hour_at_peak, "daemon_seconds": round(hour_seconds, 1),
        "worker_rss_warm_before_mb": warm_worker, "worker_rss_after_each_file_mb": worker_after,
        "idle_worker_rss_mb": idle_worker, "daemon_own_rss_mb": daemon_own,
        "worker_restarts": _restarts(daemon),
    }
    if alone:
        contender = whisperx_alone([recording])
        figures["whisperx_alone_peak_mb"] = contender["peak_rss_mb"]
        figures["whisperx_alone_seconds"] = round(contender["transcribe_seconds"] + contender["load_seconds"], 1)
    return figures


def _worker_rss(daemon: Daemon) -> float:
    assert daemon.process is not None
    children = psutil.Process(daemon.process.pid).children(recursive=True)
    return mb(sum(c.memory_info().rss for c in children if "spawn_main" in " ".join(c.cmdline())))


def _restarts(daemon: Daemon) -> int:
    """Workers started after the first, as the daemon logged them."""
    return max(daemon.log.read_text(errors="replace").count("Started worker-1 ") - 1, 0)


def run_speakers(workdir: Path, minutes: float = 60.0) -> dict[str, Any]:
    """One recording of ``minutes`` with words and speakers (``diarize``) into a warm daemon: its peak."""
    recording = audio.recording(workdir / "speakers" / "recording.wav", minutes)
    daemon = Daemon(workdir / "daemon", {"whisperx": {"diarize": True}})
    daemon.start()
    try:
        daemon.wait_warm()
        started = time.perf_counter()
        stages = Stages(daemon.shared / f"{recording.name}.in_progress")
        daemon.drop([recording])
        daemon.wait_results([recording.name], timeout=6 * 3600)
        seconds = time.perf_counter() - started
        stages.done.set()
        result = json.loads((daemon.shared / f"{recording.name}.result").read_text())
    finally:
        peak = daemon.stop()
    assert daemon.memory is not None
    return {"recording_minutes": minutes, "daemon_plus_worker_peak_mb": peak,
            "peak_by_process_mb": daemon.memory.at_peak, "peak_by_stage_mb": stages.peaks(daemon.memory.samples),
            "daemon_seconds": round(seconds, 1),
            "pipeline_x": round(seconds / (minutes * 60), 4), "diarization": result["metadata"].get("diarization"),
            "warnings": result["metadata"].get("warnings", []), "segments": len(result["transcription"]["segments"])}


class Stages(threading.Thread):
    """The job's stage (its ``.in_progress`` sidecar) every 0.2 s, to say which stage the memory peaked in."""

    def __init__(self, sidecar: Path) -> None:
        super().__init__(daemon=True)
        self.sidecar = sidecar
        self.seen: list[tuple[float, str]] = []
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.wait(0.2):
            try:
                stage = json.loads(self.sidecar.read_text())["progress_info"]["stage"]
            except (OSError, ValueError, KeyError):
                continue
            if not self.seen or self.seen[-1][1] != stage:
                self.seen.append((time.monotonic(), stage))

    def peaks(self, samples: list[tuple[float, int]]) -> dict[str, float]:
        """The highest memory sample while each stage was the sidecar's."""
        peaks: dict[str, float] = {}
        for at, total in samples:
            current = [stage for since, stage in self.seen if since <= at]
            if current:
                peaks[current[-1]] = max(peaks.get(current[-1], 0.0), mb(total))
        return peaks
