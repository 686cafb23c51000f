from __future__ import annotations

import gc
import itertools
import json
import os
import platform
import subprocess
import sys
import weakref

import pytest

from transcriber.worker import heap


def test_a_long_files_reports_trim_at_once_then_at_most_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    trims: list[float] = []
    reports: list[tuple[str, float]] = []
    monkeypatch.setattr(heap.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(heap, "give_back_freed", lambda: trims.append(clock[0]))
    report = heap.trimming(lambda stage, percentage: reports.append((stage, percentage)))

    for step in range(30):  # five reports per interval, for six intervals
        clock[0] = 1000.0 + step * heap.TRIM_EVERY_SECONDS / 5
        report("transcribing", float(step))

    assert len(reports) == 30  # every report still goes through
    assert trims[0] == 1000.0  # the decoder's buffers, at the first report
    assert all(later - earlier >= heap.TRIM_EVERY_SECONDS for earlier, later in itertools.pairwise(trims))
    assert len(trims) == 6


def test_one_malloc_arena_only_while_a_worker_starts_unless_the_operator_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    with heap.one_arena_in_workers():
        assert os.environ["MALLOC_ARENA_MAX"] == "1"  # what the worker started here inherits
    assert "MALLOC_ARENA_MAX" not in os.environ  # not set before: not set after
    with pytest.raises(OSError), heap.one_arena_in_workers():
        raise OSError("the worker could not be started")
    assert "MALLOC_ARENA_MAX" not in os.environ
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    with heap.one_arena_in_workers():
        assert os.environ["MALLOC_ARENA_MAX"] == "4"  # the operator's own wins
    assert os.environ["MALLOC_ARENA_MAX"] == "4"  # and stays


# Run in a fresh interpreter: in pytest's own process the blocks below may be carved out of memory that the
# earlier tests freed and that is still resident (CI saw exactly no growth while they were written), and
# then nothing is left to give back.  A new process's heap holds only what this script puts there.
_HEAP_PROBE = """
import ctypes, json
from transcriber.worker import heap
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
block, count = 64 * 2**10, 1024  # 64 MB in blocks under the mmap threshold: the heap's, not mmap's
heap.give_back_freed()  # what the interpreter's start freed is not resident either
blocks, pins = [], []
for _ in range(count):  # each block held in place by the next one, as live objects hold freed memory
    blocks.append(libc.malloc(block))
    pins.append(libc.malloc(block))  # never touched: costs (almost) no resident memory
assert all(blocks) and all(pins)
before = heap.resident_bytes()
for address in blocks:
    ctypes.memset(address, 1, block)  # resident now
for address in blocks:
    libc.free(address)
held = heap.resident_bytes()
heap.give_back_freed()
print(json.dumps({"before": before, "held": held, "after": heap.resident_bytes()}))
"""


def test_giving_back_memory_returns_the_freed_heap_to_the_system() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's: on other C libraries give_back_freed does nothing")
    if not heap.resident_bytes():
        pytest.skip("no /proc/self/statm: resident memory cannot be measured here")
    environment = {**os.environ, "MALLOC_ARENA_MAX": "1"}  # as in a worker; the main thread's arena anyway
    probe = subprocess.run(
        [sys.executable, "-c", _HEAP_PROBE], capture_output=True, text=True, env=environment, timeout=60, check=True
    )
    figures = json.loads(probe.stdout)
    mb = 2**20
    assert figures["held"] - figures["before"] > 48 * mb, f"the freed blocks were not resident: {figures}"
    released = figures["held"] - figures["after"]
    assert released > 48 * mb, f"only {released / mb:.1f} MB of the ~64 MB freed went back to the system"


def test_long_lived_objects_leave_the_collector_and_their_cycles_are_collected_next_time() -> None:
    class Node:
        peer: Node

    try:
        node = Node()
        node.peer = node  # a cycle alive at the first exemption, dropped afterwards
        node_alive = weakref.ref(node)
        heap.exempt_long_lived_objects()
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert node_alive() is not None  # exempt: not even a full collection walks it
        heap.exempt_long_lived_objects()
        assert node_alive() is None  # the next exemption thaws it first, and collects it
    finally:
        gc.unfreeze()


def test_long_files_and_workers_over_the_idle_ceiling_are_trimmed_before_the_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[str] = []
    resident = [1000 * 2**20]
    monkeypatch.setattr(heap, "give_back_freed", lambda: trims.append("trim"))
    monkeypatch.setattr(heap, "resident_bytes", lambda: resident[0])

    assert heap.trim_after_job(heap.TRIM_AFTER_SECONDS, idle_limit_mb=0)  # a long file: always
    assert not heap.trim_after_job(5.0, idle_limit_mb=0)  # a short one: later, once idle (worker_main)
    assert not heap.trim_after_job(5.0, idle_limit_mb=1400)  # under the ceiling
    resident[0] = 1500 * 2**20
    assert heap.trim_after_job(5.0, idle_limit_mb=1400)  # over it: what the daemon checks must be trimmed
    assert trims == ["trim", "trim"]


def test_resident_memory_is_read_cheaply() -> None:
    assert heap.resident_bytes() > 10 * 2**20  # a Python interpreter with pytest loaded
