"""State transitions and retry decisions: pure functions, parametrised tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from transcriber.domain.job import (
    TRANSITIONS,
    AttemptStatus,
    JobStatus,
    Source,
    Stage,
    TransitionError,
    fail_attempt,
    hold_unsaved,
    interrupt_attempt,
    new_job,
    report_progress,
    requeue_with_settings,
    retry_due,
    start_attempt,
    succeed_attempt,
)
from transcriber.domain.retry import RetryPolicy
from transcriber.domain.settings import TranscriptionSettings
from transcriber.errors import AudioDecodeError, EngineError, JobTimeoutError, NoAudioStreamError, WorkerCrashedError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = TranscriptionSettings("base", "ru", 0.1, "int8", "cpu")
POLICY = RetryPolicy(base_seconds=30, max_seconds=600)


def job(max_attempts: int = 3, source: Source = Source.SCAN):
    return new_job("a.mp3", SETTINGS, source, max_attempts, NOW)


@pytest.mark.parametrize(("source", "priority"), [(Source.API, 1), (Source.SCAN, 2)])
def test_new_job_is_queued_with_the_priority_of_its_source(source: Source, priority: int) -> None:
    created = job(source=source)
    assert (created.status, created.priority, created.current_attempt, created.attempts) == (
        JobStatus.QUEUED, priority, 0, ())


def test_start_attempt_records_the_attempt_before_the_work() -> None:
    started = start_attempt(job(), NOW)
    assert started.status is JobStatus.PROCESSING
    assert started.current_attempt == 1
    assert started.attempts[-1].status is AttemptStatus.RUNNING
    assert started.progress.stage is Stage.LOADING_MODEL


@pytest.mark.parametrize(
    ("history", "expected_number"),
    [
        ([], 1),
        (["failed"], 2),
        (["failed", "interrupted"], 2),  # an interruption does not use up an attempt
        (["interrupted", "interrupted"], 1),
        (["failed", "failed"], 3),
    ],
)
def test_attempt_numbers_count_failures_only(history: list[str], expected_number: int) -> None:
    current = job()
    for outcome in history:
        current = start_attempt(current, NOW)
        if outcome == "failed":
            current = retry_due(fail_attempt(current, EngineError("x"), NOW, NOW))
        else:
            current = interrupt_attempt(current, NOW)
    assert start_attempt(current, NOW).current_attempt == expected_number


@pytest.mark.parametrize(
    ("error", "failed_before", "max_attempts", "expected_delay"),
    [
        (EngineError("x"), 0, 3, 30),
        (WorkerCrashedError("x"), 1, 3, 60),
        (JobTimeoutError("x"), 2, 3, None),  # third failure of three: give up
        (JobTimeoutError("x"), 2, 5, 120),
        (JobTimeoutError("x"), 6, 20, 600),  # capped
        (AudioDecodeError("x"), 0, 3, None),  # permanent: never retried
        (NoAudioStreamError("x"), 0, 3, None),
    ],
)
def test_retry_decision(error, failed_before: int, max_attempts: int, expected_delay: int | None) -> None:
    current = job(max_attempts)
    for _ in range(failed_before):
        current = retry_due(fail_attempt(start_attempt(current, NOW), EngineError("x"), NOW, NOW))
    current = start_attempt(current, NOW)
    decision = POLICY.retry_at(current, error, NOW)
    assert decision == (None if expected_delay is None else NOW + timedelta(seconds=expected_delay))


def test_fail_with_a_retry_time_waits_and_without_one_is_an_error() -> None:
    running = start_attempt(job(), NOW)
    waiting = fail_attempt(running, JobTimeoutError("slow"), NOW, NOW + timedelta(seconds=30))
    assert waiting.status is JobStatus.RETRY_WAIT
    assert waiting.next_attempt_at == NOW + timedelta(seconds=30)
    assert waiting.attempts[-1].error.code == "timeout"
    given_up = fail_attempt(running, AudioDecodeError("bad"), NOW, None)
    assert given_up.status is JobStatus.ERROR
    assert given_up.last_error.code == "audio_decode_failed"
    assert retry_due(waiting).status is JobStatus.QUEUED and retry_due(waiting).next_attempt_at is None


def test_fail_before_any_attempt_still_records_one() -> None:
    failed = fail_attempt(job(), AudioDecodeError("bad"), NOW, None)
    assert len(failed.attempts) == 1 and failed.attempts[0].status is AttemptStatus.FAILED


def test_success_and_interruption_close_the_running_attempt() -> None:
    running = start_attempt(job(), NOW)
    done = succeed_attempt(running, NOW + timedelta(seconds=5))
    assert done.status is JobStatus.COMPLETED
    assert done.attempts[-1].status is AttemptStatus.SUCCEEDED
    assert done.attempts[-1].end_time == NOW + timedelta(seconds=5)
    stopped = interrupt_attempt(running, NOW)
    assert stopped.status is JobStatus.QUEUED and stopped.attempts[-1].status is AttemptStatus.INTERRUPTED


@pytest.mark.parametrize(("given", "stored"), [(-5, 0.0), (45.678, 45.7), (250, 100.0)])
def test_progress_is_clamped_and_rounded(given: float, stored: float) -> None:
    assert report_progress(job(), Stage.TRANSCRIBING, given).progress.percentage == stored


@pytest.mark.parametrize(("failed", "seconds"), [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600)])
def test_backoff_is_exponential_and_capped(failed: int, seconds: int) -> None:
    assert POLICY.delay(failed) == timedelta(seconds=seconds)


def test_every_state_has_its_row_of_transitions() -> None:
    assert set(TRANSITIONS) == set(JobStatus)


def test_a_change_outside_the_table_is_refused() -> None:
    done = succeed_attempt(start_attempt(new_job("a.wav", SETTINGS, Source.SCAN, 3, NOW), NOW), NOW)
    with pytest.raises(TransitionError, match="completed -> processing"):
        start_attempt(done, NOW)
    with pytest.raises(TransitionError):
        retry_due(done)


def test_the_named_transitions_of_the_daemon_and_the_dispatcher() -> None:
    running = start_attempt(new_job("a.wav", SETTINGS, Source.SCAN, 3, NOW), NOW)
    other = TranscriptionSettings("small", None, 0.0, "int8", "cpu")
    requeued = requeue_with_settings(interrupt_attempt(running, NOW), other, 1, Source.API)
    assert (requeued.status, requeued.settings, requeued.priority, requeued.source) == (
        JobStatus.QUEUED, other, 1, Source.API)
    held = hold_unsaved(running, NOW + timedelta(seconds=30))
    assert held.status is JobStatus.RETRY_WAIT and held.next_attempt_at == NOW + timedelta(seconds=30)
