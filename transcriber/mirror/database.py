"""The only module that talks to PostgreSQL (psycopg 3 with a checked pool).

Every statement runs with a connect and a statement timeout, and any
failure to reach the server becomes :class:`DatabaseUnavailable`, so callers
(the mirror thread, the API) degrade instead of hanging.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from transcriber.errors import DatabaseUnavailable

log = logging.getLogger("Database")

MIGRATION_LOCK = 7_351_902  # pg_advisory_lock key: one migrator at a time
TERMINAL_STATUSES = ("completed", "error", "deleted")


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    filename: str
    status: str
    version: int
    source: str | None = None
    priority: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    max_attempts: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    audio_duration: float | None = None
    processing_time: float | None = None


@dataclass(frozen=True)
class TranscriptionRow:
    task_id: str
    language: str | None
    text: str
    segments: list[dict[str, Any]]
    confidence: float | None
    word_count: int
    model: str | None


@dataclass(frozen=True)
class EventRow:
    task_id: str | None
    filename: str | None
    event_time: datetime
    event_type: str
    status: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


_TASK_COLUMNS = (
    "task_id", "filename", "status", "source", "priority", "settings", "attempts", "max_attempts", "error_code",
    "error_message", "created_at", "started_at", "finished_at", "audio_duration", "processing_time", "version",
)
# A newer version wins; a field the newer write does not know (None) keeps
# its value, and attempts never go down.
_UPSERT_TASK = f"""
    INSERT INTO tasks ({", ".join(_TASK_COLUMNS)})
    VALUES ({", ".join("%s" for _ in _TASK_COLUMNS)})
    ON CONFLICT (task_id) DO UPDATE SET
        status = EXCLUDED.status,
        version = EXCLUDED.version,
        settings = COALESCE(NULLIF(EXCLUDED.settings, '{{}}'::jsonb), tasks.settings),
        attempts = GREATEST(EXCLUDED.attempts, tasks.attempts),
        {", ".join(f"{c} = COALESCE(EXCLUDED.{c}, tasks.{c})" for c in _TASK_COLUMNS
                   if c not in ("task_id", "status", "version", "settings", "attempts"))},
        updated_at = now()
    WHERE tasks.version < EXCLUDED.version
"""
_UPSERT_TRANSCRIPTION = """
    INSERT INTO transcriptions (task_id, language, text, segments, confidence, word_count, model)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (task_id) DO UPDATE SET language = EXCLUDED.language, text = EXCLUDED.text,
        segments = EXCLUDED.segments, confidence = EXCLUDED.confidence, word_count = EXCLUDED.word_count,
        model = EXCLUDED.model
"""
_INSERT_EVENT = """
    INSERT INTO task_events (task_id, filename, event_time, event_type, status, details)
    VALUES (%s, %s, %s, %s, %s, %s)
"""
_SEARCH = """
    WITH query AS (
        SELECT websearch_to_tsquery('russian', %(q)s) || websearch_to_tsquery('english', %(q)s) AS q
    )
    SELECT t.task_id::text, t.filename, t.status, t.finished_at, tr.language,
           ts_headline('russian', tr.text, query.q, 'MaxFragments=2, MaxWords=20, MinWords=5') AS snippet,
           ts_rank(tr.search, query.q) AS rank,
           COALESCE((
               SELECT jsonb_agg(jsonb_build_object('start', s->'start', 'end', s->'end', 'text', s->'text'))
               FROM jsonb_array_elements(tr.segments) AS s
               WHERE (to_tsvector('russian', s->>'text') || to_tsvector('english', s->>'text')) @@ query.q
           ), '[]'::jsonb) AS segments
    FROM transcriptions tr JOIN tasks t USING (task_id), query
    WHERE tr.search @@ query.q AND t.status <> 'deleted'
    ORDER BY rank DESC, t.finished_at DESC NULLS LAST
    LIMIT %(limit)s OFFSET %(offset)s
"""


class Database:
    def __init__(self, url: str, connect_timeout: float = 3.0, statement_timeout_ms: int = 5000,
                 pool_timeout: float = 3.0, on_unreachable: Callable[[], None] | None = None) -> None:
        """``on_unreachable`` is called as soon as one connection attempt fails, from the
        pool's thread: a caller waiting for a connection learns it only after ``pool_timeout``,
        and /health said "ok" for those seconds after PostgreSQL stopped (issue 13)."""
        self.pool_timeout = pool_timeout
        self.pool = ConnectionPool(
            url, min_size=1, max_size=4, open=False, timeout=pool_timeout, name="transcriber",
            check=ConnectionPool.check_connection, reconnect_timeout=0,
            reconnect_failed=(lambda _pool: on_unreachable()) if on_unreachable else None,
            kwargs={"connect_timeout": max(int(connect_timeout), 1),
                    "options": f"-c statement_timeout={statement_timeout_ms}"},
        )

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close(timeout=2.0)

    def _connection(self):  # type: ignore[no-untyped-def]
        return self.pool.connection(timeout=self.pool_timeout)

    def migrate(self) -> list[int]:
        """Apply the migrations not yet recorded in ``schema_migrations``; returns their versions."""
        try:
            with self._connection() as conn:
                conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
                try:
                    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                                 "version integer PRIMARY KEY, name text NOT NULL, "
                                 "applied_at timestamptz NOT NULL DEFAULT now())")
                    conn.commit()
                    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                    applied = []
                    for version, name, sql in available_migrations():
                        if version in done:
                            continue
                        with conn.transaction():
                            conn.execute(sql)  # type: ignore[arg-type]
                            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                                         (version, name))
                        log.info("Applied migration %03d %s", version, name)
                        applied.append(version)
                    return applied
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
                    conn.commit()
        except (psycopg.Error, PoolTimeout) as exc:
            raise DatabaseUnavailable(_describe(exc)) from exc

    def write(self, tasks: list[TaskRow], transcriptions: list[TranscriptionRow], events: list[EventRow]) -> None:
        """One transaction: task upserts (never backwards), transcriptions, events."""
        try:
            with self._connection() as conn, conn.transaction(), conn.cursor() as cursor:
                if tasks:
                    cursor.executemany(_UPSERT_TASK, [_task_values(row) for row in tasks])
                if transcriptions:
                    cursor.executemany(_UPSERT_TRANSCRIPTION, [
                        (r.task_id, r.language, r.text, Jsonb(r.segments), r.confidence, r.word_count, r.model)
                        for r in transcriptions
                    ])
                if events:
                    cursor.executemany(_INSERT_EVENT, [
                        (e.task_id, e.filename, e.event_time, e.event_type, e.status, Jsonb(e.details))
                        for e in events
                    ])
        except (psycopg.Error, PoolTimeout) as exc:
            raise DatabaseUnavailable(_describe(exc)) from exc

    def task_versions(self) -> dict[str, tuple[str, str, int]]:
        """task_id -> (filename, status, version) of every task not yet marked deleted."""
        rows = self._fetch("SELECT task_id::text, filename, status, version FROM tasks WHERE status <> 'deleted'")
        return {row["task_id"]: (row["filename"], row["status"], row["version"]) for row in rows}

    def list_tasks(self, status: str | None, since: datetime | None, until: datetime | None,
                   limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        where, params = ["TRUE"], {"limit": limit, "offset": offset}
        if status:
            where.append("status = %(status)s")
            params["status"] = status
        if since:
            where.append("created_at >= %(since)s")
            params["since"] = since
        if until:
            where.append("created_at < %(until)s")
            params["until"] = until
        condition = " AND ".join(where)
        total = self._fetch(f"SELECT count(*) AS n FROM tasks WHERE {condition}", params)[0]["n"]
        rows = self._fetch(
            f"SELECT task_id::text, filename, status, source, priority, settings, attempts, max_attempts, "
            f"error_code, error_message, created_at, started_at, finished_at, audio_duration, processing_time "
            f"FROM tasks WHERE {condition} ORDER BY created_at DESC NULLS LAST, task_id "
            f"LIMIT %(limit)s OFFSET %(offset)s", params)
        return total, rows

    def search(self, query: str, limit: int, offset: int) -> list[dict[str, Any]]:
        return self._fetch(_SEARCH, {"q": query, "limit": limit, "offset": offset})

    def _fetch(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        try:
            with self._connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
                cursor.execute(sql, params)  # type: ignore[arg-type]
                return cursor.fetchall()
        except (psycopg.Error, PoolTimeout) as exc:
            raise DatabaseUnavailable(_describe(exc)) from exc


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of the files ``migrations/NNN_name.sql``, in order."""
    folder = resources.files("transcriber.mirror") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name[:-4].partition("_")
            found.append((int(number), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def _task_values(row: TaskRow) -> tuple[Any, ...]:
    return (
        row.task_id, row.filename, row.status, row.source, row.priority, Jsonb(row.settings), row.attempts,
        row.max_attempts, row.error_code, row.error_message, row.created_at, row.started_at, row.finished_at,
        row.audio_duration, row.processing_time, row.version,
    )


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"
