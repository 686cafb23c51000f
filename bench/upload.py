"""Uploads: a 200 MB file through POST /upload, and 20 at once while a file is transcribed.

- ``large``: one file of ``megabytes`` (default 200, the seeds' limit) uploaded with curl
  over loopback while the folder is paused (``.pause``: nothing is transcribed meanwhile);
  the throughput, and how far the daemon's own resident memory rises (sampled every 5 ms;
  the worker is another process and is not counted).
- ``concurrent``: ``clients`` uploads of ``concurrent_megabytes`` each at once while a long
  recording is transcribed, with wrk asking ``GET /status`` of the transcribing file the
  whole time (10 connections): its p50/p99 and errors, and the uploads' wall time.

Targets (issue 17): memory + < 20 MB, at least 100 MB/s, ``/status`` p99 < 50 ms.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import audio
from bench.api_load import _wrk
from bench.harness import Daemon, RssRise, mb, wait_until


def run(workdir: Path, megabytes: int = 200, clients: int = 20, concurrent_megabytes: int = 10,
        minutes: float = 5.0) -> dict[str, Any]:
    large = _noise_wav(workdir / "large.wav", megabytes)
    small = _noise_wav(workdir / "small.wav", concurrent_megabytes)
    daemon = Daemon(workdir / "daemon", {"upload": {"max_bytes": (megabytes + 1) * 2**20}})
    daemon.start()
    figures: dict[str, Any] = {"megabytes": megabytes}
    try:
        daemon.wait_warm()
        daemon.wait_api()
        base = f"http://127.0.0.1:{daemon.port}"
        assert daemon.process is not None
        (daemon.shared / ".pause").touch()
        figures["large"] = _large(base, large, daemon.process.pid, daemon.shared)
        httpx.delete(f"{base}/transcribe/{large.name}").raise_for_status()  # not to be transcribed
        (daemon.shared / ".pause").unlink()
        recording = audio.recording(workdir / "long" / "recording.wav", minutes)
        daemon.drop([recording])
        wait_until(lambda: httpx.get(f"{base}/status/{recording.name}").json().get("status") == "processing", 120)
        figures["concurrent"] = _concurrent(base, small, clients, recording.name, daemon.shared)
        status = httpx.get(f"{base}/status/{recording.name}").json()
        figures["concurrent"]["transcribing_throughout"] = status["status"] == "processing"
    finally:
        daemon.stop()
    _print(figures)
    return figures


def _noise_wav(path: Path, megabytes: int) -> Path:
    """A WAV of white noise of about ``megabytes`` (16 kHz mono 16-bit: ~33 s a megabyte)."""
    if not path.exists():
        seconds = megabytes * 2**20 / 32_000
        subprocess.run(["sox", "-V1", "-n", "-r", "16000", "-c", "1", "-b", "16", str(path), "synth", f"{seconds:.2f}",
                        "whitenoise", "vol", "0.1"], check=True)
    return path


def _large(base: str, path: Path, pid: int, shared: Path) -> dict[str, Any]:
    started = time.perf_counter()
    with RssRise(pid, interval=0.005) as memory:
        answer = _curl(base, path, path.name)
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    stored = shared / path.name
    assert answer.startswith("202") or answer.startswith("200"), answer[:300]
    assert stored.stat().st_size == size and _sha256(stored) == _sha256(path)
    assert not list(shared.glob(".upload-*")), "a temporary upload file was left"
    return {"bytes": size, "seconds": round(seconds, 2), "mb_per_second": round(size / 2**20 / seconds, 1),
            "daemon_rss_before_mb": round(mb(memory.before), 1), "daemon_rss_growth_mb": round(mb(memory.rise), 1)}


def _concurrent(base: str, path: Path, clients: int, transcribing: str, shared: Path) -> dict[str, Any]:
    """Rounds of ``clients`` uploads at once, for as long as wrk polls ``/status``."""
    seconds = 15
    results: dict[str, Any] = {}

    def load() -> None:
        results["status"] = _wrk(f"{base}/status/{transcribing}", 10, seconds)

    poller = threading.Thread(target=load)
    poller.start()
    time.sleep(1.5)  # wrk's own pause before it starts, then under way
    started = time.perf_counter()
    names: list[str] = []
    answers: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        while time.perf_counter() - started < seconds - 3:
            batch = [f"upload-{len(names) + n}.wav" for n in range(clients)]
            answers += pool.map(lambda name: _curl(base, path, name), batch)
            names += batch
    uploads_seconds = time.perf_counter() - started
    poller.join()
    accepted = sum(a.startswith(("200", "202")) for a in answers)
    stored = sum((shared / name).stat().st_size == path.stat().st_size for name in names)
    total = len(names) * path.stat().st_size
    return {"clients": clients, "rounds": len(names) // clients,
            "megabytes_each": round(path.stat().st_size / 2**20, 1), "accepted": accepted, "stored_whole": stored,
            "uploads_seconds": round(uploads_seconds, 2),
            "mb_per_second": round(total / 2**20 / uploads_seconds, 1), "status_during": results["status"]}


def _curl(base: str, path: Path, name: str) -> str:
    """``HTTP code`` then the body; curl streams the file from disk, as a client on another host would."""
    completed = subprocess.run(
        ["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", "-F", f"file=@{path};filename={name}",
         f"{base}/upload"], capture_output=True, text=True, check=True, timeout=600,
        env={**os.environ, "LC_ALL": "C"})
    body, _, code = completed.stdout.rpartition("\n")
    return f"{code} {body}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(2**20):
            digest.update(block)
    return digest.hexdigest()


def _print(figures: dict[str, Any]) -> None:
    large, many = figures["large"], figures["concurrent"]
    print(f"\n{large['bytes'] / 2**20:.0f} MB upload: {large['seconds']} s, {large['mb_per_second']} MB/s, daemon "
          f"RSS +{large['daemon_rss_growth_mb']} MB (from {large['daemon_rss_before_mb']} MB)")
    status = many["status_during"]
    print(f"{many['rounds']} rounds of {many['clients']} x {many['megabytes_each']} MB at once while transcribing: "
          f"{many['uploads_seconds']} s "
          f"({many['mb_per_second']} MB/s), {many['accepted']} accepted, {many['stored_whole']} stored whole; "
          f"/status p50 {status['p50_ms']} ms, p99 {status['p99_ms']} ms, {status['errors']} errors")
