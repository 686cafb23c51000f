"""A finished transcript, as JSON or in any export format, whole or a fragment: GET /result."""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePosixPath

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from transcriber import exports
from transcriber.api import bodies
from transcriber.api.context import ERRORS, ApiContext
from transcriber.api.schemas import ErrorResponse
from transcriber.api.service import ApiError
from transcriber.domain.edits import Edits
from transcriber.domain.fragment import RangeError
from transcriber.domain.transcript import MalformedResult
from transcriber.errors import ErrorCode

ExportFormat = StrEnum("ExportFormat", {name: name for name in exports.EXPORTS})  # type: ignore[misc]


def router(context: ApiContext) -> APIRouter:
    service, always_debug = context.service, context.config.api.debug
    routes = APIRouter(dependencies=[context.authorised])

    @routes.get("/result/{filename:path}", responses={
        200: {"content": {exports.EXPORTS[name].media_type.split(";")[0]: {} for name in exports.EXPORTS}},
        503: {"model": ErrorResponse}, **ERRORS})
    def result(filename: str, format: ExportFormat = Query(ExportFormat("json")),  # noqa: B008
               start: float | None = Query(None, alias="from", description="seconds: a fragment from here"),
               end: float | None = Query(None, alias="to", description="seconds: a fragment to here"),
               relative: bool = Query(False, description="a fragment's times from 0"),
               edited: bool | None = Query(None, description="with the corrections of /edits (default: "
                                                             "yes for every format but json)"),
               debug: bool = False) -> Response:
        fmt = str(format.value)
        name = service.validate(filename)
        state = service.state(name)
        document = bodies.completed_result(service, state, debug or always_debug)
        try:
            edits = service.edits(state) if exports.corrected(fmt, edited) else Edits()  # a 503 only if needed
            document, fragment = exports.shown(document, edits, fmt, edited, start, end, relative)
        except RangeError as exc:
            raise ApiError(422, ErrorCode.INVALID_RANGE, exc.message, name) from exc
        except MalformedResult as exc:
            raise ApiError(503, ErrorCode.SIDECAR_UNREADABLE, f"{name}.result cannot be rendered: {exc}", name) from exc
        if fmt == "json" and fragment is None:
            return JSONResponse(document)
        export = exports.EXPORTS[fmt]
        label = PurePosixPath(name).name + (f".{_seconds(fragment[0])}-{_seconds(fragment[1])}" if fragment else "")
        return StreamingResponse(
            exports.stream(document, fmt), media_type=export.media_type,
            headers={"Content-Disposition": bodies.content_disposition(f"{label}.{fmt}")},
        )

    return routes


def _seconds(value: float) -> str:
    """12.5 -> "12.5", 60.0 -> "60": a fragment's bounds in its file name."""
    return f"{value:.3f}".rstrip("0").rstrip(".")
