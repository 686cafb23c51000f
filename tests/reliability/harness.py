"""Helpers for reliability tests: whole daemon processes and what they leave in the folder.

``spawn_fake_daemon`` starts ``python -m tests.reliability.fake_daemon`` (the
real CLI daemon with the fake engine) with its output appended to a log file,
and marks it and every process it starts (workers, multiprocessing's
resource tracker) with a tag in the environment, so a test can find them
even after they are orphaned.  ``folder_view`` reads the shared folder once
and parses every sidecar, for invariant checks between faults.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.helpers import REPO
from transcriber.folder.sidecars import IN_PROGRESS_SUFFIX, RESULT_SUFFIX, TEMP_PREFIX

TAG_VARIABLE = "RELIABILITY_TAG"
STARTED_LINE = "Daemon started on"
MANUAL_REVIEW = "manual_review"
AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".flac", ".m4a")
_tags: dict[int, str] = {}


def spawn_fake_daemon(config_path: Path, log_path: Path, tag: str | None = None) -> subprocess.Popen[bytes]:
    """Start the daemon process (fake engine) on ``config_path``; output appended to ``log_path``.

    The process and all its descendants carry ``RELIABILITY_TAG=<tag>`` (a
    fresh one unless given; :func:`tag_of` tells it) for :func:`tagged_processes`.
    """
    tag = tag or uuid.uuid4().hex
    env = {**os.environ, TAG_VARIABLE: tag, "PYTHONUNBUFFERED": "1"}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.fake_daemon", "--config", str(config_path)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    _tags[proc.pid] = tag
    return proc


def tag_of(proc: subprocess.Popen[bytes]) -> str:
    """The tag that ``proc`` (from :func:`spawn_fake_daemon`) and its descendants carry."""
    return _tags[proc.pid]


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM (a graceful stop), then SIGKILL if it lingers; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30.0)
    return proc.returncode


def kill(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL: no handler, no cleanup, exactly like a crash or the OOM killer."""
    if proc.poll() is None:
        proc.kill()
    return proc.wait(30.0)


def tagged_processes(tag: str) -> list[psutil.Process]:
    """Live processes (ours, any parent) started under ``tag``; zombies excluded."""
    found = []
    for process in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get(TAG_VARIABLE) == tag:
                found.append(process)
    return found


def wait_for_log(log_path: Path, text: str, offset: int = 0, timeout: float = 60.0,
                 proc: subprocess.Popen[bytes] | None = None) -> str:
    """Wait until ``text`` appears in the log after byte ``offset``; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        tail = read_log(log_path, offset)
        if text in tail:
            return tail
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the daemon exited ({proc.returncode}) before logging {text!r}:\n{tail}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {text!r} in {log_path}:\n{tail[-4000:]}")
        time.sleep(0.05)


def read_log(log_path: Path, offset: int = 0) -> str:
    try:
        with log_path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


@dataclass
class FolderView:
    """One reading of ``shared/`` and ``shared/manual_review/``.

    Sidecar maps are keyed by audio filename; a value of None means the file
    exists but is not a JSON object (torn or garbage).
    """

    audio: set[str] = field(default_factory=set)
    in_progress: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    results: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    review_audio: set[str] = field(default_factory=set)
    review_in_progress: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    review_results: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    temp_files: list[str] = field(default_factory=list)  # leftovers of atomic writes, relative paths

    def unreadable(self) -> list[str]:
        """Sidecars that do not parse as a JSON object, as relative paths."""
        names = [f"{n}{IN_PROGRESS_SUFFIX}" for n, d in self.in_progress.items() if d is None]
        names += [f"{n}{RESULT_SUFFIX}" for n, d in self.results.items() if d is None]
        names += [f"{MANUAL_REVIEW}/{n}{IN_PROGRESS_SUFFIX}" for n, d in self.review_in_progress.items() if d is None]
        names += [f"{MANUAL_REVIEW}/{n}{RESULT_SUFFIX}" for n, d in self.review_results.items() if d is None]
        return names


def folder_view(shared: Path) -> FolderView:
    view = FolderView()
    _read_level(shared, view.audio, view.in_progress, view.results, view.temp_files, "")
    review = shared / MANUAL_REVIEW
    if review.is_dir():
        _read_level(review, view.review_audio, view.review_in_progress, view.review_results, view.temp_files,
                    f"{MANUAL_REVIEW}/")
    return view


def _read_level(folder: Path, audio: set[str], in_progress: dict[str, dict[str, Any] | None],
                results: dict[str, dict[str, Any] | None], temp_files: list[str], prefix: str) -> None:
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if not entry.is_file():
            continue
        if name.startswith(TEMP_PREFIX) or name.endswith(".tmp"):
            temp_files.append(prefix + name)
        elif name.endswith(IN_PROGRESS_SUFFIX):
            in_progress[name[: -len(IN_PROGRESS_SUFFIX)]] = parse_sidecar(entry)
        elif name.endswith(RESULT_SUFFIX):
            results[name[: -len(RESULT_SUFFIX)]] = parse_sidecar(entry)
        elif name.lower().endswith(AUDIO_SUFFIXES):
            audio.add(name)


def parse_sidecar(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is torn, not JSON or not an object.

    Raises FileNotFoundError when it vanished (callers read a quiet folder).
    """
    data = path.read_bytes()
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
