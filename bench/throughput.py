"""Throughput: ten 5 s clips and one 5 min recording, three ways, same settings.

(a) the ``whisperx`` command once per file; (b) WhisperX in one process with
the model loaded once; (c) transcriber, from dropping the files to the last
``.result``, cold (process start included) and warm (worker already loaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import audio
from bench.harness import Daemon, whisperx_alone, whisperx_cli


def run(workdir: Path, long_minutes: float = 5.0) -> dict[str, Any]:
    sets = {
        "ten_clips": audio.clips(workdir / "clips", 10, 5.0),
        "long_recording": [audio.recording(workdir / "long" / "recording.wav", long_minutes)],
    }
    figures: dict[str, Any] = {}
    for label, files in sets.items():
        audio_seconds = round(sum(audio.seconds_of(f) for f in files), 1)
        cli = whisperx_cli(files, workdir / f"cli-{label}")
        alone = whisperx_alone(files)
        cold, warm = _daemon(workdir / f"cold-{label}", files, warm=False), _daemon(
            workdir / f"warm-{label}", files, warm=True)
        alone_total = alone["load_seconds"] + alone["transcribe_seconds"]
        figures[label] = {
            "files": len(files), "audio_seconds": audio_seconds,
            "a_cli_per_file_seconds": round(cli, 2),
            "b_one_process_seconds": round(alone["transcribe_seconds"], 2),
            "b_model_load_seconds": round(alone["load_seconds"], 2),
            "c_cold_seconds": round(cold, 2), "c_warm_seconds": round(warm, 2),
            "audio_seconds_per_wall_second": {
                "a": round(audio_seconds / cli, 2), "b": round(audio_seconds / alone["transcribe_seconds"], 2),
                "c_cold": round(audio_seconds / cold, 2), "c_warm": round(audio_seconds / warm, 2)},
            "ratio_a_over_c_cold": round(cli / cold, 2),
            "ratio_a_over_c_warm": round(cli / warm, 2),
            "ratio_c_warm_over_b": round(warm / alone["transcribe_seconds"], 3),
            "ratio_c_cold_over_b_with_load": round(cold / alone_total, 3),
        }
    return figures


def _daemon(workdir: Path, files: list[Path], warm: bool) -> float:
    daemon = Daemon(workdir)
    daemon.start()
    try:
        if warm:
            daemon.wait_warm()
        started = daemon.started if not warm else daemon.drop(files)
        if not warm:
            daemon.drop(files)
        return daemon.wait_results([f.name for f in files]) - started
    finally:
        daemon.stop()
