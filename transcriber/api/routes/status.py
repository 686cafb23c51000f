"""Where a file stands: GET /status, polled by hundreds of clients at once."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from transcriber.api import bodies
from transcriber.api.context import ERRORS, ApiContext
from transcriber.api.schemas import StatusResponse
from transcriber.api.service import FileStatus, file_not_found


def router(context: ApiContext) -> APIRouter:
    service, status_cache, always_debug = context.service, context.status_cache, context.config.api.debug
    routes = APIRouter(dependencies=[context.authorised])

    @routes.get("/status/{filename:path}", response_model=StatusResponse, responses=ERRORS)
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
            raise file_not_found(name, debug_info=bodies.debug_info(debug or always_debug, state))
        response = bodies.json_response(bodies.status(service, state, debug or always_debug))
        if not debug:
            status_cache.put(filename, state.job.filename if state.job else name, response, seen)
        return response

    return routes
