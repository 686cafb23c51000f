"""What every route of the API shares: the daemon's facade, the service over
the folder, the caches and long polls, and the token check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transcriber.api.cache import ResponseCache
from transcriber.api.long_poll import LongPollWaiters
from transcriber.api.metrics import Metrics
from transcriber.api.schemas import ErrorResponse
from transcriber.api.service import TranscriptionService
from transcriber.config import Config
from transcriber.scheduler.daemon import Daemon

# The error answers every route documents (docs/API.md, errors).
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 422)
}


@dataclass(frozen=True)
class ApiContext:
    daemon: Daemon
    config: Config
    service: TranscriptionService
    waiters: LongPollWaiters
    status_cache: ResponseCache
    health_cache: ResponseCache
    metrics: Metrics
    authorised: Any  # the token dependency (``Depends``), for routes that need the token
