"""How errors become answers: every error has the shape ``{"status",
"error_code", "message", "filename"}`` (docs/API.md, errors); nothing a
client sends produces a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from transcriber.api.guards import error_response
from transcriber.api.service import ApiError
from transcriber.domain.settings import OVERRIDABLE
from transcriber.errors import ErrorCode, suggestion_for

log = logging.getLogger("API")


def install_error_handlers(app: FastAPI) -> None:
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
