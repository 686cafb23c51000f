"""Audio from clients that cannot reach the share: POST /upload (docs/API.md, upload).

The file part streams into the shared folder under a temporary name the watcher
ignores (folder/intake.py), hashed on the way, and takes its name only when whole;
then the upload is answered exactly as POST /transcribe answers for that file.
"""

from __future__ import annotations

import logging
import unicodedata
from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from transcriber.api.context import ERRORS, ApiContext
from transcriber.api.multipart import Form, read_form
from transcriber.api.routes.transcribe import answer, request_settings
from transcriber.api.schemas import CompletedResponse, ErrorResponse, QueuedResponse, UploadRequest
from transcriber.api.service import ApiError, TranscriptionService, printable
from transcriber.errors import ErrorCode, InvalidFilename
from transcriber.folder.filenames import destination
from transcriber.folder.intake import Arrival, Existing, Incoming, NameTaken

log = logging.getLogger("API")

FORM_SLACK_BYTES = 256 * 1024  # the multipart framing and fields around the file, within the body limit

# The body, for /docs (read by hand, as it arrives, not by FastAPI).
UPLOAD_BODY = {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "filename": {"type": "string", "description": "the name to store it under (default: the file's own)"},
        "overwrite": {"type": "boolean"}, "rename": {"type": "boolean"},
        "language": {"type": "string"}, "model_size": {"type": "string"}, "diarize": {"type": "boolean"},
        "min_speakers": {"type": "integer"}, "max_speakers": {"type": "integer"},
        "word_timestamps": {"type": "boolean"}, "force": {"type": "boolean"}, "wait": {"type": "number"},
    },
}}}


def router(context: ApiContext) -> APIRouter:
    daemon, config, service = context.daemon, context.config, context.service
    routes = APIRouter(dependencies=[context.authorised])

    def open_file(filename: str, fields: dict[str, str]) -> Incoming:
        """Refuse a bad ``filename`` field sent before the file before a byte is written.  The
        file's own name (a browser's Blob is "blob") is checked at the end: a field after it
        may replace it."""
        if fields.get("filename"):
            upload_name(service, fields["filename"])
        return Incoming(service.folder.root)

    @routes.post("/upload", status_code=202, response_model=QueuedResponse,
                 responses={200: {"model": CompletedResponse}, 503: {"model": ErrorResponse}, **ERRORS},
                 openapi_extra={"requestBody": {"required": True, "content": UPLOAD_BODY}})
    async def upload(request: Request) -> Response:
        try:
            form = await read_form(request, open_file, config.upload.max_bytes)
        except OSError as exc:  # the folder refused the write: nothing was kept
            raise _refused(exc) from exc
        try:
            incoming = form.file
            if incoming is None:
                raise ApiError(422, ErrorCode.INVALID_REQUEST, "no file: send the audio in a part named 'file'")
            body = _body(form, upload_name(service, form.fields.get("filename") or form.filename))
            debug = body.debug if body.debug is not None else config.api.debug
            settings = request_settings(daemon, body, debug)
            existing = Existing.OVERWRITE if body.overwrite else Existing.RENAME if body.rename else Existing.REFUSE
            arrival = await run_in_threadpool(_place, service, incoming, body.filename, existing)
        except NameTaken as exc:
            raise ApiError(409, ErrorCode.FILE_EXISTS, "a file of that name is in the shared folder with other "
                           "content", str(form.fields.get("filename") or form.filename)) from exc
        except OSError as exc:
            raise _refused(exc) from exc
        finally:
            if form.file is not None:
                form.file.discard()  # a no-op once placed
        name = unicodedata.normalize("NFC", arrival.path.relative_to(service.folder.root).as_posix())
        log.info("Upload of %s: %s, %d bytes, sha256 %s", name, arrival.placed.value, arrival.size, arrival.sha256)
        state = await run_in_threadpool(service.state, name)
        extra = {"upload": {"filename": name, "size_bytes": arrival.size, "sha256": arrival.sha256,
                            "stored": arrival.placed.value}}
        return await answer(context, state, body.model_copy(update={"filename": name}), settings, arrived=True,
                            extra=extra)

    return routes


def _place(service: TranscriptionService, incoming: Incoming, name: str, existing: Existing) -> Arrival:
    """``incoming`` under ``name`` (or the twin of it on disk, NFD or NFC), in one thread hop with
    the check that a file replaced has no job (queued, waiting or being transcribed)."""
    try:
        target = destination(name, service.folder.root)
    except InvalidFilename as exc:
        raise ApiError(400, ErrorCode.INVALID_FILENAME, str(exc), name) from exc
    if not target.parent.is_dir():
        raise ApiError(400, ErrorCode.INVALID_FILENAME, "no such subfolder in the shared folder", name)
    if existing is Existing.OVERWRITE and target.exists():
        job = service.state(name).job
        if job is not None and job.is_active:
            raise ApiError(409, ErrorCode.FILE_EXISTS, f"the file of that name has a job ({job.status.value}): "
                           "DELETE it first, or upload under another name", name)
    return incoming.place(target, existing, service.daemon.write_formats)


def upload_name(service: TranscriptionService, name: str | None) -> str:
    """The validated name to store an upload under: 422 for an extension that is not audio,
    400 for a name that is not a plain file name in the folder (as POST /transcribe)."""
    if not name:
        raise ApiError(422, ErrorCode.INVALID_REQUEST, "the file has no name: send one, or a 'filename' field")
    extension = PurePosixPath(name).suffix.lower().lstrip(".")
    extensions = service.folder.extensions
    if extension not in extensions:
        raise ApiError(422, ErrorCode.UNSUPPORTED_EXTENSION,
                       f"not an audio file this folder takes (extensions: {', '.join(sorted(extensions))})",
                       printable(name))
    return service.validate(name)


def _body(form: Form, name: str) -> UploadRequest:
    fields: dict[str, Any] = {key: value for key, value in form.fields.items() if value != ""}  # empty form inputs
    try:
        return UploadRequest.model_validate({**fields, "filename": name})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


def _refused(exc: OSError) -> ApiError:
    return ApiError(503, ErrorCode.OUTPUT_WRITE_FAILED, f"the shared folder refused the upload: {exc.strerror or exc}")

