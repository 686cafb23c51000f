"""Short-lived rendered responses for the polling routes, and the ASGI layer
that serves their hits before FastAPI's routing (bench/api_load.py)."""

from __future__ import annotations

import time

from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from transcriber.api.guards import authorised
from transcriber.scheduler.events import EventKind, JobEvent


class ResponseCache:
    """Rendered responses for a short time; a change of the job evicts its entry."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, str, Response]] = {}
        self.evictions = 0  # changes whenever an entry is evicted (a state changed)

    def get(self, key: str) -> Response | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[2]

    def put(self, key: str, job_key: str, response: Response, seen: int | None = None) -> None:
        """``seen``: :attr:`evictions` before the response was computed.  A state change
        meanwhile (the scan queuing the file, a slot finishing it) may already have been
        evicted, so the response may be stale: not cached, else GET /status said
        "pending" for up to the TTL about a file that was processing
        (found by tests/reliability/test_state_model.py)."""
        if seen is not None and seen != self.evictions:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, job_key, response)

    def on_event(self, event: JobEvent) -> None:
        """A store listener (slot threads): drop entries of the changed file."""
        if event.job is None or (event.event == EventKind.SAVED and event.previous_status is event.job.status):
            return
        self.evict(event.job.filename)

    def evict(self, job_key: str) -> None:
        """Drop the entries of one file, whatever name (NFC or NFD twin) they were asked by."""
        self.evictions += 1
        for key, (_, entry_job_key, _) in list(self._entries.items()):
            if entry_job_key == job_key:
                self._entries.pop(key, None)


class CachedResponses:
    """``GET /status/{filename}`` and ``GET /health`` straight from the response
    caches, before FastAPI's routing and dependency machinery: the hot path of
    hundreds of polling clients (bench/api_load.py).  A miss, a query string or
    a missing token falls through to the routes, which render, cache and refuse."""

    def __init__(self, app: ASGIApp, status_cache: ResponseCache, health_cache: ResponseCache,
                 token: bytes) -> None:
        self.app, self.status_cache, self.health_cache, self.token = app, status_cache, health_cache, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self._cached(scope) if scope["type"] == "http" and scope["method"] == "GET" else None
        if response is None:
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})

    def _cached(self, scope: Scope) -> Response | None:
        if scope["query_string"]:
            return None
        path: str = scope["path"]
        if path == "/health":
            return self.health_cache.get("health")
        if path.startswith("/status/") and authorised(self.token, scope["headers"]):
            return self.status_cache.get(path.removeprefix("/status/"))
        return None
