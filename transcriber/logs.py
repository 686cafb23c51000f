"""Logging in the seed's format: ``[YYYY-MM-DD HH:MM:SS] [LEVEL] [Module] Message``.

One formatter, configured here and nowhere else, for every line a process
prints: the daemon's own loggers, uvicorn's error and access logs, the
libraries' loggers (WhisperX installs a handler of its own, in another format,
when it is imported), Python warnings, and what the worker's native code
(CTranslate2, progress bars, a crash) writes straight to its file descriptors,
which the daemon reads and logs (issue 13).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
from multiprocessing.connection import Connection

LOG_FORMAT = "[%(asctime)s] [%(levelname)s] [%(name)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
NOISY_LIBRARIES = (
    "watchdog", "urllib3", "filelock", "httpx", "asyncio", "speechbrain", "pytorch_lightning", "lightning",
    "lightning.pytorch", "lightning_fabric", "pyannote", "whisperx", "faster_whisper", "numba", "psycopg",
)
# Libraries that give their logger a handler of their own, in another format.
OWN_HANDLERS = ("whisperx",)
ACCESS_LOGGER = "uvicorn.access"


class LineFormatter(logging.Formatter):
    """Every line of a record in the format, a traceback's and a warning's too:
    continuation lines repeat the record's header, so each line stands alone."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT, DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if "\n" not in text:
            return text
        header = f"[{self.formatTime(record, DATE_FORMAT)}] [{record.levelname}] [{record.name}] "
        first, *rest = text.rstrip("\n").split("\n")
        return "\n".join([first, *(header + line for line in rest if line.strip())])


def configure_logging(level: str = "INFO", to_stderr: bool = False, access_log: bool = False) -> None:
    """One line per event to stdout (stderr for the one-shot CLI, whose stdout
    is the result JSON); noisy libraries are held at WARNING."""
    handler = logging.StreamHandler(sys.stderr if to_stderr else sys.stdout)
    handler.setFormatter(LineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings.warn() lines as records of "py.warnings"
    # uvicorn's loggers reach the root's handler (server.py passes log_config=None);
    # its start-up chatter stays below WARNING, its access lines are on only if asked.
    logging.getLogger("uvicorn").setLevel(max(logging.WARNING, root.level))
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
    quiet_libraries()


def quiet_libraries() -> None:
    """Hold chatty libraries at WARNING and route them through the root handler;
    call again after importing them, as some reset their level on import and
    WhisperX gives its logger a handler of its own that does not propagate."""
    root = logging.getLogger()
    for noisy in NOISY_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for library in OWN_HANDLERS:
        # The root's handler in place of theirs, rather than none: WhisperX installs
        # its own whenever its logger has none (whisperx/log_utils.py get_logger).
        logger = logging.getLogger(library)
        logger.handlers[:] = root.handlers
        logger.propagate = False


def redirect_output(output: Connection) -> None:
    """In a child process: make file descriptors 1 and 2 (native libraries, ``print``,
    tqdm, an uncaught traceback) write into ``output``, which the parent reads with
    :func:`log_lines`.  The root handler keeps writing to its own stream."""
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    sys.stdout.flush()
    sys.stderr.flush()
    handler.setStream(os.fdopen(os.dup(handler.stream.fileno()), "w", buffering=1, encoding="utf-8",
                                errors="replace"))
    os.dup2(output.fileno(), 1)
    os.dup2(output.fileno(), 2)
    output.close()
    faulthandler.enable()  # a native crash's Python stack, through fd 2 to the parent


def log_lines(source: Connection, logger: logging.Logger) -> None:
    """In the parent: log each line a child wrote to its fds 1 and 2, until it is gone."""
    with os.fdopen(os.dup(source.fileno()), "rb") as pipe:
        source.close()
        for raw in pipe:
            # A progress bar redraws itself with carriage returns: its last state is the line.
            line = raw.decode("utf-8", "replace").rstrip("\r\n").rsplit("\r", 1)[-1].strip()
            if line:
                logger.log(_level_of(line), "%s", line)


def _level_of(line: str) -> int:
    lowered = line.lower()
    if any(word in lowered for word in ("error", "traceback", "fatal", "terminate called", "exception")):
        return logging.ERROR
    return logging.WARNING if "warn" in lowered else logging.INFO
