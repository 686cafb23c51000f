"""Human corrections of a transcript: GET and PUT /edits (docs/API.md, corrections)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from transcriber.api import bodies
from transcriber.api.context import ERRORS, ApiContext
from transcriber.api.schemas import ErrorResponse
from transcriber.api.service import ApiError
from transcriber.domain import edits as corrections
from transcriber.errors import ErrorCode

MAX_EDITS_BYTES = 4 * 1024 * 1024  # a corrections document: every segment of a long call corrected fits

# The body PUT takes, for /docs (read by hand: the checks name the field, as a 422 of the settings does).
EDITS_BODY = {
    "type": "object", "required": ["version"],
    "properties": {
        "version": {"type": "integer", "minimum": 0, "description": "the version these corrections were made on"},
        "speakers": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 100}},
        "segments": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"text": {"type": "string"},
                                             "words": {"type": "object", "additionalProperties": {"type": "string"}}},
        }},
    },
}


def router(context: ApiContext) -> APIRouter:
    service, always_debug = context.service, context.config.api.debug
    routes = APIRouter(dependencies=[context.authorised])

    @routes.get("/edits/{filename:path}", responses={**ERRORS, 503: {"model": ErrorResponse}})
    def get_edits(filename: str) -> JSONResponse:
        name = service.validate(filename)
        state = service.state(name)
        document = bodies.completed_result(service, state, always_debug)
        return JSONResponse(_answer(name, document, service.edits(state)))

    @routes.put("/edits/{filename:path}", responses={**ERRORS, 503: {"model": ErrorResponse}},
                openapi_extra={"requestBody": {"required": True,
                                               "content": {"application/json": {"schema": EDITS_BODY}}}})
    async def put_edits(filename: str, request: Request) -> JSONResponse:
        name = service.validate(filename)
        state = await run_in_threadpool(service.state, name)  # the name is checked before the body is read
        document = await run_in_threadpool(bodies.completed_result, service, state, always_debug)
        raw = await request.body()
        try:  # off the event loop: 4 MiB of text is checked character by character
            version, edits = await run_in_threadpool(_parsed, raw, document)
        except corrections.EditsError as exc:
            raise ApiError(422, ErrorCode.INVALID_EDITS, exc.message, name, field=exc.field) from exc
        saved = await run_in_threadpool(service.save_edits, state, edits, version, str(document["task_id"]))
        return JSONResponse(_answer(name, document, saved))

    return routes


def _answer(name: str, document: dict[str, Any], edits: corrections.Edits) -> dict[str, Any]:
    return {"filename": name, "task_id": document.get("task_id"), **corrections.to_dict(edits)}


def _parsed(raw: bytes, document: dict[str, Any]) -> tuple[int, corrections.Edits]:
    body = _json_object(raw)
    return corrections.based_on(body), corrections.parse(body, document)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: [[[[… nested past the parser's depth
        raise ApiError(400, ErrorCode.INVALID_JSON, f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, ErrorCode.INVALID_JSON, "the body must be a JSON object")
    return body
