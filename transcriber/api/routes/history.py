"""What was transcribed, from the PostgreSQL mirror: GET /tasks and /search."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query

from transcriber.api.context import ERRORS, ApiContext
from transcriber.api.schemas import ErrorResponse, SearchResults, TaskPage
from transcriber.api.service import ApiError
from transcriber.domain.job import TASK_STATUSES
from transcriber.domain.settings import SPEAKER_HINTS
from transcriber.domain.task_filter import TaskFilter
from transcriber.errors import DatabaseUnavailable, ErrorCode, MirrorDisabled

T = TypeVar("T")
STATUS_PATTERN = "^(" + "|".join(TASK_STATUSES) + ")$"
# A speaker id (SPEAKER_00) or the name people gave it (/edits): no control characters, no < >.
SPEAKER_PATTERN = r"^[^\x00-\x1f\x7f<>]+$"
_RESPONSES: dict[int | str, dict[str, Any]] = {503: {"model": ErrorResponse}, **ERRORS}


def router(context: ApiContext) -> APIRouter:
    daemon = context.daemon
    routes = APIRouter(dependencies=[context.authorised])

    @routes.get("/tasks", response_model=TaskPage, responses=_RESPONSES)
    def tasks(
        status: Annotated[str | None, Query(pattern=STATUS_PATTERN, examples=["completed"],
                                            description="one of " + ", ".join(TASK_STATUSES))] = None,
        since: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
        until: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
        speaker: Annotated[str | None, Query(max_length=100, pattern=SPEAKER_PATTERN, examples=["SPEAKER_01"],
                                             description="one of its transcript's speakers, by id or name")] = None,
        speakers: Annotated[int | None, Query(ge=0, le=SPEAKER_HINTS[1],
                                              description="how many speakers its transcript has")] = None,
        min_silence: Annotated[float | None, Query(ge=0, le=86_400, examples=[10],
                                                   description="a silence of at least this many seconds, "
                                                               "the file's start and end included")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> dict[str, Any]:
        where = TaskFilter(status=status, since=since, until=until, speaker=speaker, speakers=speakers,
                           min_silence=min_silence)
        total, rows = _from_mirror(lambda: daemon.list_tasks(where, limit, offset))
        return {"total": total, "limit": limit, "offset": offset, "tasks": rows}

    @routes.get("/search", response_model=SearchResults, responses=_RESPONSES)
    def search(
        q: Annotated[str, Query(min_length=1, max_length=500, examples=["заказ"])],
        speaker: Annotated[str | None, Query(max_length=100, pattern=SPEAKER_PATTERN, examples=["SPEAKER_00"],
                                             description="only what this speaker said, by id or name")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> dict[str, Any]:
        if not q.strip() or not q.isprintable():
            raise ApiError(422, ErrorCode.INVALID_REQUEST, "q: give some words to search for")
        rows = _from_mirror(lambda: daemon.search(q, limit, offset, speaker))
        return {"query": q, "limit": limit, "offset": offset, "results": rows}

    return routes


def _from_mirror(query: Callable[[], T]) -> T:
    try:
        return query()
    except MirrorDisabled as exc:
        raise ApiError(503, ErrorCode.DATABASE_UNAVAILABLE, exc.message) from exc
    except DatabaseUnavailable as exc:
        raise ApiError(503, ErrorCode.DATABASE_UNAVAILABLE,
                       f"the PostgreSQL mirror cannot be reached right now ({exc}); transcription goes on") from exc
