"""The PostgreSQL mirror against a real server that the suite starts itself."""

from __future__ import annotations

import dataclasses
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.helpers import in_progress_of, result_of, wait_for, write_tone
from transcriber.domain import edits as corrections
from transcriber.domain.job import DELETED, JobStatus
from transcriber.domain.task_filter import TaskFilter
from transcriber.folder.layout import SharedFolder
from transcriber.mirror import database
from transcriber.mirror.database import Database, EventRow, TaskRow, TranscriptionRow, columns, listed_columns
from transcriber.scheduler.store import JobStore

# Every status the mirror writes: 002_status_check.sql's CHECK allows exactly these.
MIRROR_STATUSES = [*(status.value for status in JobStatus), DELETED]


def rows(url: str, sql: str, *params: object) -> list[dict]:
    """Query the mirror; empty until its first migration has run."""
    try:
        with psycopg.connect(url, row_factory=dict_row) as conn:
            return conn.execute(sql, params).fetchall()
    except psycopg.errors.UndefinedTable:
        return []


def task(url: str, filename: str) -> dict | None:
    found = rows(url, "SELECT * FROM tasks WHERE filename = %s ORDER BY version DESC", filename)
    return found[0] if found else None


def test_migrations_from_empty_and_again(database_url: str) -> None:
    db = Database(database_url)
    db.open()
    try:
        assert db.migrate() == [1, 2, 3, 4]
        assert db.migrate() == []
    finally:
        db.close()
    assert [r["version"] for r in rows(database_url, "SELECT version FROM schema_migrations ORDER BY version")] == [
        1, 2, 3, 4]
    tables = {r["tablename"] for r in rows(database_url, "SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"tasks", "transcriptions", "task_events", "schema_migrations"} <= tables


def insert_status(url: str, status: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO tasks (task_id, filename, status, version) VALUES (gen_random_uuid(), %s, %s, 1)",
                     (f"{status}.wav", status))


def test_the_status_check_allows_the_mirrors_statuses_and_refuses_any_other(database_url: str) -> None:
    db = Database(database_url)
    db.open()
    try:
        db.migrate()
    finally:
        db.close()
    for status in MIRROR_STATUSES:
        insert_status(database_url, status)
    for bad in ("bogus", "pending", "not_found", "COMPLETED", ""):
        with pytest.raises(psycopg.errors.CheckViolation, match="tasks_status_known"):
            insert_status(database_url, bad)
    assert sorted(r["status"] for r in rows(database_url, "SELECT status FROM tasks")) == sorted(MIRROR_STATUSES)


def test_later_migrations_apply_over_a_001_database_that_holds_rows(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    every = database.available_migrations()
    now = datetime.now(UTC)
    ids = {status: f"7d7c1a4e-{n:04d}-4222-8333-944444444444" for n, status in enumerate(MIRROR_STATUSES)}
    db = Database(database_url)
    db.open()
    try:
        monkeypatch.setattr(database, "available_migrations", lambda: every[:1])
        assert db.migrate() == [1]
        db.write([TaskRow(task_id, f"{status}.wav", status, 10, created_at=now) for status, task_id in ids.items()],
                 [], [EventRow(ids["error"], "error.wav", now, "error", "error", {"code": "engine_error"})])
        with psycopg.connect(database_url) as conn:  # a row of 001's own columns
            conn.execute("INSERT INTO transcriptions (task_id, text) VALUES (%s, 'kept')", (ids["completed"],))
        before = rows(database_url, "SELECT * FROM tasks ORDER BY task_id")
        monkeypatch.setattr(database, "available_migrations", lambda: every)
        assert db.migrate() == [2, 3, 4]
        assert db.migrate() == []
    finally:
        db.close()
    assert rows(database_url, "SELECT * FROM tasks ORDER BY task_id") == before and len(before) == len(ids)
    assert rows(database_url, "SELECT text, speakers, analysis, longest_silence_seconds FROM transcriptions") == [
        {"text": "kept", "speakers": [], "analysis": None, "longest_silence_seconds": None}]
    assert rows(database_url, "SELECT count(*) AS n FROM task_events")[0]["n"] == 1
    with pytest.raises(psycopg.errors.CheckViolation):
        insert_status(database_url, "bogus")


def every_field_set() -> TaskRow:
    """A TaskRow whose every field differs from its default (a new field must be given a value here)."""
    at = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=UTC)
    row = TaskRow(
        task_id="7d7c1a4e-5555-4222-8333-944444444444", filename="звонок 2026-11-24.mp3", status="error",
        version=1_790_000_000_123_456_789, source="api", priority=1,
        settings={"model_size": "base", "language": "ru", "temperature": 0.1}, attempts=2, max_attempts=3,
        error_code="engine_error", error_message="the engine failed", created_at=at,
        started_at=at + timedelta(seconds=1), finished_at=at + timedelta(seconds=9), audio_duration=61.5,
        processing_time=7.25,
    )
    for field in dataclasses.fields(TaskRow):
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        assert getattr(row, field.name) not in (None, default), f"give {field.name} a value that is not its default"
    return row


def test_every_task_row_field_round_trips_through_write_and_list_tasks(database_url: str) -> None:
    row = every_field_set()
    db = Database(database_url)
    db.open()
    try:
        db.migrate()
        db.write([row], [], [])
        total, listed = db.list_tasks(TaskFilter(), 10, 0)
        assert total == 1
        assert listed == [{**{name: getattr(row, name) for name in listed_columns(TaskRow)}, "speakers": []}]
        assert db.task_versions() == {row.task_id: (row.filename, row.status, row.version)}
        assert db.list_tasks(TaskFilter(status="error"), 10, 0)[0] == 1
        assert db.list_tasks(TaskFilter(status=""), 10, 0)[0] == 1  # an empty status does not filter
        assert db.list_tasks(TaskFilter(status="completed"), 10, 0) == (0, [])
        instant = TaskFilter(since=row.created_at, until=row.created_at + timedelta(microseconds=1))
        assert db.list_tasks(instant, 10, 0)[0] == 1
        assert db.list_tasks(TaskFilter(since=row.created_at + timedelta(microseconds=1)), 10, 0)[0] == 0
        assert db.list_tasks(TaskFilter(until=row.created_at), 10, 0)[0] == 0
        assert db.list_tasks(TaskFilter(), 10, 1) == (1, [])
    finally:
        db.close()
    stored = rows(database_url, "SELECT * FROM tasks")[0]
    assert {**stored, "task_id": str(stored["task_id"])} == {
        **{name: getattr(row, name) for name in columns(TaskRow)}, "updated_at": stored["updated_at"]}


def test_rows_for_completed_failed_retried_and_deleted_files(start_daemon, shared: Path, database_url: str) -> None:
    (shared / ".pause").touch()
    daemon = start_daemon({"database": {"url": database_url}, "processing": {"max_retry_attempts": 2}})
    write_tone(shared / "ok.wav", seconds=1.0)
    (shared / "broken.wav").write_text("not audio")
    write_tone(shared / "flaky--file.wav")
    write_tone(shared / "dropped.wav")
    wait_for(lambda: daemon.job("dropped.wav"), what="dropped.wav queued")
    daemon.cancel("dropped.wav")
    (shared / "dropped.wav").unlink()  # what DELETE /transcribe does after the cancel
    (shared / ".pause").unlink()
    wait_for(lambda: result_of(shared, "ok.wav"), what="ok.wav")
    wait_for(lambda: in_progress_of(shared / "manual_review", "flaky--file.wav"), what="flaky--file.wav in review")

    def converged() -> bool:
        wanted = {"ok.wav": "completed", "broken.wav": "error", "flaky--file.wav": "error", "dropped.wav": "deleted"}
        return all((t := task(database_url, name)) and t["status"] == status for name, status in wanted.items())

    try:
        wait_for(converged, what="the tables to converge")
    except AssertionError:
        raise AssertionError(rows(database_url, "SELECT filename, status, version FROM tasks")) from None
    ok = task(database_url, "ok.wav")
    assert ok["attempts"] == 1 and ok["audio_duration"] == 1.0 and ok["processing_time"] >= 0
    assert ok["settings"]["model_size"] == "base" and ok["finished_at"] is not None
    transcription = rows(database_url, "SELECT * FROM transcriptions WHERE task_id = %s", ok["task_id"])[0]
    assert transcription["text"] == "ok" and transcription["word_count"] == 1 and transcription["model"] == "base"
    assert transcription["segments"][0]["end"] == 1.0
    broken = task(database_url, "broken.wav")
    assert (broken["error_code"], broken["attempts"]) == ("audio_decode_failed", 1)
    flaky = task(database_url, "flaky--file.wav")
    assert (flaky["error_code"], flaky["attempts"]) == ("engine_error", 2)
    errors = rows(database_url, "SELECT * FROM task_events WHERE task_id = %s AND event_type = 'error' ORDER BY id",
                  flaky["task_id"])
    assert [e["details"]["attempt"] for e in errors] == [1, 2]
    assert [e["status"] for e in errors] == ["retry_wait", "error"]
    assert rows(database_url, "SELECT count(*) AS n FROM task_events WHERE event_type = 'engine_load'")[0]["n"] >= 1


def test_events_of_a_file_are_in_order(start_daemon, shared: Path, database_url: str) -> None:
    start_daemon({"database": {"url": database_url}})
    write_tone(shared / "ordered.wav")
    wait_for(lambda: (t := task(database_url, "ordered.wav")) and t["status"] == "completed")
    events = rows(database_url, "SELECT * FROM task_events WHERE filename = %s ORDER BY id", "ordered.wav")
    kinds = [(e["event_type"], e["status"]) for e in events]
    assert kinds == [("state_change", "queued"), ("state_change", "processing"), ("engine_run", "processing"),
                     ("state_change", "completed")], kinds
    times = [e["event_time"] for e in events]
    assert times == sorted(times)
    assert events[2]["details"]["outcome"] == "succeeded" and events[2]["details"]["seconds"] >= 0
    assert events[1]["details"] == {"from": "queued", "to": "processing", "attempt": 1}


def test_replayed_and_late_writes_never_move_a_task_backwards(database_url: str) -> None:
    db = Database(database_url)
    db.open()
    try:
        db.migrate()
        now = datetime.now(UTC)
        task_id = "7d7c1a4e-1111-4222-8333-944444444444"
        queued = TaskRow(task_id, "a.wav", "queued", version=100, created_at=now)
        done = TaskRow(task_id, "a.wav", "completed", version=300, attempts=1, finished_at=now)
        text = TranscriptionRow(task_id, "en", "hello there", [], 0.9, 2, "base")
        event = EventRow(task_id, "a.wav", now, "state_change", "completed")
        db.write([queued], [], [])
        db.write([done], [text], [event])
        db.write([done], [text], [])  # replay
        db.write([TaskRow(task_id, "a.wav", "processing", version=200, attempts=1)], [], [])  # late
        db.write([queued], [], [])  # very late
    finally:
        db.close()
    row = rows(database_url, "SELECT * FROM tasks")
    assert len(row) == 1 and row[0]["status"] == "completed" and row[0]["version"] == 300
    assert row[0]["created_at"] is not None  # kept from the first write
    assert rows(database_url, "SELECT count(*) AS n FROM transcriptions")[0]["n"] == 1


def test_outage_then_convergence(start_api, postgres_server, database_url: str) -> None:
    api = start_api({"database": {"url": database_url}})
    shared, daemon = api.shared, api.daemon
    write_tone(shared / "before.wav")
    wait_for(lambda: (t := task(database_url, "before.wav")) and t["status"] == "completed")
    assert api.client.get("/health").json()["database"] == "ok"
    postgres_server.stop()
    try:
        for name in ("during-1.wav", "during-2.wav", "gone.wav"):
            write_tone(shared / name)
        for name in ("during-1.wav", "during-2.wav", "gone.wav"):
            wait_for(lambda n=name: result_of(shared, n), what=f"{name} transcribed while the database is down")
        assert api.client.delete("/transcribe/gone.wav").status_code == 200
        (shared / "before.wav.result").unlink()  # a transcript removed by hand during the outage
        (shared / "before.wav").unlink()
        health = wait_for(lambda: (h := api.client.get("/health").json())["database"] == "down" and h)
        assert health["status"] == "healthy"  # transcription does not depend on the database
        assert health["database_sync"]["pending_changes"] > 0 and health["database_sync"]["sync_failures"] > 0
        unavailable = api.client.get("/tasks")
        assert unavailable.status_code == 503 and unavailable.json()["error_code"] == "database_unavailable"
        assert "transcriber_database_sync_failures_total" in api.client.get("/metrics").text
    finally:
        postgres_server.start()

    def converged() -> bool:
        statuses = {name: (t := task(database_url, name)) and t["status"]
                    for name in ("before.wav", "during-1.wav", "during-2.wav", "gone.wav")}
        return statuses == {"before.wav": "deleted", "during-1.wav": "completed", "during-2.wav": "completed",
                            "gone.wav": "deleted"}

    try:
        wait_for(converged, timeout=60, what="the tables to converge with the sidecars")
    except AssertionError:
        found = rows(database_url, "SELECT filename, status FROM tasks")
        raise AssertionError((found, daemon.mirror.health())) from None
    wait_for(lambda: api.client.get("/health").json()["database_sync"]["pending_changes"] == 0)
    for name in ("during-1.wav", "during-2.wav"):
        assert rows(database_url, "SELECT t.text FROM transcriptions t JOIN tasks USING (task_id) "
                                  "WHERE filename = %s", name)[0]["text"] == name[:-4]
    assert daemon.mirror.state == "ok"


def test_reconcile_at_start_picks_up_what_happened_while_the_mirror_was_off(
        start_daemon, shared: Path, database_url: str) -> None:
    daemon = start_daemon()  # no database
    write_tone(shared / "offline.wav")
    (shared / "bad.wav").write_text("x")
    wait_for(lambda: result_of(shared, "offline.wav"))
    wait_for(lambda: in_progress_of(shared / "manual_review", "bad.wav"))
    daemon.stop(0)
    start_daemon({"database": {"url": database_url}})
    wait_for(lambda: (t := task(database_url, "offline.wav")) and t["status"] == "completed")
    wait_for(lambda: (t := task(database_url, "bad.wav")) and t["status"] == "error")
    assert task(database_url, "bad.wav")["error_code"] == "audio_decode_failed"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("заказы", "клиент оформил заказом доставку.wav"),
        ("доставка", "клиент оформил заказом доставку.wav"),
        ("order", "shipping orders today.wav"),
        ("shipped", "shipping orders today.wav"),
    ],
)
def test_search_with_stemming_in_russian_and_english(start_api, database_url: str, query: str, expected: str) -> None:
    api = start_api({"database": {"url": database_url}})
    for name in ("клиент оформил заказом доставку.wav", "shipping orders today.wav", "unrelated words.wav"):
        write_tone(api.shared / name, seconds=2.0)
    wait_for(lambda: len(rows(database_url, "SELECT 1 FROM transcriptions")) == 3)
    response = api.client.get("/search", params={"q": query})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["filename"] for r in results] == [expected]
    assert "<b>" in results[0]["snippet"]
    assert results[0]["segments"] == [{"start": 0.0, "end": 2.0, "text": expected[:-4], "speaker": None,
                                       "speaker_name": None}]


def test_task_listing_filters_and_pages(start_api, database_url: str) -> None:
    api = start_api({"database": {"url": database_url}})
    for number in range(5):
        write_tone(api.shared / f"page-{number}.wav")
    (api.shared / "failed.wav").write_text("x")
    wait_for(lambda: len(rows(database_url, "SELECT 1 FROM tasks WHERE status IN ('completed', 'error')")) == 6)
    page = api.client.get("/tasks", params={"limit": 2, "offset": 0}).json()
    assert page["total"] == 6 and len(page["tasks"]) == 2
    second = api.client.get("/tasks", params={"limit": 2, "offset": 2}).json()
    assert {t["task_id"] for t in page["tasks"]}.isdisjoint({t["task_id"] for t in second["tasks"]})
    failed = api.client.get("/tasks", params={"status": "error"}).json()
    assert [t["filename"] for t in failed["tasks"]] == ["failed.wav"]
    assert failed["tasks"][0]["error_code"] == "audio_decode_failed"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert api.client.get("/tasks", params={"since": future}).json()["total"] == 0
    assert api.client.get("/tasks", params={"limit": 0}).status_code == 422
    for status in ("finished", "error\x00", "COMPLETED"):  # not a status: a 422, never the database's error
        assert api.client.get("/tasks", params={"status": status}).status_code == 422, status


def test_speakers_are_mirrored_and_filter_tasks_and_search(start_api, database_url: str) -> None:
    api = start_api({"database": {"url": database_url}, "whisperx": {"diarize": True}})
    write_tone(api.shared / "caller asks dispatcher answers.wav", seconds=2.0)
    wait_for(lambda: len(rows(database_url, "SELECT 1 FROM transcriptions")) == 1)
    stored = rows(database_url, "SELECT speakers FROM transcriptions")[0]["speakers"]
    assert [s["id"] for s in stored] == ["SPEAKER_00", "SPEAKER_01"] and stored[1]["talk_seconds"] == 1.0
    listed = api.client.get("/tasks", params={"speakers": 2}).json()
    assert [t["speakers"] for t in listed["tasks"]] == [["SPEAKER_00", "SPEAKER_01"]]
    assert api.client.get("/tasks", params={"speaker": "SPEAKER_01"}).json()["total"] == 1
    assert api.client.get("/tasks", params={"speaker": "SPEAKER_02"}).json()["total"] == 0
    assert api.client.get("/tasks", params={"speakers": 1}).json()["total"] == 0
    assert api.client.get("/tasks", params={"speaker": "<script>"}).status_code == 422
    hits = api.client.get("/search", params={"q": "dispatcher", "speaker": "SPEAKER_01"}).json()["results"]
    assert [h["segments"] for h in hits] == [[{"start": 1.0, "end": 2.0, "text": "dispatcher answers",
                                               "speaker": "SPEAKER_01", "speaker_name": None}]]
    assert api.client.get("/search", params={"q": "dispatcher", "speaker": "SPEAKER_00"}).json()["results"] == []


def write_tones_with_pause(path: Path, tone: float, pause: float, rate: int = 16_000) -> Path:
    """A WAV file: a tone, ``pause`` seconds of silence, the tone again (the fake engine's speech: the tones)."""
    sine = (8000 * np.sin(2 * np.pi * 440 * np.arange(int(tone * rate)) / rate)).astype("<i2")
    samples = np.concatenate([sine, np.zeros(int(pause * rate), "<i2"), sine])
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return path


def test_call_facts_are_mirrored_and_tasks_filter_on_the_longest_silence(start_api, database_url: str) -> None:
    api = start_api({"database": {"url": database_url}, "analysis": {"min_silence_seconds": 2.5}})
    write_tones_with_pause(api.shared / "long pause.wav", tone=1.0, pause=4.0)
    write_tones_with_pause(api.shared / "short pause.wav", tone=1.0, pause=1.0)
    wait_for(lambda: len(rows(database_url, "SELECT 1 FROM transcriptions")) == 2)
    stored = {r["filename"]: r for r in rows(database_url, "SELECT filename, analysis, speech_seconds, "
                                              "longest_silence_seconds FROM transcriptions JOIN tasks USING (task_id)")}
    long_pause = stored["long pause.wav"]
    assert long_pause["analysis"] == result_of(api.shared, "long pause.wav")["analysis"]
    assert long_pause["analysis"]["silence_marks"] == [{"start": 1.0, "end": 5.0, "seconds": 4.0}]
    assert long_pause["analysis"]["min_silence_seconds"] == 2.5
    assert (long_pause["speech_seconds"], long_pause["longest_silence_seconds"]) == (2.0, 4.0)
    assert (stored["short pause.wav"]["speech_seconds"], stored["short pause.wav"]["longest_silence_seconds"]) == (
        2.0, 1.0)
    assert stored["short pause.wav"]["analysis"]["silence_marks"] == []

    def filenames(**params: object) -> list[str]:
        response = api.client.get("/tasks", params=params)
        assert response.status_code == 200, response.text
        return sorted(t["filename"] for t in response.json()["tasks"])

    assert filenames(min_silence=3) == filenames(min_silence=4) == ["long pause.wav"]
    assert filenames(min_silence=4.01) == []
    assert filenames(min_silence=0.5) == filenames() == ["long pause.wav", "short pause.wav"]
    for bad in ("-1", "soon", "nan", "inf"):
        assert api.client.get("/tasks", params={"min_silence": bad}).status_code == 422, bad


def test_queries_answer_503_when_the_mirror_is_off(start_api) -> None:
    api = start_api()
    for path, params in (("/tasks", {}), ("/search", {"q": "x"})):
        response = api.client.get(path, params=params)
        assert response.status_code == 503
        assert response.json()["error_code"] == "database_unavailable"
        assert "database.url" in response.json()["message"]
    assert api.client.get("/health").json()["database"] == "disabled"


def test_corrections_reach_search_and_the_speaker_filters(start_api, database_url: str) -> None:
    api = start_api({"database": {"url": database_url}, "whisperx": {"diarize": True}})
    name = "caller asks dispatcher answers.wav"
    write_tone(api.shared / name, seconds=2.0)
    wait_for(lambda: len(rows(database_url, "SELECT 1 FROM transcriptions")) == 1)
    saved = api.client.put(f"/edits/{name}", json={
        "version": 0, "speakers": {"SPEAKER_01": "Диспетчер"}, "segments": {"1": {"text": "operator replies"}}})
    assert saved.status_code == 200, saved.text

    def found(q: str, **params: str) -> list[dict]:
        return api.client.get("/search", params={"q": q, **params}).json()["results"]

    wait_for(lambda: found("operator"), what="the corrected text in the mirror")
    assert found("dispatcher") == []  # the machine's word is no longer what people read
    hits = found("operator", speaker="Диспетчер")
    assert [h["segments"] for h in hits] == [[{"start": 1.0, "end": 2.0, "text": "operator replies",
                                               "speaker": "SPEAKER_01", "speaker_name": "Диспетчер"}]]
    assert api.client.get("/tasks", params={"speaker": "Диспетчер"}).json()["total"] == 1
    events = rows(database_url, "SELECT event_type, details FROM task_events WHERE event_type = 'edited'")
    assert [e["details"]["version"] for e in events] == [1]
    # Corrections saved while the daemon was away are mirrored by the reconciliation at start.
    api.daemon.stop(grace_seconds=0)
    store = JobStore(SharedFolder(api.shared, ()), 2)
    store.save_edits(name, corrections.parse({"segments": {"0": {"text": "customer phones"}}},
                                             result_of(api.shared, name)), 1, result_of(api.shared, name)["task_id"])
    again = start_api({"database": {"url": database_url}, "whisperx": {"diarize": True}})
    wait_for(lambda: again.client.get("/search", params={"q": "customer"}).json()["results"],
             what="the corrections saved while away, mirrored at start")
