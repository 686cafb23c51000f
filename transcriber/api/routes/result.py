"""A finished transcript, as JSON or rendered: GET /result."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from transcriber.api import bodies
from transcriber.api.context import ERRORS, ApiContext
from transcriber.api.service import ApiError, FileStatus
from transcriber.errors import ErrorCode
from transcriber.exports import formats


def router(context: ApiContext) -> APIRouter:
    service, always_debug = context.service, context.config.api.debug
    routes = APIRouter(dependencies=[context.authorised])

    @routes.get("/result/{filename:path}",
                responses={200: {"content": {"application/json": {}, "text/plain": {}}}, **ERRORS})
    def result(filename: str, format: Literal["json", "txt", "srt", "vtt", "tsv"] = Query("json"),
               debug: bool = False) -> Response:
        name = service.validate(filename)
        state = service.state(name)
        document = service.result(state) if state.status is FileStatus.COMPLETED else None
        if document is None:
            raise ApiError(404, ErrorCode.RESULT_NOT_FOUND, f"no result yet: the file is {state.status.value}", name,
                           status=state.status.value, current_status=state.status.value,
                           debug_info=bodies.debug_info(debug or always_debug, state))
        if format == "json":
            return JSONResponse(document)
        return PlainTextResponse(
            formats.render(document, format), media_type=formats.MEDIA_TYPES[format],
            headers={"Content-Disposition": bodies.content_disposition(f"{name}.{format}")},
        )

    return routes
