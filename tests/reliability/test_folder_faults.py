"""Hostile folders: lost events and slow, interrupted or renamed copies (docs/RELIABILITY.md).

Promises proved here, on a real folder with the real watcher, queue, slots and
worker processes, and the fake engine (whose segment ends at the decoded
clip's length, so a result tells how much of a file was transcribed):

- **Events are hints, the scan is the detector.** 2,000 files dropped in one
  burst while filesystem events are lost (an inotify queue of one event, so
  it overflows) or off altogether (a polling observer that never polls
  during the test) are all found by the rescan and each transcribed exactly
  once, by two slots: 2,000 results, one attempt each, no leftovers.
- **A slow copy is transcribed once, after it ends**: a file held open and
  written in pieces for 10 s, never quiet for the 2 s stability window.
- **A result always reflects the final file.** A copy that stops half-way
  looks complete once it has been quiet for the window, so the half is
  transcribed; when the copy resumes, the changed file is transcribed again
  and its result replaces the half one, whether the half had finished or was
  still being transcribed.  A file appended to in separate writes (each
  closing it) likewise ends with the result of the whole file.
- **A file written under a temporary name** (``.part``, ``.tmp``, rsync's
  ``.name.XXXXXX``) is ignored until it is renamed into place, then
  transcribed exactly once, in full.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import result_of, wait_for, wait_for_rescans, write_tone
from transcriber.domain.job import Stage
from transcriber.scheduler.daemon import Daemon
from transcriber.scheduler.events import JobEvent

FLOOD_FILES = 2000
INOTIFY_QUEUE = Path("/proc/sys/fs/inotify/max_queued_events")
STABILITY_SECONDS = 2.0
RESCAN_SECONDS = 1.0


class Runs:
    """Counts, per file, engine runs and completions, from the daemon's own event stream."""

    def __init__(self) -> None:
        self.engine = Counter[str]()
        self.completed = Counter[str]()

    def __call__(self, event: JobEvent) -> None:
        if event.job is not None and event.event == "engine_run":
            self.engine[event.job.filename] += 1
        elif event.job is not None and event.event == "completed":
            self.completed[event.job.filename] += 1


def _watched(start_daemon, overrides: dict | None = None) -> tuple[Daemon, Runs]:
    daemon = start_daemon(overrides)
    runs = Runs()
    daemon.store.add_listener(runs)
    return daemon, runs


def _sidecars(folder: Path, suffix: str) -> list[str]:
    return sorted(p.name for p in folder.rglob(f"*{suffix}"))


def _settle(daemon: Daemon, runs: Runs) -> tuple[Counter[str], Counter[str]]:
    """Wait until nothing is queued, then two more rescans; what ran must not change meanwhile."""
    wait_for(lambda: not daemon.store.active(), timeout=60, what="an idle daemon")
    before = (runs.engine.copy(), runs.completed.copy())
    wait_for_rescans(daemon.watcher)
    assert not daemon.store.active(), "a file was queued again"
    assert (runs.engine, runs.completed) == before, "a file was transcribed again"
    return before


# -- 4. event flood --------------------------------------------------------------


def _inotify_queue_writable() -> bool:
    try:
        with INOTIFY_QUEUE.open("r+"):
            return True
    except OSError:
        return False


@contextmanager
def _inotify_queue_limit(events: int) -> Iterator[None]:
    """Lower the kernel's per-instance inotify queue for instances created
    inside the block (the limit is copied at ``inotify_init``), then restore it
    at once: the setting is machine-wide."""
    saved = INOTIFY_QUEUE.read_text()
    INOTIFY_QUEUE.write_text(f"{events}\n")
    try:
        yield
    finally:
        INOTIFY_QUEUE.write_text(saved)


@pytest.mark.slow
def test_a_burst_of_2000_files_with_lost_events_is_found_by_the_rescan_and_done_once(
    start_daemon, shared: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    lose_events = _inotify_queue_writable()  # root on Linux; else events are switched off instead
    watch = {"observer": "inotify"} if lose_events else {"observer": "polling", "polling_interval_seconds": 3600}
    daemon, runs = _watched(start_daemon, {
        "watch": {**watch, "rescan_interval_seconds": 2.0},
        "processing": {"max_concurrent_tasks": 2},  # two slots racing for the same queue
        "logging": {"level": "INFO"},
    })
    if lose_events:
        daemon.watcher.stop()  # a new observer on a one-event queue: a burst overflows it
        with _inotify_queue_limit(1):
            daemon.watcher.start()
    audio = write_tone(shared.parent / "tiny.wav", seconds=0.1).read_bytes()
    names = [f"burst-{n:04d}.wav" for n in range(FLOOD_FILES)]
    caplog.set_level(logging.WARNING, logger="watchdog")
    for name in names:
        (shared / name).write_bytes(audio)

    started = time.monotonic()
    wait_for(lambda: len(runs.completed) == FLOOD_FILES, timeout=540, interval=1.0, what="2,000 results")
    elapsed = time.monotonic() - started
    engine, completed = _settle(daemon, runs)

    if lose_events:
        assert any("overflowed" in r.getMessage() for r in caplog.records), "inotify never overflowed"
    assert completed == Counter(dict.fromkeys(names, 1))
    assert engine == Counter(dict.fromkeys(names, 1))
    assert _sidecars(shared, ".result") == sorted(f"{n}.result" for n in names)
    assert _sidecars(shared, ".in_progress") == []
    assert list((shared / "manual_review").iterdir()) == []
    for name in names[:: FLOOD_FILES // 50]:  # a sample of the documents themselves
        result = result_of(shared, name)
        assert result["metadata"]["attempts"] == 1
        assert result["transcription"]["text"] == name.removesuffix(".wav")
    print(f"{FLOOD_FILES} files, events {'lost' if lose_events else 'off'}: all done in {elapsed:.0f} s")


# -- 5. slow and interrupted copies ------------------------------------------------


def test_a_copy_written_in_pieces_for_10_s_is_transcribed_once_after_it_ends(
    start_daemon, shared: Path, tmp_path: Path,
) -> None:
    daemon, runs = _watched(start_daemon, {"watch": {"stability_seconds": STABILITY_SECONDS}})
    source = write_tone(tmp_path / "source.wav", seconds=6.0).read_bytes()
    name = "slow-link.wav"
    pieces = 14  # ~0.7 s apart: ~10 s of writing, never quiet for the window
    size = -(-len(source) // pieces)
    with (shared / name).open("wb") as handle:  # one writer holding the file, as cp, scp or SMB do
        for start in range(0, len(source), size):
            handle.write(source[start:start + size])
            handle.flush()
            time.sleep(0.5 + 0.4 * (start // size % 2))
            assert daemon.job(name) is None and result_of(shared, name) is None, "taken while being written"
    result = wait_for(lambda: result_of(shared, name), timeout=60, what="the result")
    assert result["duration_seconds"] == 6.0
    assert result["transcription"]["segments"][-1]["end"] == 6.0
    assert result["metadata"]["attempts"] == 1
    engine, completed = _settle(daemon, runs)
    assert engine == completed == Counter({name: 1})
    assert _sidecars(shared, ".result") == [f"{name}.result"]


@pytest.mark.parametrize("resumed", ["after the half was transcribed", "while the half was being transcribed"])
def test_a_copy_resumed_after_a_long_pause_ends_with_the_result_of_the_whole_file(
    start_daemon, shared: Path, tmp_path: Path, resumed: str,
) -> None:
    daemon, runs = _watched(start_daemon, {"watch": {"stability_seconds": STABILITY_SECONDS}})
    source = write_tone(tmp_path / "source.wav", seconds=4.0).read_bytes()
    half = len(source) // 2
    # The fake engine takes 3 s over a slow-- file: time to resume the copy while it runs.
    name = "resumed.wav" if resumed.startswith("after") else "slow--resumed.wav"
    target = shared / name
    target.write_bytes(source[:half])  # the copy stops half-way; its writer closed the file
    stopped = time.monotonic()

    if resumed.startswith("after"):
        # Quiet for longer than the window, the half looks complete: it is transcribed, unavoidably.
        first = wait_for(lambda: result_of(shared, name), timeout=60, what="the half file's result")
        assert first["duration_seconds"] == pytest.approx(2.0, abs=0.01)
        time.sleep(max(0.0, 5 * STABILITY_SECONDS - (time.monotonic() - stopped)))  # a long pause
    else:
        wait_for(lambda: (j := daemon.job(name)) and j.progress.stage is Stage.TRANSCRIBING,
                 timeout=60, what="the half file being transcribed")
    with target.open("ab") as handle:  # the copy resumes where it stopped
        for start in range(half, len(source), 16_000):
            handle.write(source[start:start + 16_000])
            handle.flush()
            time.sleep(0.3)

    final = wait_for(lambda: (r := result_of(shared, name)) and r["duration_seconds"] == 4.0 and r,
                     timeout=90, what="the result of the whole file")
    assert final["transcription"]["segments"][-1]["end"] == 4.0
    assert final["metadata"]["attempts"] == 1
    engine, completed = _settle(daemon, runs)
    assert engine == completed == Counter({name: 2}), "the half, then the whole, and nothing more"
    assert result_of(shared, name) == final
    assert _sidecars(shared, ".result") == [f"{name}.result"]
    assert _sidecars(shared, ".in_progress") == []


def test_a_file_appended_in_separate_writes_ends_with_the_result_of_the_whole_file(
    start_daemon, shared: Path, tmp_path: Path,
) -> None:
    """Each append closes the file, which may pass for a finished copy (``close_settle_seconds``):
    parts of it may be transcribed on the way, but the last result is of the whole file."""
    daemon, runs = _watched(start_daemon, {"watch": {"stability_seconds": STABILITY_SECONDS}})
    source = write_tone(tmp_path / "source.wav", seconds=5.0).read_bytes()
    name = "appended.wav"
    size = -(-len(source) // 8)
    for start in range(0, len(source), size):
        with (shared / name).open("ab") as handle:
            handle.write(source[start:start + size])
        time.sleep(0.8)
    final = wait_for(lambda: (r := result_of(shared, name)) and r["duration_seconds"] == 5.0 and r,
                     timeout=90, what="the result of the whole file")
    assert final["metadata"]["attempts"] == 1
    engine, completed = _settle(daemon, runs)
    assert engine == completed and completed[name] >= 1
    assert result_of(shared, name) == final
    assert _sidecars(shared, ".result") == [f"{name}.result"]


def test_a_result_that_does_not_say_what_it_was_made_from_is_left_alone(start_daemon, shared: Path) -> None:
    """Results from before ``metadata.audio_file`` existed (or written by hand) are trusted, as they always were."""
    write_tone(shared / "legacy.wav", seconds=1.0)
    (shared / "legacy.wav.result").write_text('{"task_id": "kept", "metadata": {"attempts": 1}}')
    daemon, runs = _watched(start_daemon)
    with (shared / "legacy.wav").open("ab") as handle:  # changed after its result
        handle.write(b"\0" * 3200)
    wait_for_rescans(daemon.watcher)  # the change was seen
    _settle(daemon, runs)
    assert runs.engine == Counter()
    assert result_of(shared, "legacy.wav")["task_id"] == "kept"


def test_files_written_under_temporary_names_are_transcribed_once_after_the_rename(
    start_daemon, shared: Path, tmp_path: Path,
) -> None:
    daemon, runs = _watched(start_daemon, {"watch": {"stability_seconds": STABILITY_SECONDS}})
    source = write_tone(tmp_path / "source.wav", seconds=3.0).read_bytes()
    half = len(source) // 2
    uploads = {  # temporary name -> final name
        "browser.wav.part": "browser.wav", "script.wav.tmp": "script.wav", ".rsync.wav.Xy12Ab": "rsync.wav",
    }
    for temporary in uploads:
        (shared / temporary).write_bytes(source[:half])
    time.sleep(2.5 * STABILITY_SECONDS)  # half-written, and quiet for longer than the window
    for temporary in uploads:
        with (shared / temporary).open("ab") as handle:
            handle.write(source[half:])
    wait_for_rescans(daemon.watcher)
    assert daemon.store.active() == [], "a temporary name was taken"
    assert _sidecars(shared, ".result") == [] and _sidecars(shared, ".in_progress") == []

    for temporary, final in uploads.items():
        (shared / temporary).rename(shared / final)
    for final in uploads.values():
        result = wait_for(lambda f=final: result_of(shared, f), timeout=60, what=f"the result of {final}")
        assert result["duration_seconds"] == 3.0
        assert result["metadata"]["attempts"] == 1
    engine, completed = _settle(daemon, runs)
    assert engine == completed == Counter(dict.fromkeys(uploads.values(), 1))
    assert _sidecars(shared, ".result") == sorted(f"{final}.result" for final in uploads.values())
