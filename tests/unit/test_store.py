from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.helpers import write_tone
from transcriber.config import DEFAULT_AUDIO_EXTENSIONS
from transcriber.domain.job import Source, fail_attempt, new_job, start_attempt
from transcriber.domain.settings import TranscriptionSettings
from transcriber.errors import AudioDecodeError
from transcriber.folder.layout import SharedFolder
from transcriber.scheduler.events import JobEvent
from transcriber.scheduler.store import JobStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_store(tmp_path: Path) -> tuple[JobStore, list[JobEvent]]:
    folder = SharedFolder(tmp_path, DEFAULT_AUDIO_EXTENSIONS)
    folder.prepare()
    store = JobStore(folder)
    events: list[JobEvent] = []
    store.add_listener(events.append)
    return store, events


def test_a_dropped_job_cannot_be_brought_back_by_a_late_write(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path)
    write_tone(tmp_path / "a.wav")
    job = store.add(new_job("a.wav", TranscriptionSettings("base", "ru", 0.1, "int8", "cpu"), Source.SCAN, 3, NOW))
    store.drop(job, "cancelled")
    assert store.save(start_attempt(job, NOW)) is None
    assert not (tmp_path / "a.wav.in_progress").exists()
    store.complete(start_attempt(job, NOW), {"late": True})
    assert not (tmp_path / "a.wav.result").exists()
    failed = fail_attempt(start_attempt(job, NOW), AudioDecodeError("x"), NOW, None)
    assert store.quarantine(failed) is None
    assert (tmp_path / "a.wav").exists()


def test_listeners_hear_every_change_and_a_failing_listener_breaks_nothing(tmp_path: Path) -> None:
    store, events = make_store(tmp_path)

    def broken(_event: JobEvent) -> None:
        raise RuntimeError("mirror down")

    store.add_listener(broken)
    write_tone(tmp_path / "a.wav")
    job = store.add(new_job("a.wav", TranscriptionSettings("base", "ru", 0.1, "int8", "cpu"), Source.SCAN, 3, NOW))
    running = store.save(start_attempt(job, NOW))
    store.complete(running, {"task_id": job.task_id})
    assert [e.event for e in events] == ["saved", "saved", "completed"]
    assert events[-1].result == {"task_id": job.task_id}
    assert (tmp_path / "a.wav.result").exists() and not (tmp_path / "a.wav.in_progress").exists()


def test_reading_a_job_never_waits_for_a_write_in_progress(tmp_path: Path) -> None:
    """GET /status reads the job table while a slot holds the store's lock through an fsync."""
    import threading

    store, _ = make_store(tmp_path)
    write_tone(tmp_path / "a.wav")
    job = store.add(new_job("a.wav", TranscriptionSettings("base", "ru", 0.1, "int8", "cpu"), Source.SCAN, 3, NOW))
    holding, release = threading.Event(), threading.Event()

    def write_slowly() -> None:
        with store.locked():
            holding.set()
            release.wait(10)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        assert holding.wait(5)
        read: list[object] = []
        reader = threading.Thread(target=lambda: read.append(store.get("a.wav")))
        reader.start()
        reader.join(2)
        assert read == [job]  # answered while the lock is held
    finally:
        release.set()
        writer.join()


def test_debug_is_recorded_with_the_settings_but_is_not_one(tmp_path: Path) -> None:
    from transcriber.folder import sidecars

    store, _ = make_store(tmp_path)
    write_tone(tmp_path / "a.wav")
    settings = TranscriptionSettings("base", "ru", 0.1, "int8", "cpu")
    store.add(new_job("a.wav", settings, Source.API, 3, NOW, debug=True))
    document = sidecars.read_json(tmp_path / "a.wav.in_progress")
    assert document is not None and document["settings"] == {**settings.to_dict(), "debug": True}
    back = sidecars.read_in_progress(tmp_path / "a.wav")
    assert back is not None and back.debug is True and back.settings == settings
