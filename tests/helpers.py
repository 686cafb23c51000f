"""Shared helpers: configs on temp folders, audio files, polling waits (and the word error rate, from bench)."""

from __future__ import annotations

import io
import json
import math
import struct
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from bench.wer import word_error_rate as word_error_rate  # re-exported for the tests
from transcriber.config import Config, load_config

if TYPE_CHECKING:
    from transcriber.folder.watcher import Watcher

REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO / "models"
T = TypeVar("T")


def write_config(folder: Path, overrides: dict[str, Any] | None = None) -> Path:
    """A config.yaml for tests: fast windows, tiny backoff, the repo's models."""
    document: dict[str, Any] = {
        "shared_directory": str(folder / "shared"),
        "api": {"enabled": False},
        "watch": {"stability_seconds": 0.3, "rescan_interval_seconds": 1.0},
        "processing": {"retry_backoff_seconds": 0.2, "retry_backoff_max_seconds": 1.0,
                       "shutdown_grace_seconds": 5, "timeout_seconds": 60},
        "models": {"dir": str(MODELS_DIR), "cache_dir": str(folder / "cache")},
        "logging": {"level": "DEBUG"},
    }
    _merge(document, overrides or {})
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def make_config(folder: Path, overrides: dict[str, Any] | None = None) -> Config:
    return load_config(write_config(folder, overrides), environ={})


def _merge(into: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def write_tone(path: Path, seconds: float = 0.5, frequency: float = 440.0, rate: int = 16_000) -> Path:
    """A small valid WAV file (a sine tone)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tone_bytes(seconds, frequency, rate))
    return path


def tone_bytes(seconds: float = 0.5, frequency: float = 440.0, rate: int = 16_000) -> bytes:
    """The WAV file of :func:`write_tone`, in memory (what a client uploads)."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * frequency * n / rate))) for n in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(frames)
    return buffer.getvalue()


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def wait_for_rescans(watcher: Watcher, count: int = 2, timeout: float | None = None) -> None:
    """Wait until ``watcher`` has finished ``count`` more full rescans than now; fail after ``timeout``.

    For negative checks ("nothing was picked up"): two, because the first may
    have begun before the caller's change; the second began after it, and the
    tick that ran the first (hints, stability, releases) has ended.  The
    default timeout is the rescans' interval ``count + 1`` times, plus slack
    for a busy machine.
    """
    interval = watcher.config.rescan_interval_seconds
    limit = (count + 1) * interval + 10.0 if timeout is None else timeout
    target = watcher.scans_completed + count
    wait_for(lambda: watcher.scans_completed >= target, timeout=limit, interval=0.02,
             what=f"{count} more rescans of the watched folder (rescan_interval_seconds {interval:g})")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def result_of(shared: Path, filename: str) -> dict[str, Any] | None:
    return read_json(shared / f"{filename}.result")


def in_progress_of(shared: Path, filename: str) -> dict[str, Any] | None:
    return read_json(shared / f"{filename}.in_progress")
