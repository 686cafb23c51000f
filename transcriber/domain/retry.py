"""The retry policy: a pure decision from (error, job, now) to a retry time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from transcriber.domain.job import AttemptStatus, Job
from transcriber.errors import JobError

MAX_DOUBLINGS = 32  # far past any sane cap; 2**1024 seconds would overflow a float


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    max_seconds: float

    def delay(self, failed_attempts: int) -> timedelta:
        """Exponential backoff: base, 2×base, 4×base … capped at ``max_seconds``."""
        seconds = self.base_seconds * (2 ** max(failed_attempts - 1, 0))
        return timedelta(seconds=min(seconds, self.max_seconds))

    def retry_at(self, job: Job, error: JobError, now: datetime) -> datetime | None:
        """When to try ``job`` again after ``error`` (not yet recorded in it).

        None means give up: the error is permanent, or the job has used its
        attempts (an error that uses none is never given up on).  The job's own
        ``max_attempts`` counts, so a sidecar written under an older
        configuration keeps the promise it made.
        """
        if error.permanent:
            return None
        if not error.uses_attempt:  # the folder's trouble: wait for it, however long, backing off
            waits = sum(1 for a in job.attempts if a.status is AttemptStatus.INTERRUPTED and a.error is not None)
            return now + self.delay(min(waits + 1, MAX_DOUBLINGS))
        failed = job.failed_attempts + 1
        if failed >= job.max_attempts:
            return None
        return now + self.delay(failed)
