"""The bodies the routes answer with, built from a file's state (docs/API.md)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi.responses import JSONResponse, Response

from transcriber.api import debug as api_debug
from transcriber.api.service import ApiError, FileState, FileStatus, TranscriptionService
from transcriber.domain.job import PRIORITY_API, Job, JobStatus, recorded_settings
from transcriber.domain.settings import TranscriptionSettings
from transcriber.errors import ErrorCode
from transcriber.folder import sidecars
from transcriber.scheduler.daemon import Daemon

# What a 202 after a long poll adds from the file's status, as GET /status would say it.
PROGRESS_FIELDS = ("stage", "progress", "current_attempt", "max_attempts", "start_time", "next_attempt_at",
                   "last_error")
_QUEUED_MESSAGES = {"joined": "already in progress with the same settings; joined it",
                    "restarted": "interrupted the running transcription; queued again with the new settings",
                    "queued": "queued for transcription"}


def completed(name: str, result: dict[str, Any] | None, extra: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"status": "completed", "filename": name, "result": result or {}, **(extra or {})},
                        status_code=200)


def queued(daemon: Daemon, name: str, job: Job | None, settings: TranscriptionSettings, debug: bool,
           kind: str) -> dict[str, Any]:
    """The 202 of POST /transcribe, from the job (no second read of the folder on the event loop)."""
    status = job.status if job is not None else JobStatus.QUEUED
    message = _QUEUED_MESSAGES[kind]
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


def status(service: TranscriptionService, state: FileState, debug: bool = False) -> dict[str, Any]:
    """The body of GET /status."""
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


def in_review_error(state: FileState, debug: bool) -> ApiError:
    error = api_debug.last_error(_sidecar_of(state)) or {}
    return ApiError(
        409, ErrorCode.IN_MANUAL_REVIEW,
        f"the file failed and is in manual_review/ ({error.get('code')}: {error.get('message')}); "
        "send force=true to move it back and start over",
        state.name, last_error=error or None, debug_info=debug_info(debug, state),
    )


def debug_info(debug: bool, state: FileState) -> dict[str, Any] | None:
    return api_debug.debug_info(_sidecar_of(state), state.status.value) if debug else None


def completed_result(service: TranscriptionService, state: FileState, debug: bool) -> dict[str, Any]:
    """The ``.result`` of a completed file; 404 ``result_not_found`` (saying where the file is) otherwise."""
    document = service.result(state) if state.status is FileStatus.COMPLETED else None
    if document is None:
        raise ApiError(404, ErrorCode.RESULT_NOT_FOUND, f"no result yet: the file is {state.status.value}",
                       state.name, status=state.status.value, current_status=state.status.value,
                       debug_info=debug_info(debug, state))
    return document


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name, so Cyrillic survives any client."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def json_response(body: dict[str, Any], status_code: int = 200) -> Response:
    """Serialised once, without re-validating against the response model (the body is built here)."""
    return Response(json.dumps(body, ensure_ascii=False).encode(), status_code=status_code,
                    media_type="application/json")


def _sidecar_of(state: FileState) -> dict[str, Any] | None:
    job = state.job or state.review_job
    return sidecars.job_to_dict(job) if job is not None else None
