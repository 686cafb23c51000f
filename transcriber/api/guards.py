"""What every request passes before a route: the API token and the body size
limit, and the error shape they answer with."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from transcriber.errors import ErrorCode, suggestion_for


def error_response(http_status: int, code: ErrorCode, message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "error_code": code, "message": message, "filename": None,
                         "suggestion": suggestion_for(code)}, status_code=http_status)


def authorised(token: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
    """The token from ``Authorization: Bearer …`` or ``X-API-Key`` (raw ASGI headers) matches."""
    if not token:
        return True
    offered = b""
    for name, value in headers:
        if name == b"x-api-key" and not offered:
            offered = value
        elif name == b"authorization" and value[:7].lower() == b"bearer ":
            offered = value[7:].strip()
            break
    return hmac.compare_digest(offered, token)


DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


class ProtectedDocs:
    """With a token set, the API's description needs it too (unless ``api.public_docs``):
    it lists every route and field to whoever asks (issue 13)."""

    def __init__(self, app: ASGIApp, token: bytes) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in DOCS_PATHS and not authorised(self.token, scope["headers"]):
            refusal = error_response(401, ErrorCode.UNAUTHORIZED,
                                     "missing or wrong API token (Authorization: Bearer … or "
                                     "X-API-Key); api.public_docs: true serves /docs without it")
            refusal.headers["WWW-Authenticate"] = "Bearer"
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for bodies over ``limit`` bytes, declared or streamed; paths starting with a
    key of ``larger`` (``/edits/``) may send up to its value."""

    def __init__(self, app: ASGIApp, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app, self.limit, self.larger = app, limit, dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = next((size for prefix, size in self.larger.items() if path.startswith(prefix)), self.limit)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            refusal = error_response(413, ErrorCode.REQUEST_TOO_LARGE, f"the request body is over {limit} bytes")
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._counting(receive, limit), send)

    @staticmethod
    def _counting(receive: Receive, limit: int) -> Callable[[], Awaitable[Message]]:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise StarletteHTTPException(413, f"the request body is over {limit} bytes")
            return message

        return counted
