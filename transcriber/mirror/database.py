"""The only module that talks to PostgreSQL (psycopg 3 with a checked pool).

Every statement runs with a connect and a statement timeout, and any
failure to reach the server becomes :class:`DatabaseUnavailable`, so callers
(the mirror thread, the API) degrade instead of hanging.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from transcriber.domain.task_filter import TaskFilter
from transcriber.errors import DatabaseUnavailable

log = logging.getLogger("Database")

MIGRATION_LOCK = 7_351_902  # pg_advisory_lock key: one migrator at a time

# The metadata of a TaskRow field that GET /tasks does not show (TaskSummary leaves it out).
INTERNAL = {"internal": True}


# The row dataclasses are the one definition of their tables' columns (docs/CONFIGURATION.md, database):
# queries.sql's column lists and value parameters are filled in from their fields,
# and the values written are the fields. A new column is a field here plus a
# migration that adds it (and, unless INTERNAL, a field of api/schemas.py's
# TaskSummary: tests/unit/test_queries.py fails while the two disagree).


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    filename: str
    status: str
    version: int = field(metadata=INTERNAL)  # nanoseconds of the change: an older write is ignored
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
    speakers: list[dict[str, Any]] = field(default_factory=list)  # transcription.speakers
    analysis: dict[str, Any] | None = None  # the .result's analysis (None: a result from before it)
    speech_seconds: float | None = None  # analysis.speech_seconds
    longest_silence_seconds: float | None = None  # analysis.longest_silence_seconds, for GET /tasks?min_silence=


@dataclass(frozen=True)
class EventRow:
    task_id: str | None
    filename: str | None
    event_time: datetime
    event_type: str
    status: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


# What GET /tasks lists besides the task's row, from its transcript (queries.sql, list_tasks).
LISTED_FROM_TRANSCRIPT = ("speakers",)

# queries.sql's placeholders name a row by these prefixes: {task_columns}, {event_values}, ...
ROW_TYPES: dict[str, type] = {"task": TaskRow, "transcription": TranscriptionRow, "event": EventRow}


def columns(row_type: type) -> list[str]:
    """The columns of a row type's table that the mirror writes: its fields, in order."""
    return [f.name for f in fields(row_type)]


def listed_columns(row_type: type) -> list[str]:
    """The columns a listing shows: all but the fields marked :data:`INTERNAL`."""
    return [f.name for f in fields(row_type) if not f.metadata.get("internal")]


def row_values(row: Any) -> dict[str, Any]:
    """A row's parameters for its ``{prefix}_values``: jsonb for dicts and lists."""
    values = {}
    for name in columns(type(row)):
        value = getattr(row, name)
        values[name] = Jsonb(value) if isinstance(value, dict | list) else value
    return values


QUERY_BLOCK = re.compile(r"(?:\n|^)-- ([a-z0-9_]+) --\n(?:--.*\n)*", re.MULTILINE)
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def parse_queries(text: str) -> dict[str, str]:
    """queries.sql's blocks, by name (the text before the first block is its header)."""
    parts = QUERY_BLOCK.split(text)
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"queries.sql: two blocks named {name}")
        blocks[name] = body.strip()
    return blocks


def fill(name: str, blocks: dict[str, str]) -> str:
    """Block ``name`` with its placeholders filled in (see queries.sql's header)."""
    sql = blocks[name]

    def placeholder(match: re.Match[str]) -> str:
        word = match.group(1)
        if word in blocks:
            return fill(word, blocks)
        prefix, _, kind = word.partition("_")
        row_type = ROW_TYPES.get(prefix)
        if row_type is not None:
            if kind == "columns":
                return ", ".join(columns(row_type))
            if kind == "values":
                return ", ".join(f"%({column})s" for column in columns(row_type))
            if kind == "listed":
                return ", ".join(listed_columns(row_type))
            if kind in ("kept", "replaced"):
                return _merged(name, sql, columns(row_type), kind)
        raise ValueError(f"queries.sql, {name}: unknown placeholder {{{word}}}")

    return PLACEHOLDER.sub(placeholder, sql)


def _merged(name: str, sql: str, all_columns: list[str], kind: str) -> str:
    """An upsert's SET for the columns it neither assigns itself nor conflicts on."""
    table = re.search(r"\bINTO (\w+)", sql)
    key = re.search(r"ON CONFLICT \((\w+)\)", sql)
    if table is None or key is None or "DO UPDATE SET" not in sql:
        raise ValueError(f"queries.sql, {name}: {{..._{kind}}} belongs in an upsert's SET")
    assigned = set(re.findall(r"^\s*(\w+)\s*=", sql.split("DO UPDATE SET", 1)[1], re.MULTILINE))
    rest = [column for column in all_columns if column != key.group(1) and column not in assigned]
    if kind == "kept":
        return ", ".join(f"{c} = COALESCE(EXCLUDED.{c}, {table.group(1)}.{c})" for c in rest)
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)


def load_queries() -> dict[str, str]:
    """Every block of the package's queries.sql, filled in; fragments included."""
    blocks = parse_queries((resources.files("transcriber.mirror") / "queries.sql").read_text(encoding="utf-8"))
    return {name: fill(name, blocks) for name in blocks}


QUERIES = load_queries()


class Database:
    def __init__(self, url: str, connect_timeout: float = 3.0, statement_timeout_ms: int = 5000,
                 pool_timeout: float = 3.0, on_unreachable: Callable[[], None] | None = None) -> None:
        """``on_unreachable`` is called as soon as one connection attempt fails, from the
        pool's thread: a caller waiting for a connection learns it only after ``pool_timeout``,
        and /health said "ok" for those seconds after PostgreSQL stopped (issue 13)."""
        self.pool_timeout = pool_timeout
        self.pool = ConnectionPool(
            url, min_size=1, max_size=4, open=False, timeout=pool_timeout, name="transcriber",
            check=ConnectionPool.check_connection, reconnect_timeout=0, configure=_configure,
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
                conn.execute(QUERIES["lock_migrations"], {"key": MIGRATION_LOCK})
                try:
                    conn.execute(QUERIES["create_migrations_table"])
                    conn.commit()
                    done = {row[0] for row in conn.execute(QUERIES["applied_migrations"])}
                    applied = []
                    for version, name, sql in available_migrations():
                        if version in done:
                            continue
                        with conn.transaction():
                            conn.execute(sql)
                            conn.execute(QUERIES["record_migration"],
                                         {"version": version, "name": name})
                        log.info("Applied migration %03d %s", version, name)
                        applied.append(version)
                    return applied
                finally:
                    conn.execute(QUERIES["unlock_migrations"], {"key": MIGRATION_LOCK})
                    conn.commit()
        except (psycopg.Error, PoolTimeout) as exc:
            raise DatabaseUnavailable(_describe(exc)) from exc

    def write(self, tasks: list[TaskRow], transcriptions: list[TranscriptionRow], events: list[EventRow]) -> None:
        """One transaction: task upserts (never backwards), transcriptions, events."""
        try:
            with self._connection() as conn, conn.transaction(), conn.cursor() as cursor:
                if tasks:
                    cursor.executemany(QUERIES["upsert_task"], [row_values(r) for r in tasks])
                if transcriptions:
                    cursor.executemany(QUERIES["upsert_transcription"],
                                       [row_values(r) for r in transcriptions])
                if events:
                    cursor.executemany(QUERIES["insert_event"], [row_values(r) for r in events])
        except (psycopg.Error, PoolTimeout) as exc:
            raise DatabaseUnavailable(_describe(exc)) from exc

    def task_versions(self) -> dict[str, tuple[str, str, int]]:
        """task_id -> (filename, status, version) of every task not yet marked deleted."""
        rows = self._fetch(QUERIES["task_versions"])
        return {row["task_id"]: (row["filename"], row["status"], row["version"]) for row in rows}

    def list_tasks(self, where: TaskFilter, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        """GET /tasks: the total that matches and one page, as dicts of :func:`listed_columns`
        and the ids of the transcript's speakers (``speakers``)."""
        params = {**where.params(), "limit": limit, "offset": offset}
        total = self._fetch(QUERIES["count_tasks"], params)[0]["n"]
        rows = self._fetch(QUERIES["list_tasks"], params)
        return total, rows

    def search(self, query: str, limit: int, offset: int, speaker: str | None = None) -> list[dict[str, Any]]:
        """GET /search; with ``speaker``, only transcripts and segments where that speaker says it."""
        return self._fetch(QUERIES["search"], {"q": query, "limit": limit, "offset": offset,
                                               "speaker": speaker or None})

    def _fetch(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        try:
            with self._connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
                cursor.execute(sql, params)
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


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Each new connection of the pool: a uuid (task_id) reads as the str the rows hold."""
    conn.adapters.register_loader("uuid", TextLoader)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"
