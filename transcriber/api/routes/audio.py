"""The audio itself, for players and clients: GET /audio (HTTP Range) and GET /links,
signed links that play without the token until they expire (docs/API.md, audio).

A link is ``/audio/{name}?expires=<unix seconds>&sig=<hex HMAC-SHA256>`` over the
name, the expiry and the file's size and modification time, keyed by a secret
derived from ``api.token``: changing the token revokes every link, and a link is
for one recording, so it cannot be turned into another file, nor play a new
recording uploaded or copied over the same name.  Without a token the audio is open anyway, and links are signed
with a key of this process (they end with it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
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
from transcriber.api.service import ApiError, TranscriptionService, file_not_found
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


def signature(key: bytes, name: str, expires: int, audio: os.stat_result) -> str:
    message = f"{name}\n{expires}\n{audio.st_size}\n{audio.st_mtime_ns}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def router(context: ApiContext) -> APIRouter:
    service = context.service
    token = context.config.api.token.get_secret_value().encode()
    key = link_key(token)
    routes = APIRouter()

    async def audio(request: Request, filename: str, expires: int | None = None,
                    sig: str | None = Query(None, max_length=64)) -> FileResponse:
        name = service.validate(filename)
        allowed = authorised(token, request.scope["headers"])
        if not allowed and (expires is None or sig is None):
            raise ApiError(401, ErrorCode.UNAUTHORIZED, "missing or wrong API token (Authorization: Bearer … or "
                                                        "X-API-Key), and no signed link (GET /links)")
        path, audio = await run_in_threadpool(_audio_of, service, name)
        if not allowed:
            _check_link(key, name, expires, sig, audio)
        extension = PurePosixPath(name).suffix.lower().lstrip(".")
        return FileResponse(path, stat_result=audio, media_type=MEDIA_TYPES.get(extension, "application/octet-stream"),
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
        _path, audio = await run_in_threadpool(_audio_of, service, name)
        expires = int(time.time()) + expires_in
        path = f"/audio/{quote(name)}?expires={expires}&sig={signature(key, name, expires, audio)}"
        return {"filename": name, "url": str(request.base_url).rstrip("/") + path, "path": path,
                "expires": expires, "expires_at": datetime.fromtimestamp(expires, UTC).isoformat().replace(
                    "+00:00", "Z")}

    return routes


def _audio_of(service: TranscriptionService, name: str) -> tuple[str, os.stat_result]:
    """The recording's real path (a link resolved once: what is checked is what is served)
    and its stat; 404 when the file is neither in the folder nor in review."""
    state = service.state(name)
    path = state.audio or state.review_audio
    if path is None:
        raise file_not_found(name)
    real = os.path.realpath(path)
    try:
        return real, os.stat(real)
    except OSError as exc:
        raise file_not_found(name) from exc


def _check_link(key: bytes, name: str, expires: int | None, sig: str | None, audio: os.stat_result) -> None:
    assert expires is not None and sig is not None
    if not hmac.compare_digest(sig.lower().encode(), signature(key, name, expires, audio).encode()):
        raise ApiError(403, ErrorCode.INVALID_LINK, "the link's signature does not match this recording", name)
    if expires < time.time():
        raise ApiError(403, ErrorCode.INVALID_LINK, "the link has expired", name)
