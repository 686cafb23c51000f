"""Rebuilding the queue from the sidecars at start: a pure decision per file.

What a sidecar left by the previous run means now:

| sidecar status | audio | result | action |
|---|---|---|---|
| any | any | its own | the job finished; discard the stale ``.in_progress`` |
| queued | present | absent | enqueue again |
| queued, waiting for the file | present | absent | wait for the watcher to find it complete |
| retry_wait | present | absent | wait for ``next_attempt_at`` |
| processing | present | absent | the run died mid-file: a failed attempt, then retry or review |
| error | any | absent | finish moving it to ``manual_review/`` |
| queued/retry_wait/processing | absent | absent | the audio is gone; discard the sidecar |

"its own" is a ``.result`` with the job's ``task_id``; a result of an earlier
task (a forced re-run is replacing it) counts as absent.  The daemon decides
that when it reads the folder and passes ``has_result`` accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from transcriber.domain.job import Job, JobStatus, fail_attempt, retry_due
from transcriber.domain.retry import RetryPolicy
from transcriber.errors import DaemonDiedError


class Action(StrEnum):
    ENQUEUE = "enqueue"
    WAIT_RETRY = "wait_retry"
    QUARANTINE = "quarantine"
    DISCARD = "discard"
    AWAIT_FILE = "await_file"


@dataclass(frozen=True)
class Recovery:
    action: Action
    job: Job


def recover(job: Job, has_audio: bool, has_result: bool, now: datetime, policy: RetryPolicy) -> Recovery:
    if has_result:
        return Recovery(Action.DISCARD, job)
    if job.status is JobStatus.ERROR:
        return Recovery(Action.QUARANTINE, job)
    if not has_audio:
        return Recovery(Action.DISCARD, job)
    if job.status is JobStatus.PROCESSING:
        error = DaemonDiedError("the daemon stopped abruptly while this file was being transcribed")
        failed = fail_attempt(job, error, now, policy.retry_at(job, error, now))
        return recover(failed, has_audio, has_result, now, policy)
    if job.status is JobStatus.RETRY_WAIT:
        return Recovery(Action.WAIT_RETRY, job)
    if job.waiting_for_file:
        return Recovery(Action.AWAIT_FILE, job)
    return Recovery(Action.ENQUEUE, retry_due(job))
