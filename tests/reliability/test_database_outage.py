"""Scenario 7: PostgreSQL goes away mid-run, under load, and comes back.

The promise (docs/RELIABILITY.md): "a database outage never stops transcription or the
API; on reconnect the mirror reconciles from the sidecars".  Here files keep
arriving (by the watcher and by ``POST /transcribe``) before, during and after
the outage while a prober hits ``GET /status`` and ``GET /health`` the whole
time.  It proves that

- every file is transcribed, on its first attempt, database or not;
- every probe is answered ``200``: ``/health`` reports ``database: down`` with
  ``status: healthy`` during the outage (the folder, not the database, is what
  transcription needs; docs/API.md), and ``database: ok`` after;
- after the restart the tables converge with the folder: one ``tasks`` row
  per file, ``completed``, with the task id of its ``.result``, a
  ``transcriptions`` row with its text, a ``completed`` event, nothing left in
  a non-final state, and the mirror's buffer drained.

tests/integration/test_mirror.py has the quiet version (three files, a clean
``fast`` shutdown, deletes while away).  This one stops the server with
``pg_ctl -m immediate`` (a crash: open transactions are cut off mid-write) and
uses a server of its own, so the session's shared server is never disturbed.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.helpers import result_of, wait_for, write_tone
from tests.postgres import PostgresServer, _as_postgres, _bin

DROP_INTERVAL_SECONDS = 0.3
OUTAGE_MIN_SECONDS = 6.0  # long enough for the mirror's retry back-off to reach its 5 s step
FILES_DURING_OUTAGE = 8


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test alone: stopping it disturbs no other test."""
    server = PostgresServer()
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.remove()


def crash(server: PostgresServer) -> None:
    """Stop the server the hard way: no checkpoint, open transactions cut off."""
    subprocess.run(_as_postgres([_bin("pg_ctl"), "-D", str(server.data), "-m", "immediate", "-w", "stop"]),
                   check=True, capture_output=True)


def rows(url: str, sql: str, *params: object) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


@dataclass
class Traffic:
    """Files dropped into the folder (every 4th also requested through the API),
    and every probe of ``/status`` and ``/health`` with what it answered."""

    shared: Path
    base_url: str
    dropped: list[str] = field(default_factory=list)
    submissions: list[tuple[str, int]] = field(default_factory=list)
    probes: list[tuple[float, str, int, dict]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    failures: list[BaseException] = field(default_factory=list)

    def run(self, target: Callable[[], None]) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 -- reported by the test, not lost in a thread
                self.failures.append(exc)

        thread = threading.Thread(target=guarded, daemon=True)
        thread.start()
        return thread

    def produce(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            number = 0
            while not self.stop.is_set():
                name = f"{'api' if number % 4 == 3 else 'drop'}-{number:03d}.wav"
                write_tone(self.shared / name, seconds=0.5)
                self.dropped.append(name)
                if name.startswith("api"):
                    response = client.post("/transcribe", json={"filename": name})
                    self.submissions.append((name, response.status_code))
                number += 1
                self.stop.wait(DROP_INTERVAL_SECONDS)

    def probe(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self.stop.is_set():
                for name in self.dropped[-3:]:
                    response = client.get(f"/status/{name}")
                    self.probes.append((time.monotonic(), "status", response.status_code, response.json()))
                response = client.get("/health")
                self.probes.append((time.monotonic(), "health", response.status_code, response.json()))
                self.stop.wait(0.1)

    def completed(self) -> list[str]:
        return [name for name in list(self.dropped) if result_of(self.shared, name)]


def test_postgres_outage_under_load_changes_nothing_but_the_health_report(start_api, own_postgres) -> None:
    url = own_postgres.url()
    api = start_api({"database": {"url": url}})
    shared, daemon = api.shared, api.daemon
    wait_for(lambda: daemon.mirror.state == "ok", timeout=60, what="the mirror to connect")
    traffic = Traffic(shared, str(api.client.base_url))
    threads = [traffic.run(traffic.produce), traffic.run(traffic.probe)]
    try:
        wait_for(lambda: len(rows(url, "SELECT 1 FROM tasks WHERE status = 'completed'")) >= 3, timeout=60,
                 what="some files mirrored before the outage")
        crash(own_postgres)
        outage_started = time.monotonic()
        completed_before = len(traffic.completed())
        try:
            wait_for(lambda: daemon.mirror.state == "down", timeout=60, what="the mirror to notice the outage")
            wait_for(lambda: len(traffic.completed()) >= completed_before + FILES_DURING_OUTAGE, timeout=120,
                     what="files transcribed during the outage")
            wait_for(lambda: time.monotonic() - outage_started >= OUTAGE_MIN_SECONDS, timeout=60)
            during = api.client.get("/tasks")
            assert during.status_code == 503 and during.json()["error_code"] == "database_unavailable"
        finally:
            outage_ended = time.monotonic()
            own_postgres.start()
        time.sleep(2.0)  # a few more files after the restart
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(60)
    assert not traffic.failures, traffic.failures

    dropped = list(traffic.dropped)
    results = {name: wait_for(lambda n=name: result_of(shared, n), timeout=120, what=f"{name} transcribed")
               for name in dropped}
    assert all(r["transcription"]["text"] == name[:-4] for name, r in results.items())
    assert all(r["metadata"]["attempts"] == 1 for r in results.values()), "the outage cost an attempt"
    # The last .result may have just been written: its .in_progress goes a moment later.
    wait_for(lambda: list(shared.glob("*.in_progress")) == [], timeout=10, what="no .in_progress left")
    assert list((shared / "manual_review").iterdir()) == []
    assert traffic.submissions and all(code in (200, 202) for _, code in traffic.submissions), traffic.submissions

    # The API answered every probe, and said what was going on.
    assert traffic.probes and all(code == 200 for _, _, code, _ in traffic.probes), [
        (kind, code, body) for _, kind, code, body in traffic.probes if code != 200][:5]
    health_during = [body for at, kind, _, body in traffic.probes
                     if kind == "health" and outage_started < at < outage_ended]
    assert any(h["database"] == "down" for h in health_during), "the outage never showed in /health"
    assert all(h["status"] == "healthy" for h in health_during)
    assert any(h["database_sync"]["sync_failures"] > 0 for h in health_during)

    def converged() -> bool:
        found = rows(url, "SELECT task_id::text AS task_id, filename, status FROM tasks")
        return sorted((r["filename"], r["task_id"], r["status"]) for r in found) == sorted(
            (name, result["task_id"], "completed") for name, result in results.items())

    try:
        wait_for(converged, timeout=120, interval=0.5, what="the tables to converge with the sidecars")
    except AssertionError:
        found = rows(url, "SELECT filename, status FROM tasks WHERE status <> 'completed'")
        raise AssertionError((len(dropped), found, daemon.mirror.health())) from None
    texts = {r["filename"]: r["text"] for r in rows(
        url, "SELECT t.filename, tr.text FROM tasks t JOIN transcriptions tr USING (task_id)")}
    assert texts == {name: name[:-4] for name in dropped}
    completed_events = {r["filename"] for r in rows(
        url, "SELECT DISTINCT filename FROM task_events WHERE event_type = 'state_change' AND status = 'completed'")}
    assert completed_events == set(dropped), "events buffered during the outage were lost"
    health = wait_for(lambda: (h := api.client.get("/health")).json()["database_sync"]["pending_changes"] == 0
                      and h, timeout=60, what="the mirror's buffer to drain")
    assert health.status_code == 200 and health.json()["database"] == "ok"
    assert api.client.get("/tasks", params={"limit": 1}).json()["total"] == len(dropped)
