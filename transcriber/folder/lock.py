"""Single instance: the folder's ``.transcriber.lock``, held for the process's life."""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

from transcriber.errors import AlreadyRunningError


class InstanceLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path), timeout=0)

    def acquire(self) -> None:
        """Take the lock at once or raise AlreadyRunningError naming the holder."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout as exc:
            holder = self.holder_pid()
            who = f"pid {holder}" if holder else "another process"
            raise AlreadyRunningError(
                f"another transcriber ({who}) already serves this folder: {self.path} is locked"
            ) from exc
        # filelock (>= 4.2) never truncates the file of a holder, so a loser
        # reading it finds our pid.
        with open(self.path, "w", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")

    def holder_pid(self) -> int | None:
        try:
            return int(self.path.read_text(encoding="ascii").strip() or "0") or None
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()
