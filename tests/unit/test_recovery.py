from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from transcriber.domain.job import Job, JobStatus, Source, await_file, fail_attempt, new_job, start_attempt
from transcriber.domain.recovery import Action, recover
from transcriber.domain.retry import RetryPolicy
from transcriber.domain.settings import TranscriptionSettings
from transcriber.errors import EngineError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(base_seconds=10, max_seconds=100)


def job_in(status: JobStatus, failed: int = 0, max_attempts: int = 3) -> Job:
    current = new_job("a.wav", TranscriptionSettings("base", "ru", 0.1, "int8", "cpu"), Source.SCAN, max_attempts, NOW)
    for _ in range(failed):
        current = fail_attempt(start_attempt(current, NOW), EngineError("x"), NOW, NOW)
    if status is JobStatus.PROCESSING:
        return start_attempt(current, NOW)
    if status is JobStatus.ERROR:
        return fail_attempt(start_attempt(current, NOW), EngineError("x"), NOW, None)
    from dataclasses import replace

    return replace(current, status=status)


@pytest.mark.parametrize(
    ("status", "failed", "has_audio", "has_result", "action", "new_status"),
    [
        (JobStatus.QUEUED, 0, True, False, Action.ENQUEUE, JobStatus.QUEUED),
        (JobStatus.RETRY_WAIT, 1, True, False, Action.WAIT_RETRY, JobStatus.RETRY_WAIT),
        (JobStatus.PROCESSING, 0, True, False, Action.WAIT_RETRY, JobStatus.RETRY_WAIT),
        (JobStatus.PROCESSING, 2, True, False, Action.QUARANTINE, JobStatus.ERROR),
        (JobStatus.ERROR, 0, True, False, Action.QUARANTINE, JobStatus.ERROR),
        (JobStatus.ERROR, 0, False, False, Action.QUARANTINE, JobStatus.ERROR),
        (JobStatus.QUEUED, 0, False, False, Action.DISCARD, JobStatus.QUEUED),
        (JobStatus.PROCESSING, 0, True, True, Action.DISCARD, JobStatus.PROCESSING),
    ],
)
def test_recovery_table(status, failed, has_audio, has_result, action, new_status) -> None:
    outcome = recover(job_in(status, failed), has_audio, has_result, NOW, POLICY)
    assert outcome.action is action
    assert outcome.job.status is new_status


def test_a_processing_file_counts_as_a_failed_attempt_with_backoff() -> None:
    outcome = recover(job_in(JobStatus.PROCESSING), True, False, NOW, POLICY)
    assert outcome.job.attempts[-1].error.code == "daemon_died"
    assert outcome.job.next_attempt_at == NOW + timedelta(seconds=10)


def test_a_job_waiting_for_its_file_waits_again_after_a_restart() -> None:
    waiting = await_file(job_in(JobStatus.QUEUED))
    outcome = recover(waiting, True, False, NOW, POLICY)
    assert outcome.action is Action.AWAIT_FILE and outcome.job.waiting_for_file
    assert recover(waiting, False, False, NOW, POLICY).action is Action.DISCARD
