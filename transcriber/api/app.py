"""The HTTP API (docs/API.md): thin routes over :class:`TranscriptionService`.

Every error has the shape ``{"status", "error_code", "message", "filename"}``
(plus ``debug_info`` when debug is on); nothing a client sends produces a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from transcriber.api import debug as api_debug
from transcriber.api.cache import CachedResponses, ResponseCache
from transcriber.api.guards import BodyLimit, ProtectedDocs, authorised, error_response
from transcriber.api.long_poll import LongPollWaiters
from transcriber.api.metrics import CONTENT_TYPE, Metrics
from transcriber.api.schemas import (
    CompletedResponse,
    DeletedResponse,
    DeleteRequest,
    ErrorResponse,
    HealthResponse,
    QueuedResponse,
    SearchResults,
    StatusResponse,
    TaskPage,
    TranscribeRequest,
)
from transcriber.api.service import ApiError, FileState, FileStatus, TranscriptionService, file_not_found
from transcriber.config import Config
from transcriber.domain.job import PRIORITY_API, Job, JobStatus, recorded_settings
from transcriber.domain.settings import OVERRIDABLE, TranscriptionSettings, apply_overrides
from transcriber.errors import DatabaseUnavailable, ErrorCode, MirrorDisabled, UnsupportedSettingError, suggestion_for
from transcriber.exports import formats
from transcriber.folder import sidecars
from transcriber.scheduler.daemon import Daemon

log = logging.getLogger("API")
T = TypeVar("T")

MAX_BODY_BYTES = 64 * 1024
STATUS_CACHE_SECONDS = 0.25  # a state change clears the file's entry at once; progress may lag this much
HEALTH_CACHE_SECONDS = 0.5
_PROGRESS_FIELDS = ("stage", "progress", "current_attempt", "max_attempts", "start_time", "next_attempt_at",
                    "last_error")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 422)
}


def create_app(daemon: Daemon) -> FastAPI:
    config = daemon.config
    service = TranscriptionService(daemon)
    metrics = Metrics(daemon)
    waiters = LongPollWaiters()
    daemon.add_listener(waiters.on_event)
    status_cache = ResponseCache(STATUS_CACHE_SECONDS)
    health_cache = ResponseCache(HEALTH_CACHE_SECONDS)
    daemon.add_listener(status_cache.on_event)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        waiters.loop = asyncio.get_running_loop()
        yield

    app = FastAPI(
        title="transcriber", version="0.1.0", lifespan=lifespan, redirect_slashes=False,
        description="Drop-folder transcription daemon: request a transcript by filename, poll, fetch, cancel.",
    )
    token = config.api.token.get_secret_value().encode()
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if token and not config.api.public_docs:
        app.add_middleware(ProtectedDocs, token=token)
    app.add_middleware(CachedResponses, status_cache=status_cache, health_cache=health_cache, token=token)
    _install_error_handlers(app, config)
    authorised = _auth_dependency(token)

    @app.post("/transcribe", status_code=202, responses={200: {"model": CompletedResponse}, **ERRORS},
              response_model=QueuedResponse, dependencies=[authorised])
    async def transcribe(body: TranscribeRequest) -> Response:
        name = service.validate(body.filename)
        debug = body.debug if body.debug is not None else config.api.debug
        settings = _settings(daemon, body, debug)
        state = await _wait_for_file(service, name, config)
        if state.status is FileStatus.NOT_FOUND:
            raise file_not_found(name, debug_info=_debug_info(debug, state))
        if state.status is FileStatus.ERROR and not body.force:
            raise _in_review_error(service, state, debug)
        outcome = await run_in_threadpool(service.request, state, settings, body.force, debug)
        if outcome.kind == "completed":
            return _completed(name, outcome.result)
        wait = min(body.wait, config.api.max_wait_seconds)
        if wait > 0 and outcome.job is not None:
            key = outcome.job.filename
            await waiters.wait(key, wait, finished=lambda: daemon.job(key) is None)
            state = await run_in_threadpool(service.state, name)
            if state.status is FileStatus.COMPLETED:
                return _completed(name, await run_in_threadpool(service.result, state))
            if state.status is FileStatus.ERROR:
                raise _in_review_error(service, state, debug)
        job = daemon.job(outcome.job.filename) if outcome.job is not None else None
        reply = _queued_body(daemon, name, job or outcome.job, settings, debug, outcome.kind)
        if wait > 0:  # say where it stands, as GET /status would
            status = _status_body(service, await run_in_threadpool(service.state, name))
            reply.update({key: status[key] for key in _PROGRESS_FIELDS})
        return JSONResponse(reply, status_code=202)

    @app.delete("/transcribe", response_model=DeletedResponse, responses=ERRORS, dependencies=[authorised])
    def delete_by_body(body: DeleteRequest) -> dict[str, Any]:
        return _delete(service, body.filename, status_cache)

    @app.delete("/transcribe/{filename:path}", response_model=DeletedResponse, responses=ERRORS,
                dependencies=[authorised])
    def delete_by_path(filename: str) -> dict[str, Any]:
        return _delete(service, filename, status_cache)

    @app.get("/status/{filename:path}", response_model=StatusResponse, responses=ERRORS,
             dependencies=[authorised])
    async def status(filename: str, debug: bool = False) -> Response:
        # On the event loop itself (a few stat calls, cheaper than a hop to the thread
        # pool), and answered from a short-lived cache: hundreds of clients polling one
        # file cost one lookup per STATUS_CACHE_SECONDS (bench/api_load.py).
        cached = status_cache.get(filename) if not debug else None
        if cached is not None:
            return cached
        seen = status_cache.evictions
        name = service.validate(filename)
        state = service.state(name)
        if state.status is FileStatus.NOT_FOUND:
            raise file_not_found(name, debug_info=_debug_info(debug or config.api.debug, state))
        response = _json(_status_body(service, state, debug or config.api.debug))
        if not debug:
            status_cache.put(filename, state.job.filename if state.job else name, response, seen)
        return response

    @app.get("/result/{filename:path}", responses={200: {"content": {"application/json": {}, "text/plain": {}}},
                                                   **ERRORS}, dependencies=[authorised])
    def result(filename: str, format: Literal["json", "txt", "srt", "vtt", "tsv"] = Query("json"),
               debug: bool = False) -> Response:
        name = service.validate(filename)
        state = service.state(name)
        document = service.result(state) if state.status is FileStatus.COMPLETED else None
        if document is None:
            raise ApiError(404, ErrorCode.RESULT_NOT_FOUND, f"no result yet: the file is {state.status.value}", name,
                           status=state.status.value, current_status=state.status.value,
                           debug_info=_debug_info(debug or config.api.debug, state))
        if format == "json":
            return JSONResponse(document)
        return PlainTextResponse(
            formats.render(document, format), media_type=formats.MEDIA_TYPES[format],
            headers={"Content-Disposition": _content_disposition(f"{name}.{format}")},
        )

    @app.get("/tasks", response_model=TaskPage, responses={503: {"model": ErrorResponse}, **ERRORS},
             dependencies=[authorised])
    def tasks(
        status: Annotated[str | None, Query(max_length=32, examples=["completed"])] = None,
        since: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
        until: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> dict[str, Any]:
        total, rows = _from_mirror(lambda: daemon.list_tasks(status, since, until, limit, offset))
        return {"total": total, "limit": limit, "offset": offset, "tasks": rows}

    @app.get("/search", response_model=SearchResults, responses={503: {"model": ErrorResponse}, **ERRORS},
             dependencies=[authorised])
    def search(
        q: Annotated[str, Query(min_length=1, max_length=500, examples=["заказ"])],
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> dict[str, Any]:
        if not q.strip() or not q.isprintable():
            raise ApiError(422, ErrorCode.INVALID_REQUEST, "q: give some words to search for")
        rows = _from_mirror(lambda: daemon.search(q, limit, offset))
        return {"query": q, "limit": limit, "offset": offset, "results": rows}

    @app.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
    async def health() -> Response:
        cached = health_cache.get("health")
        if cached is None:
            healthy, body = service.health()
            cached = _json(body, 200 if healthy else 503)
            health_cache.put("health", "health", cached)
        return cached

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=[authorised])
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return app


# -- helpers -------------------------------------------------------------------


def _from_mirror(query: Callable[[], T]) -> T:
    try:
        return query()
    except MirrorDisabled as exc:
        raise ApiError(503, ErrorCode.DATABASE_UNAVAILABLE, exc.message) from exc
    except DatabaseUnavailable as exc:
        raise ApiError(503, ErrorCode.DATABASE_UNAVAILABLE,
                       f"the PostgreSQL mirror cannot be reached right now ({exc}); transcription goes on") from exc


def _settings(daemon: Daemon, body: TranscribeRequest, debug: bool) -> TranscriptionSettings:
    model_size = body.model_size
    # Clients choose among installed models by name; folders are the operator's to configure.
    if model_size is not None and ("/" in model_size or "\\" in model_size or model_size.startswith(".")
                                   or not model_size.isprintable()):
        raise ApiError(422, ErrorCode.INVALID_SETTINGS, "model_size: a model name such as 'base', not a path")
    settings = apply_overrides(daemon.settings, body.model_dump())
    try:
        daemon.check_settings(settings)
    except UnsupportedSettingError as exc:  # refused here, not after a 202 in manual_review/ (issue 13)
        message = f"model_size: {exc.message}" if exc.setting == "model_size" else exc.message
        raise ApiError(422, exc.code, message, setting=exc.setting, supported=list(exc.supported)) from exc
    return settings


async def _wait_for_file(service: TranscriptionService, name: str, config: Config) -> FileState:
    """A file may still be arriving: look ``file_wait_attempts`` times before giving up."""
    for attempt in range(config.api.file_wait_attempts):
        state = await run_in_threadpool(service.state, name)
        if state.status is not FileStatus.NOT_FOUND or attempt == config.api.file_wait_attempts - 1:
            return state
        await asyncio.sleep(config.api.file_wait_interval)
    raise AssertionError("unreachable")


def _delete(service: TranscriptionService, filename: object, status_cache: ResponseCache) -> dict[str, Any]:
    name = service.validate(filename)
    state = service.state(name)
    if state.status is FileStatus.NOT_FOUND:
        raise file_not_found(name)
    outcome = service.delete(state)
    # A pending, completed or failed file has no job whose end would clear its cached
    # status: without this, GET /status said "pending"/"completed" for a file just
    # deleted (found by tests/reliability/test_state_model.py).
    status_cache.evict(name)
    log.info("Deleted %s via the API: %s", name, ", ".join(outcome.deleted_files) or "nothing left on disk")
    return {
        "status": "deleted", "message": "Files deleted successfully", "filename": name,
        "deleted_files": outcome.deleted_files, "processing_interrupted": outcome.processing_interrupted,
        "removed_from_queue": outcome.removed_from_queue,
    }


def _completed(name: str, result: dict[str, Any] | None) -> JSONResponse:
    return JSONResponse({"status": "completed", "filename": name, "result": result or {}}, status_code=200)


def _queued_body(daemon: Daemon, name: str, job: Job | None, settings: TranscriptionSettings, debug: bool,
                 kind: str) -> dict[str, Any]:
    """The 202 of POST /transcribe, from the job (no second read of the folder on the event loop)."""
    status = job.status if job is not None else JobStatus.QUEUED
    messages = {"joined": "already in progress with the same settings; joined it",
                "restarted": "interrupted the running transcription; queued again with the new settings",
                "queued": "queued for transcription"}
    message = messages[kind]
    if job is not None and job.waiting_for_file:
        message = "waiting for the file to be complete (it is still being written); transcription starts then"
    return {
        "status": "processing" if status is JobStatus.PROCESSING else "queued",
        "message": message, "filename": name,
        "settings": recorded_settings(job.settings, job.debug) if job else recorded_settings(settings, debug),
        "queue_position": daemon.queue_position(job.filename) if job is not None else None,
        "priority": "high" if job is None or job.priority == PRIORITY_API else "normal",
        "restarted": kind == "restarted",
    }


def _status_body(service: TranscriptionService, state: FileState, debug: bool = False) -> dict[str, Any]:
    sidecar = _sidecar_of(state)
    body: dict[str, Any] = {"status": state.status.value, "filename": state.name, "stage": None, "progress": None,
                            "current_attempt": None, "max_attempts": None, "queue_position": None,
                            "start_time": None, "next_attempt_at": None, "last_error": api_debug.last_error(sidecar)}
    job = state.job
    if job is not None:
        running = job.attempts[-1] if job.attempts else None
        body.update(
            stage=job.progress.stage.value, progress=job.progress.percentage,
            current_attempt=job.current_attempt, max_attempts=job.max_attempts,
            queue_position=service.queue_position(state),
            start_time=sidecars.format_time(running.start_time) if running else None,
            next_attempt_at=sidecars.format_time(job.next_attempt_at),
        )
    elif state.status is FileStatus.COMPLETED:
        body.update(stage="completed", progress=100.0)
    elif state.status is FileStatus.ERROR and (failed := state.review_job) is not None:
        body.update(current_attempt=failed.current_attempt, max_attempts=failed.max_attempts,
                    start_time=sidecars.format_time(failed.attempts[-1].start_time) if failed.attempts else None)
    if debug:
        result = service.result(state) if state.status is FileStatus.COMPLETED else None
        body["debug_info"] = api_debug.debug_info(sidecar, (job.status if job else state.status).value, result)
    return body


def _in_review_error(service: TranscriptionService, state: FileState, debug: bool) -> ApiError:
    error = api_debug.last_error(_sidecar_of(state)) or {}
    return ApiError(
        409, ErrorCode.IN_MANUAL_REVIEW,
        f"the file failed and is in manual_review/ ({error.get('code')}: {error.get('message')}); "
        "send force=true to move it back and start over",
        state.name, last_error=error or None, debug_info=_debug_info(debug, state),
    )


def _sidecar_of(state: FileState) -> dict[str, Any] | None:
    job = state.job or state.review_job
    return sidecars.job_to_dict(job) if job is not None else None


def _debug_info(debug: bool, state: FileState) -> dict[str, Any] | None:
    return api_debug.debug_info(_sidecar_of(state), state.status.value) if debug else None


def _content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name, so Cyrillic survives any client."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _auth_dependency(token: bytes) -> Any:
    async def check(request: Request) -> None:  # async: no thread-pool hop per request
        if not authorised(token, request.scope["headers"]):
            raise ApiError(401, ErrorCode.UNAUTHORIZED,
                           "missing or wrong API token (Authorization: Bearer … or X-API-Key)")

    return Depends(check)


def _install_error_handlers(app: FastAPI, config: Config) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        body = {"status": exc.status, "error_code": exc.code, "message": exc.message, "filename": exc.filename,
                "suggestion": suggestion_for(exc.code)}
        body.update({k: v for k, v in exc.extra.items() if v is not None})
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse(body, status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return error_response(400, ErrorCode.INVALID_JSON, "the request body is not valid JSON")
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
        field = where.split(".")[-1]
        code = (ErrorCode.INVALID_FILENAME if field == "filename" else ErrorCode.INVALID_SETTINGS
                if field in OVERRIDABLE else ErrorCode.INVALID_REQUEST)
        return error_response(422, code, f"{where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED, 413: ErrorCode.REQUEST_TOO_LARGE}
        return error_response(exc.status_code, codes.get(exc.status_code, ErrorCode.HTTP_ERROR), str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("Unexpected error in the API")
        return error_response(500, ErrorCode.INTERNAL_ERROR, "an unexpected error occurred; see the daemon log")


def _json(body: dict[str, Any], status_code: int = 200) -> Response:
    """Serialised once, without re-validating against the response model (the body is built here)."""
    return Response(json.dumps(body, ensure_ascii=False).encode(), status_code=status_code,
                    media_type="application/json")
