"""Scale: 10,000 audio files in a paused folder: scan times, daemon memory, /status latency."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from bench import audio
from bench.api_load import _wrk
from bench.harness import Daemon, wait_until


def run(workdir: Path, files: int = 10_000) -> dict[str, Any]:
    empty = Daemon(workdir / "empty", {"watch": {"rescan_interval_seconds": 5}})
    (empty.shared / ".pause").touch()
    empty.start()
    empty.wait_api()
    time.sleep(3)
    baseline_mb = empty.own_rss_mb()
    empty.stop()

    daemon = Daemon(workdir / "full", {"watch": {"rescan_interval_seconds": 5}})
    (daemon.shared / ".pause").touch()
    source = audio.clip(workdir / "one.wav", "Hello.", 1.0)
    for number in range(files):  # hard links: 10,000 real audio files, one inode
        os.link(source, daemon.shared / f"call-{number:05d}.wav")
    daemon.start()
    base = f"http://127.0.0.1:{daemon.port}"
    try:
        daemon.wait_api()
        wait_until(lambda: httpx.get(f"{base}/health").json()["queue_depth"] == files, 300, interval=0.2)
        all_queued = time.perf_counter() - daemon.started
        health = httpx.get(f"{base}/health").json()
        first_scan = health["watcher"]["last_scan_seconds"]
        time.sleep(6)  # the next periodic rescan
        rescan = httpx.get(f"{base}/health").json()["watcher"]["last_scan_seconds"]
        memory_mb = daemon.own_rss_mb()
        status = _wrk(f"{base}/status/call-{files // 2:05d}.wav", 50, 10)
    finally:
        daemon.stop()
    return {"files": files, "startup_scan_seconds": first_scan, "all_queued_after_start_seconds": round(
        all_queued, 2), "periodic_rescan_seconds": rescan, "daemon_rss_empty_mb": baseline_mb,
        "daemon_rss_with_files_mb": memory_mb, "daemon_growth_mb": round(memory_mb - baseline_mb, 1),
        "status_at_50_clients": status}
