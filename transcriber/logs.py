"""Logging in the seed's format: ``[YYYY-MM-DD HH:MM:SS] [LEVEL] [Module] Message``."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "[%(asctime)s] [%(levelname)s] [%(name)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
NOISY_LIBRARIES = (
    "watchdog", "urllib3", "filelock", "httpx", "asyncio", "speechbrain", "pytorch_lightning", "lightning",
    "lightning.pytorch", "lightning_fabric", "pyannote", "whisperx", "faster_whisper", "numba",
)


def configure_logging(level: str = "INFO", to_stderr: bool = False) -> None:
    """One line per event to stdout (stderr for the one-shot CLI, whose stdout
    is the result JSON); noisy libraries are held at WARNING."""
    handler = logging.StreamHandler(sys.stderr if to_stderr else sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries()


def quiet_libraries() -> None:
    """Hold chatty libraries at WARNING; call again after importing them, as
    some (lightning) reset their own level on import."""
    root = logging.getLogger()
    for noisy in NOISY_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
