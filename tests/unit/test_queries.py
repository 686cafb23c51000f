"""queries.sql and the row dataclasses: one definition of the mirror's statements and columns (issue 14)."""

from __future__ import annotations

import ast
import dataclasses
import fnmatch
import re
import tomllib
import typing
from pathlib import Path

import pytest

from transcriber.api.schemas import TaskSummary
from transcriber.mirror import database
from transcriber.mirror.database import (
    LISTED_FROM_TRANSCRIPT,
    QUERIES,
    TaskRow,
    TranscriptionRow,
    columns,
    fill,
    listed_columns,
    parse_queries,
)

REPO = Path(__file__).resolve().parents[2]
MIRROR = REPO / "transcriber" / "mirror"

# The fields of TaskRow that GET /tasks deliberately does not show.
NOT_IN_THE_API = {"version"}  # the mirror's ordering of writes (nanoseconds), meaningless to a client


def blocks() -> dict[str, str]:
    return parse_queries((MIRROR / "queries.sql").read_text(encoding="utf-8"))


def names_run_by_database_py() -> set[str]:
    tree = ast.parse((MIRROR / "database.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "QUERIES":
            assert isinstance(node.slice, ast.Constant), "QUERIES is indexed by a literal name"
            names.add(node.slice.value)
    return names


def test_every_block_is_run_or_included_and_every_name_run_is_a_block() -> None:
    found = blocks()
    run = names_run_by_database_py()
    included = {name for text in found.values() for name in re.findall(r"\{([a-z_]+)\}", text) if name in found}
    assert run <= set(found), f"database.py runs queries that queries.sql lacks: {run - set(found)}"
    assert set(found) == run | included, f"blocks nothing uses: {set(found) - run - included}"
    assert not run & included, "a fragment is included in statements, not run on its own"
    assert set(QUERIES) == set(found)


def test_no_statement_is_left_in_database_py() -> None:
    """The SQL lives in queries.sql: database.py's string literals hold no statement."""
    tree = ast.parse((MIRROR / "database.py").read_text(encoding="utf-8"))
    statement = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|WITH)\b", re.IGNORECASE)
    literals = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert [text for text in literals if statement.match(text)] == []


def test_every_placeholder_is_filled() -> None:
    for name, sql in QUERIES.items():
        assert not re.search(r"\{[a-z_]+\}", sql), (name, sql)


def test_an_unknown_placeholder_or_a_second_block_of_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown placeholder"):
        fill("q", {"q": "SELECT {task_colums} FROM tasks"})
    with pytest.raises(ValueError, match="upsert"):
        fill("q", {"q": "SELECT {task_kept} FROM tasks"})
    with pytest.raises(ValueError, match="two blocks"):
        parse_queries("-- a --\nSELECT 1\n\n-- a --\nSELECT 2\n")


def test_the_upserts_merge_every_column() -> None:
    """Each column of TaskRow is the conflict key, merged by hand, or kept (COALESCE) by {task_kept}."""
    upsert = QUERIES["upsert_task"]
    set_clause = upsert.split("DO UPDATE SET", 1)[1]
    for column in columns(TaskRow):
        if column == "task_id":
            continue
        assert re.search(rf"^\s*{column} = |, {column} = ", set_clause, re.MULTILINE), column
    assert "status = COALESCE" not in set_clause and "filename = COALESCE(EXCLUDED.filename, tasks.filename)" in upsert
    replaced = QUERIES["upsert_transcription"].split("DO UPDATE SET", 1)[1]
    assert [c for c in columns(TranscriptionRow) if f"{c} = EXCLUDED.{c}" in replaced] == columns(TranscriptionRow)[1:]


def test_the_api_lists_the_fields_of_the_task_row() -> None:
    """TaskSummary (GET /tasks) and TaskRow agree: the same fields in the same order, types and
    defaults, except NOT_IN_THE_API, which is what TaskRow marks internal."""
    assert set(columns(TaskRow)) - set(listed_columns(TaskRow)) == NOT_IN_THE_API
    assert list(TaskSummary.model_fields) == [*listed_columns(TaskRow), *LISTED_FROM_TRANSCRIPT]
    hints = typing.get_type_hints(TaskRow)
    for row_field in dataclasses.fields(TaskRow):
        if row_field.name in NOT_IN_THE_API:
            continue
        api_field = TaskSummary.model_fields[row_field.name]
        assert api_field.annotation == hints[row_field.name], row_field.name
        if row_field.default is dataclasses.MISSING and row_field.default_factory is dataclasses.MISSING:
            assert api_field.is_required(), row_field.name
        else:
            default = (row_field.default if row_field.default_factory is dataclasses.MISSING
                       else row_field.default_factory())
            assert not api_field.is_required() and api_field.get_default(call_default_factory=True) == default


def test_the_package_carries_every_sql_file() -> None:
    """pyproject's package data ships queries.sql and the migrations in a wheel."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["transcriber.mirror"]
    files = [path.relative_to(MIRROR).as_posix() for path in MIRROR.rglob("*.sql")]
    assert "queries.sql" in files and "migrations/002_status_check.sql" in files
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


def test_the_migrations_are_numbered_without_gaps() -> None:
    versions = [version for version, _name, _sql in database.available_migrations()]
    assert versions == list(range(1, len(versions) + 1)) and 2 in versions
