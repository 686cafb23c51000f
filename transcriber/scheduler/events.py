"""What the job store tells its listeners (the mirror, the metrics, long polls, the cache)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from transcriber.domain.job import Job, JobStatus


class EventKind(StrEnum):
    """Every store event; the values are the mirror's ``events.event_type`` too."""

    # a change of a job's state
    SAVED = "saved"  # any change written to the sidecar; ``previous_status`` says from what
    COMPLETED = "completed"  # the ``.result`` written, the job gone; ``result`` is the document
    QUARANTINED = "quarantined"  # moved to manual_review/
    DROPPED = "dropped"  # the job ended without a result (its file vanished, its result was copied in)
    # an activity that changes no state; ``details`` carry its figures
    ENGINE_LOAD = "engine_load"  # a worker loaded a model (``job`` may be None)
    ENGINE_RUN = "engine_run"  # an attempt ran on the engine
    FILE_DELETED = "file_deleted"  # a finished or quarantined file deleted through the API (``job`` is None)
    EDITED = "edited"  # a transcript's corrections saved (``job`` is None; ``viewed`` the corrected result)


ENDINGS = frozenset({EventKind.COMPLETED, EventKind.QUARANTINED, EventKind.DROPPED})  # the job is gone


@dataclass(frozen=True)
class JobEvent:
    """What listeners receive: the job after the change, and what happened."""

    job: Job | None
    event: EventKind
    result: dict[str, Any] | None = None
    previous_status: JobStatus | None = None  # for SAVED: the status before this change
    details: dict[str, Any] | None = None
    # COMPLETED and EDITED: the result with the file's corrections applied (None: it has none),
    # what the mirror stores for search
    viewed: dict[str, Any] | None = None


Listener = Callable[[JobEvent], None]
