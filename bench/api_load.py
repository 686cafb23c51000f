"""API load: GET /status and /health at 50 and 200 clients while a long file is transcribed."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import audio
from bench.harness import Daemon, wait_until


def run(workdir: Path, seconds: int = 20, minutes: float = 5.0) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is needed: apt-get install wrk (bench/run.sh does it)")
    recording = audio.recording(workdir / "long" / "recording.wav", minutes)
    daemon = Daemon(workdir / "daemon")
    daemon.start()
    figures: dict[str, Any] = {}
    try:
        daemon.wait_warm()
        daemon.wait_api()
        copies = [recording.with_name(f"call-{n}.wav") for n in range(3)]  # keeps both cores busy throughout
        for copy in copies:
            shutil.copyfile(recording, copy)
        daemon.drop(copies)
        base = f"http://127.0.0.1:{daemon.port}"
        wait_until(lambda: httpx.get(f"{base}/status/call-0.wav").json().get("status") == "processing", 120)
        for route in ("/status/call-0.wav", "/health"):
            for clients in (50, 200):
                cpu_before = psutil.cpu_times()
                figures[f"{route.split('/')[1]}@{clients}"] = {
                    **_wrk(base + route, clients, seconds), "cpu_busy_percent": _busy(cpu_before)}
                status = httpx.get(f"{base}/status/call-0.wav").json()
                assert status["status"] in ("processing", "completed"), status
        figures["transcribing_during_runs"] = httpx.get(f"{base}/health").json()["worker"][0]["state"] == "busy"
    finally:
        daemon.stop()
    return figures


def _wrk(url: str, clients: int, seconds: int) -> dict[str, Any]:
    time.sleep(1.0)
    completed = subprocess.run(
        ["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "--latency", "--timeout", "5s", url],
        capture_output=True, text=True, check=True,
    )
    out = completed.stdout
    percentiles = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"p50_ms": _ms(percentiles["50"]), "p99_ms": _ms(percentiles["99"]),
            "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore
            "requests": requests, "errors": errors + (int(non_2xx.group(1)) if non_2xx else 0)}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def _busy(before: Any) -> float:
    after = psutil.cpu_times()
    idle = after.idle - before.idle
    total = sum(after) - sum(before)
    return round(100 * (1 - idle / total), 1) if total else 0.0
