"""Running the daemon and the baselines as separate processes, and measuring them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO / "models" / "base"
SETTINGS = {"model_size": "base", "language": "en", "compute_type": "int8", "device": "cpu"}
BATCH_SIZE = 4  # transcriber's default on a CPU; the same for every contender
RESULTS = REPO / "bench" / "results"


class RssRise:
    """How far one process's resident memory rises inside a ``with`` block: sampled every
    ``interval`` seconds by a thread, in bytes (``rise``)."""

    def __init__(self, pid: int | None = None, interval: float = 0.001) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.before = self.peak = 0
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssRise:
        self.before = self.peak = self.process.memory_info().rss
        self._sampler.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._sampler.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def rise(self) -> int:
        return self.peak - self.before

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)


class PeakMemory(threading.Thread):
    """Samples the resident memory of a process tree every 50 ms; ``at_peak`` is
    how the highest sample divides between the processes (``role``)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self.at_peak: dict[str, float] = {}
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.wait(0.05):
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                continue
            total, parts = 0, {}
            for process in processes:
                try:
                    rss, name = process.memory_info().rss, role(process, self.root)
                except psutil.Error:
                    continue
                total += rss
                parts[name] = parts.get(name, 0) + rss
            if total > self.peak:
                self.peak, self.at_peak = total, {name: mb(rss) for name, rss in parts.items()}
            self.samples.append((time.monotonic(), total))

    def stop(self) -> float:
        self.done.set()
        self.join()
        return mb(self.peak)


def mb(value: float) -> float:
    return round(value / 2**20, 1)


def role(process: psutil.Process, root: psutil.Process) -> str:
    """daemon (the process started), worker (multiprocessing's spawn), or the program's name (ffmpeg)."""
    if process.pid == root.pid:
        return "daemon"
    command = " ".join(process.cmdline())
    return "worker" if "spawn_main" in command else process.name()


class Daemon:
    """``python -m transcriber`` on a fresh folder, as a user runs it."""

    def __init__(self, workdir: Path, overrides: dict[str, Any] | None = None, port: int = 0) -> None:
        self.workdir = workdir
        self.shared = workdir / "shared"
        self.shared.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        config: dict[str, Any] = {
            "shared_directory": str(self.shared),
            "api": {"port": self.port},
            "whisperx": {**SETTINGS, "batch_size": BATCH_SIZE},
            "models": {"dir": str(REPO / "models")},
            "logging": {"level": "INFO"},
        }
        for section, values in (overrides or {}).items():
            config.setdefault(section, {}).update(values) if isinstance(values, dict) else config.update(
                {section: values})
        self.config = workdir / "config.yaml"
        self.config.write_text(json.dumps(config))
        self.log = workdir / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.memory: PeakMemory | None = None
        self.started = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "transcriber", "--config", str(self.config)], stdout=log,
                stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.memory = PeakMemory(self.process.pid)

    def wait_warm(self, timeout: float = 300) -> float:
        """Seconds from start until the worker has loaded the model."""
        wait_until(lambda: "Loaded model" in self.log.read_text(errors="replace"), timeout)
        return time.perf_counter() - self.started

    def wait_api(self, timeout: float = 120) -> None:
        wait_until(lambda: "API listening" in self.log.read_text(errors="replace"), timeout)

    def stop(self) -> float:
        """Stop with SIGTERM; returns the peak memory of daemon plus worker in MB."""
        assert self.process is not None and self.memory is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return self.memory.stop()

    def own_rss_mb(self) -> float:
        assert self.process is not None
        return mb(psutil.Process(self.process.pid).memory_info().rss)

    def drop(self, files: list[Path]) -> float:
        """Copy files in (each written under a temp name, then renamed); returns when done."""
        for path in files:
            temporary = self.shared / f"{path.name}.part"
            shutil.copyfile(path, temporary)
            temporary.rename(self.shared / path.name)
        return time.perf_counter()

    def wait_results(self, names: list[str], timeout: float = 3600) -> float:
        pending = set(names)

        def done() -> bool:
            pending.difference_update({n for n in pending if (self.shared / f"{n}.result").exists()})
            return not pending

        wait_until(done, timeout, interval=0.01)
        return time.perf_counter()


def whisperx_alone(files: list[Path]) -> dict[str, float]:
    """WhisperX in one Python process, model loaded once (bench/whisperx_alone.py)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.whisperx_alone", str(MODEL_DIR), SETTINGS["language"], str(BATCH_SIZE),
         *map(str, files)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, text=True,
    )
    memory = PeakMemory(process.pid)
    output, _ = process.communicate()
    figures = json.loads(output.strip().splitlines()[-1])
    figures["peak_rss_mb"] = memory.stop()
    return figures


def whisperx_cli(files: list[Path], out: Path) -> float:
    """The ``whisperx`` command once per file, as the specification first sketched."""
    started = time.perf_counter()
    for path in files:
        subprocess.run(
            [str(Path(sys.executable).with_name("whisperx")), str(path), "--model", str(MODEL_DIR),
             "--device", SETTINGS["device"], "--compute_type", SETTINGS["compute_type"],
             "--language", SETTINGS["language"], "--no_align", "--vad_method", "pyannote",
             "--batch_size", str(BATCH_SIZE),
             "--threads", str(os.cpu_count() or 1), "--temperature", "0.1", "--output_format", "json",
             "--output_dir", str(out)],
            check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    return time.perf_counter() - started


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s")
        time.sleep(interval)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def save(name: str, figures: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
