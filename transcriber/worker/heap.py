"""Memory management: the worker's C heap kept to inference's memory budget,
and the daemon's garbage collector kept out of the API's way.

The heap measures were found with ``bench/memory.py`` and a probe sampling
resident memory around each WhisperX step (docs/PERFORMANCE.md, memory); on
other C libraries they do nothing.  The collector's with ``bench/api_load.py``
and a probe timing every collection (docs/PERFORMANCE.md, API load).
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

LONG_FILE_SECONDS = 600  # heaps are trimmed through files this long (``trimming``)
TRIM_EVERY_SECONDS = 2.0  # while a long file is transcribed
TRIM_AFTER_SECONDS = 60.0  # after a file this long, the heap is trimmed before the reply (``trim_after_job``)
IDLE_TRIM_SECONDS = 1.0  # after a shorter one, once the worker has been idle this long
EXEMPT_EVERY_SECONDS = 3600.0  # the daemon's long-lived objects from its collector (below)
ARENA_VARIABLE = "MALLOC_ARENA_MAX"
_ENVIRONMENT_LOCK = threading.Lock()  # os.environ is the process's: one worker start changes it at a time


@contextmanager
def one_arena_in_workers() -> Iterator[None]:
    """Processes started inside this block allocate from one malloc arena.

    glibc gives threads arenas of their own (up to eight per core), and the
    VAD's and CTranslate2's threads scatter large short-lived buffers over
    them: the same 20-minute file peaked anywhere from 1.6 to 2.2 GB from run
    to run.  With one arena: 1.55 to 1.77 GB, at the same speed (the threads
    spend their time in kernels, not in malloc); the trims below do the rest.
    Through the environment, which glibc reads when a process starts:
    ``mallopt`` in the worker comes too late, its imports have already
    started threads and fixed the limit.  multiprocessing's spawn execs the
    worker with this process's environment, so ``MALLOC_ARENA_MAX=1`` is set
    around the worker's start only, and put back as it was (most often: not
    set) at the end; the daemon's own ``os.environ``, and what it starts at
    other times, keep glibc's default.  One block at a time, so that two slots
    starting workers together cannot restore each other's value.  An
    operator's own ``MALLOC_ARENA_MAX`` wins.
    """
    with _ENVIRONMENT_LOCK:
        chosen = os.environ.get(ARENA_VARIABLE)
        if chosen is None:
            os.environ[ARENA_VARIABLE] = "1"
        try:
            yield
        finally:
            if chosen is None:
                os.environ.pop(ARENA_VARIABLE, None)


def give_back_freed() -> None:
    """Give the heap memory that inference freed back to the system.

    glibc keeps freed heap memory for reuse, but the VAD's and the
    recognition's buffers leave it too fragmented to reuse: on an hour, the
    worker held 1.4 GB more than it used by the end of the VAD, ~300 MB after
    it, and a 5-minute file left ~130 MB (docs/PERFORMANCE.md, memory).  A
    trim takes 3-15 ms in the worker.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        return


def trim_after_job(seconds: float, idle_limit_mb: int) -> bool:
    """Trim now, before the worker replies, after a file of ``TRIM_AFTER_SECONDS``
    or more, or when the worker holds more than ``idle_limit_mb``; True if so.

    Before the reply, so that the memory the daemon checks against the idle
    ceiling (``processing.worker_idle_memory_limit_mb``) is what the worker
    keeps.  A few milliseconds against at least a few seconds of work.  After
    a shorter file the worker trims once it has been idle for
    ``IDLE_TRIM_SECONDS`` instead (worker_main): a queue of short clips is not
    held up at all, and an idle worker still holds no freed heap.
    """
    if seconds >= TRIM_AFTER_SECONDS or (idle_limit_mb and resident_bytes() > idle_limit_mb * 2**20):
        give_back_freed()
        return True
    return False


def resident_bytes() -> int:
    """This process's resident memory (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def trimming(report: Callable[..., Any]) -> Callable[..., Any]:
    """``report`` (the engine's progress callback, called after every VAD and
    recognition batch) that also gives freed memory back: at its first call
    (the decoder's buffers), then at most every ``TRIM_EVERY_SECONDS``."""
    last_trim = 0.0

    def report_and_trim(*args: Any) -> Any:
        nonlocal last_trim
        now = time.monotonic()
        if now - last_trim >= TRIM_EVERY_SECONDS:
            give_back_freed()
            last_trim = now
        return report(*args)

    return report_and_trim


def exempt_long_lived_objects() -> None:
    """Take every object alive now out of the collector's automatic runs: at
    start-up (modules, schemas, the jobs of the start-up scan), then every
    ``EXEMPT_EVERY_SECONDS`` (the jobs of files dropped since).

    Under API load the in-flight requests' objects survive into the oldest
    generation, which then triggered a full collection every ~1.3 s; it
    walked ~90,000 start-up objects that never become garbage, and the event
    loop stood still ~45 ms each time on a busy machine: the p99 at 200
    clients (67 ms).  With them exempt, those collections take ~0.7 ms.
    Exempt objects are still freed by reference counting; cycles among them
    are collected here, by the full collection between thaw and freeze (one
    such pause an hour instead of one a second).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
