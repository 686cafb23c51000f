"""Ten ~5 s clips: the daemon (drop to last .result) beside WhisperX alone in one process.

    .venv/bin/python -m bench.core_throughput [--clips 10] [--stability 2.0]

Prints a table and writes bench/results/core_throughput.json. Same model,
language, device and compute type on both sides. Figures are from one run
on a shared, noisy machine: compare the ratio, not absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil

from transcriber.config import load_config
from transcriber.daemon import Daemon

REPO = Path(__file__).resolve().parent.parent
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
SETTINGS = {"model_size": "base", "language": "en", "compute_type": "int8", "device": "cpu"}


def make_clips(folder: Path, count: int) -> list[Path]:
    clips = []
    for number in range(count):
        path = folder / f"clip-{number:02d}.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", "120", "-w", str(path), SENTENCES[number % len(SENTENCES)]],
                       check=True)
        clips.append(path)
    return clips


def whisperx_alone(clips: list[Path]) -> dict[str, float]:
    import whisperx

    started = time.perf_counter()
    model = whisperx.load_model(
        str(REPO / "models" / SETTINGS["model_size"]), SETTINGS["device"], compute_type=SETTINGS["compute_type"],
        language=SETTINGS["language"], vad_method="pyannote", threads=psutil.cpu_count() or 1,
        asr_options={"temperatures": [0.1]},
    )
    loaded = time.perf_counter()
    for clip in clips:
        model.transcribe(whisperx.load_audio(str(clip)), batch_size=8, language=SETTINGS["language"])
    finished = time.perf_counter()
    return {"load_seconds": loaded - started, "transcribe_seconds": finished - loaded}


class PeakMemory(threading.Thread):
    """Samples the resident memory of this process plus its children."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.done.wait(0.05):
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)


def daemon_run(clips: list[Path], stability: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        config_path = folder / "config.yaml"
        config_path.write_text(json.dumps({
            "shared_directory": str(folder / "shared"),
            "whisperx": {k: v for k, v in SETTINGS.items()},
            "watch": {"stability_seconds": stability},
            "models": {"dir": str(REPO / "models")},
            "logging": {"level": "WARNING"},
        }))
        daemon = Daemon(load_config(config_path, environ={}))
        memory = PeakMemory()
        memory.start()
        started = time.perf_counter()
        daemon.start()
        while not daemon.workers()[0].models_loaded:
            time.sleep(0.05)
        warm_at = time.perf_counter()
        dropped = time.perf_counter()
        shared = folder / "shared"
        for clip in clips:
            shutil.copy(clip, shared / clip.name)
        pending = {clip.name for clip in clips}
        while pending:
            pending = {name for name in pending if not (shared / f"{name}.result").exists()}
            time.sleep(0.02)
        finished = time.perf_counter()
        daemon.stop()
        memory.done.set()
        memory.join()
        return {"start_to_warm_seconds": warm_at - started, "drop_to_last_result_seconds": finished - dropped,
                "peak_rss_mb": memory.peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--stability", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        clips = make_clips(Path(temp), args.clips)
        audio_seconds = sum(float(subprocess.run(
            ["soxi", "-D", str(c)], capture_output=True, text=True, check=True).stdout) for c in clips)
        alone = whisperx_alone(clips)
        daemon = daemon_run(clips, args.stability)
    figures = {"clips": args.clips, "audio_seconds": round(audio_seconds, 1), "settings": SETTINGS,
               "stability_seconds": args.stability, "whisperx_alone": alone, "daemon": daemon}
    out = REPO / "bench" / "results" / "core_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
