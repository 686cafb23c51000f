"""Asking for a transcript and taking it back: POST and DELETE /transcribe."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from transcriber.api import bodies
from transcriber.api.cache import ResponseCache
from transcriber.api.context import ERRORS, ApiContext
from transcriber.api.schemas import CompletedResponse, DeletedResponse, DeleteRequest, QueuedResponse, TranscribeRequest
from transcriber.api.service import ApiError, FileState, FileStatus, TranscriptionService, file_not_found
from transcriber.config import Config
from transcriber.domain.settings import TranscriptionSettings, apply_overrides
from transcriber.errors import ErrorCode, InvalidSettingsError, UnsupportedSettingError
from transcriber.scheduler.daemon import Daemon

log = logging.getLogger("API")


def router(context: ApiContext) -> APIRouter:
    daemon, config, service = context.daemon, context.config, context.service
    routes = APIRouter(dependencies=[context.authorised])

    @routes.post("/transcribe", status_code=202, responses={200: {"model": CompletedResponse}, **ERRORS},
                 response_model=QueuedResponse)
    async def transcribe(body: TranscribeRequest) -> Response:
        name = service.validate(body.filename)
        debug = body.debug if body.debug is not None else config.api.debug
        settings = request_settings(daemon, body, debug)
        state = await wait_for_file(service, name, config)
        if state.status is FileStatus.NOT_FOUND:
            raise file_not_found(name, debug_info=bodies.debug_info(debug, state))
        return await answer(context, state, body, settings)

    @routes.delete("/transcribe", response_model=DeletedResponse, responses=ERRORS)
    def delete_by_body(body: DeleteRequest) -> dict[str, Any]:
        return _delete(service, body.filename, context.status_cache)

    @routes.delete("/transcribe/{filename:path}", response_model=DeletedResponse, responses=ERRORS)
    def delete_by_path(filename: str) -> dict[str, Any]:
        return _delete(service, filename, context.status_cache)

    return routes


async def answer(context: ApiContext, state: FileState, body: TranscribeRequest, settings: TranscriptionSettings,
                 arrived: bool = False, extra: dict[str, Any] | None = None) -> Response:
    """What POST /transcribe (and POST /upload, for the file it wrote: ``arrived``) answers for
    ``state``: the result (200, at once or within ``wait``), or where the job stands (202);
    ``extra`` is added to either."""
    daemon, config, service, waiters = context.daemon, context.config, context.service, context.waiters
    name = state.name
    debug = body.debug if body.debug is not None else config.api.debug
    if state.status is FileStatus.ERROR and not body.force:
        raise bodies.in_review_error(state, debug)
    outcome = await run_in_threadpool(service.request, state, settings, body.force, debug, arrived)
    if outcome.kind == "completed":
        return bodies.completed(name, outcome.result, extra)
    wait = min(body.wait, config.api.max_wait_seconds)
    if wait > 0 and outcome.job is not None:
        key = outcome.job.filename
        await waiters.wait(key, wait, finished=lambda: daemon.job(key) is None)
        state = await run_in_threadpool(service.state, name)
        if state.status is FileStatus.COMPLETED:
            return bodies.completed(name, await run_in_threadpool(service.result, state), extra)
        if state.status is FileStatus.ERROR:
            raise bodies.in_review_error(state, debug)
    job = daemon.job(outcome.job.filename) if outcome.job is not None else None
    reply = bodies.queued(daemon, name, job or outcome.job, settings, debug, outcome.kind)
    if wait > 0:  # say where it stands, as GET /status would
        status = bodies.status(service, await run_in_threadpool(service.state, name))
        reply.update({key: status[key] for key in bodies.PROGRESS_FIELDS})
    return JSONResponse({**reply, **(extra or {})}, status_code=202)


async def wait_for_file(service: TranscriptionService, name: str, config: Config) -> FileState:
    """A file may still be arriving: look ``file_wait_attempts`` times before giving up."""
    for attempt in range(config.api.file_wait_attempts):
        state = await run_in_threadpool(service.state, name)
        if state.status is not FileStatus.NOT_FOUND or attempt == config.api.file_wait_attempts - 1:
            return state
        await asyncio.sleep(config.api.file_wait_interval)
    raise AssertionError("unreachable")


def request_settings(daemon: Daemon, body: TranscribeRequest, debug: bool) -> TranscriptionSettings:
    model_size = body.model_size
    # Clients choose among installed models by name; folders are the operator's to configure.
    if model_size is not None and ("/" in model_size or "\\" in model_size or model_size.startswith(".")
                                   or not model_size.isprintable()):
        raise ApiError(422, ErrorCode.INVALID_SETTINGS, "model_size: a model name such as 'base', not a path")
    try:  # a request's hint against the config's other one (min_speakers 5, max_speakers 3 configured)
        settings = apply_overrides(daemon.settings, body.model_dump())
    except InvalidSettingsError as exc:
        raise ApiError(422, exc.code, exc.message, setting=exc.setting) from exc
    try:
        daemon.check_settings(settings)
    except UnsupportedSettingError as exc:  # refused here, not after a 202 in manual_review/ (issue 13)
        message = f"model_size: {exc.message}" if exc.setting == "model_size" else exc.message
        raise ApiError(422, exc.code, message, setting=exc.setting, supported=list(exc.supported)) from exc
    return settings


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
