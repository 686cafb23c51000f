"""The audio itself, for players and clients: GET /audio (HTTP Range) and GET /links,
signed links that play without the token until they expire (docs/API.md, audio).

A link is ``/audio/{name}?expires=<unix seconds>&sig=<hex HMAC-SHA256>`` over the
name and the expiry, keyed by a secret derived from ``api.token``: changing the
token revokes every link, and a link names one file, so it cannot be turned
into another.  Without a token the audio is open anyway, and links are signed
with a key of this process (they end with it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from transcriber.api import bodies
from transcriber.api.context import ERRORS, ApiContext
from transcriber.api.guards import authorised
from transcriber.api.service import ApiError, FileStatus, file_not_found
from transcriber.errors import ErrorCode

MAX_LINK_SECONDS = 7 * 24 * 3600
DEFAULT_LINK_SECONDS = 3600

# What a browser's <audio> needs to hear to play a file; what is not here is octet-stream.
MEDIA_TYPES = {
    "mp3": "audio/mpeg", "wav": "audio/wav", "m4a": "audio/mp4", "mp4": "audio/mp4", "aac": "audio/aac",
    "ogg": "audio/ogg", "oga": "audio/ogg", "opus": "audio/ogg", "webm": "audio/webm", "flac": "audio/flac",
    "wma": "audio/x-ms-wma", "mkv": "video/x-matroska", "mov": "video/quicktime", "amr": "audio/amr",
}


def link_key(token: bytes) -> bytes:
    """The links' secret: derived from the token (never the token itself in a URL's MAC)."""
    seed = token or secrets.token_bytes(32)
    return hmac.new(seed, b"transcriber audio links v1", hashlib.sha256).digest()


def signature(key: bytes, name: str, expires: int) -> str:
    return hmac.new(key, f"{name}\n{expires}".encode(), hashlib.sha256).hexdigest()


def router(context: ApiContext) -> APIRouter:
    service = context.service
    token = context.config.api.token.get_secret_value().encode()
    key = link_key(token)
    routes = APIRouter()

    async def audio(request: Request, filename: str, expires: int | None = None,
                    sig: str | None = Query(None, max_length=64)) -> FileResponse:
        name = service.validate(filename)
        if not authorised(token, request.scope["headers"]):
            _check_link(key, name, expires, sig)
        state = await run_in_threadpool(service.state, name)
        path = state.audio or state.review_audio
        if path is None:
            raise file_not_found(name)
        extension = PurePosixPath(name).suffix.lower().lstrip(".")
        return FileResponse(path, media_type=MEDIA_TYPES.get(extension, "application/octet-stream"),
                            headers={"Content-Disposition": bodies.content_disposition(PurePosixPath(name).name,
                                                                                       "inline"),
                                     "Cache-Control": "private, max-age=0"})

    routes.add_api_route("/audio/{filename:path}", audio, methods=["GET"], response_class=FileResponse, responses={
        200: {"content": {"audio/mpeg": {}}}, 206: {"description": "the range asked for"},
        403: {"description": "an expired or altered link"}, 416: {"description": "a range past the end"}, **ERRORS})
    routes.add_api_route("/audio/{filename:path}", audio, methods=["HEAD"], response_class=FileResponse,
                         include_in_schema=False)

    @routes.get("/links/{filename:path}", dependencies=[context.authorised], responses=ERRORS)
    async def link(request: Request, filename: str,
                   expires_in: int = Query(DEFAULT_LINK_SECONDS, ge=1, le=MAX_LINK_SECONDS,
                                           description="seconds the link works for")) -> dict[str, Any]:
        name = service.validate(filename)
        state = await run_in_threadpool(service.state, name)
        if state.status is FileStatus.NOT_FOUND or (state.audio or state.review_audio) is None:
            raise file_not_found(name)
        expires = int(time.time()) + expires_in
        path = f"/audio/{quote(name)}?expires={expires}&sig={signature(key, name, expires)}"
        return {"filename": name, "url": str(request.base_url).rstrip("/") + path, "path": path,
                "expires": expires, "expires_at": datetime.fromtimestamp(expires, UTC).isoformat().replace(
                    "+00:00", "Z")}

    return routes


def _check_link(key: bytes, name: str, expires: int | None, sig: str | None) -> None:
    if expires is None or sig is None:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "missing or wrong API token (Authorization: Bearer … or "
                                                    "X-API-Key), and no signed link (GET /links)")
    if not hmac.compare_digest(sig.lower().encode(), signature(key, name, expires).encode()):
        raise ApiError(403, ErrorCode.INVALID_LINK, "the link's signature does not match this file", name)
    if expires < time.time():
        raise ApiError(403, ErrorCode.INVALID_LINK, "the link has expired", name)
