"""The HTTP API (docs/API.md): the app, its guards and error handlers, and
the routers of ``routes/`` (one per concern) over :class:`TranscriptionService`.

Every error has the shape ``{"status", "error_code", "message", "filename"}``
(plus ``debug_info`` when debug is on); nothing a client sends produces a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request

from transcriber.api.cache import CachedResponses, ResponseCache
from transcriber.api.context import ApiContext
from transcriber.api.guards import BodyLimit, ProtectedDocs, authorised
from transcriber.api.handlers import install_error_handlers
from transcriber.api.long_poll import LongPollWaiters
from transcriber.api.metrics import Metrics
from transcriber.api.routes import audio, edits, health, history, result, status, transcribe, upload
from transcriber.api.service import ApiError, TranscriptionService
from transcriber.errors import ErrorCode
from transcriber.scheduler.daemon import Daemon

MAX_BODY_BYTES = 64 * 1024
STATUS_CACHE_SECONDS = 0.25  # a state change clears the file's entry at once; progress may lag this much
HEALTH_CACHE_SECONDS = 0.5
ROUTERS = (transcribe, upload, status, result, edits, audio, history, health)  # in the order docs/API.md lists them


def create_app(daemon: Daemon) -> FastAPI:
    config = daemon.config
    token = config.api.token.get_secret_value().encode()
    context = ApiContext(
        daemon=daemon, config=config, service=TranscriptionService(daemon), waiters=LongPollWaiters(),
        status_cache=ResponseCache(STATUS_CACHE_SECONDS), health_cache=ResponseCache(HEALTH_CACHE_SECONDS),
        metrics=Metrics(daemon), authorised=_auth_dependency(token),
    )
    daemon.add_listener(context.waiters.on_event)
    daemon.add_listener(context.status_cache.on_event)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        context.waiters.loop = asyncio.get_running_loop()
        yield

    app = FastAPI(
        title="transcriber", version="0.1.0", lifespan=lifespan, redirect_slashes=False,
        description="Drop-folder transcription daemon: request a transcript by filename, poll, fetch, cancel.",
    )
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, larger={
        "/edits/": edits.MAX_EDITS_BYTES, "/upload": config.upload.max_bytes + upload.FORM_SLACK_BYTES})
    if token and not config.api.public_docs:
        app.add_middleware(ProtectedDocs, token=token)
    app.add_middleware(CachedResponses, status_cache=context.status_cache, health_cache=context.health_cache,
                       token=token)
    install_error_handlers(app)
    for routes in ROUTERS:
        app.include_router(routes.router(context))
    return app


def _auth_dependency(token: bytes) -> Any:
    async def check(request: Request) -> None:  # async: no thread-pool hop per request
        if not authorised(token, request.scope["headers"]):
            raise ApiError(401, ErrorCode.UNAUTHORIZED,
                           "missing or wrong API token (Authorization: Bearer … or X-API-Key)")

    return Depends(check)
