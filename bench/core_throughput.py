"""Ten 5 s clips: the daemon (drop to last .result) beside WhisperX alone in one process.

    .venv/bin/python -m bench.core_throughput [--clips 10] [--stability 2.0]

Both run as subprocesses, so each one's peak resident memory (its process
tree) is measured on its own. Same model, language, device and compute type
on both sides. Prints the figures and writes bench/results/core_throughput.json.
One run on a shared, noisy machine: compare the ratio, not absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
CLIP_SECONDS = 5.0
LANGUAGE = "en"
SENTENCES = [
    "Please call me back about the delivery tomorrow morning.",
    "The invoice number is missing from the last order.",
    "We need two more chairs in the meeting room today.",
    "My internet connection has been down since Monday.",
    "Can you confirm the address for the new account?",
    "The driver will arrive between ten and eleven.",
    "I would like to cancel my subscription, please.",
    "Thank you for waiting, your call is important to us.",
    "The package was left at the front door yesterday.",
    "Our office is closed on public holidays this month.",
]


def make_clips(folder: Path, count: int) -> list[Path]:
    """Speech padded with silence to exactly CLIP_SECONDS."""
    clips = []
    for number in range(count):
        raw, path = folder / f"raw-{number:02d}.wav", folder / f"clip-{number:02d}.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", "130", "-w", str(raw), SENTENCES[number % len(SENTENCES)]],
                       check=True)
        length = str(CLIP_SECONDS)
        subprocess.run(["sox", "-V1", str(raw), str(path), "pad", "0", length, "trim", "0", length], check=True)
        clips.append(path)
    return clips


class PeakMemory(threading.Thread):
    """Samples the resident memory of a process and all its children."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            total = 0
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in processes:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self.done.set()
        self.join()
        return round(self.peak / 2**20, 1)


def whisperx_alone(clips: list[Path]) -> dict[str, float]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.whisperx_alone", str(REPO / "models" / "base"), LANGUAGE, *map(str, clips)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, text=True,
    )
    memory = PeakMemory(process.pid)
    memory.start()
    output, _ = process.communicate()
    figures = json.loads(output.strip().splitlines()[-1])
    figures["peak_rss_mb"] = memory.stop()
    return figures


def daemon_run(clips: list[Path], stability: float, workdir: Path) -> dict[str, float]:
    shared = workdir / "shared"
    config = workdir / "config.yaml"
    config.write_text(json.dumps({
        "shared_directory": str(shared),
        "whisperx": {"model_size": "base", "language": LANGUAGE, "compute_type": "int8", "device": "cpu"},
        "watch": {"stability_seconds": stability},
        "models": {"dir": str(REPO / "models")},
        "logging": {"level": "INFO"},
    }))
    log_path = workdir / "daemon.log"
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "transcriber", "--config", str(config)],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    memory = PeakMemory(process.pid)
    memory.start()
    try:
        while "Loaded model" not in log_path.read_text():
            time.sleep(0.05)
        warm = time.perf_counter()
        for clip in clips:
            shutil.copy(clip, shared / clip.name)
        dropped = time.perf_counter()
        pending = {clip.name for clip in clips}
        while pending:
            pending = {name for name in pending if not (shared / f"{name}.result").exists()}
            time.sleep(0.02)
        finished = time.perf_counter()
    finally:
        process.terminate()
        process.wait(60)
    return {"start_to_warm_seconds": round(warm - started, 2),
            "drop_to_last_result_seconds": round(finished - dropped, 2),
            "stability_seconds": stability, "peak_rss_mb": memory.stop()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--stability", type=float, default=2.0, help="watch.stability_seconds (default config: 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        clips = make_clips(workdir, args.clips)
        alone = whisperx_alone(clips)
        daemon = daemon_run(clips, args.stability, workdir)
    daemon_work = daemon["drop_to_last_result_seconds"] - args.stability
    figures = {
        "clips": args.clips, "audio_seconds": args.clips * CLIP_SECONDS,
        "settings": {"model_size": "base", "language": LANGUAGE, "compute_type": "int8", "device": "cpu"},
        "whisperx_alone": {k: round(v, 2) for k, v in alone.items()},
        "daemon": daemon,
        "ratio_daemon_minus_stability_to_whisperx": round(daemon_work / alone["transcribe_seconds"], 3),
    }
    out = REPO / "bench" / "results" / "core_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
