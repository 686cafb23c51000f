"""Prometheus metrics: job outcomes from store events, live figures at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from transcriber.domain.job import JobStatus
from transcriber.scheduler.daemon import Daemon
from transcriber.scheduler.events import EventKind, JobEvent

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One registry per daemon (no global state), fed by the job store's events."""

    def __init__(self, daemon: Daemon) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter("transcriber_jobs", "Jobs that reached a final status", ["status"],
                            registry=self.registry)
        self.attempts = Counter("transcriber_attempts", "Transcription attempts started", registry=self.registry)
        self.retries = Counter("transcriber_retries", "Failed attempts scheduled for a retry", ["error_code"],
                               registry=self.registry)
        self.processing_seconds = Histogram(
            "transcriber_processing_seconds", "Wall time of successful transcriptions",
            buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600), registry=self.registry)
        self.real_time_factor = Histogram(
            "transcriber_real_time_factor", "Processing seconds per second of audio",
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5), registry=self.registry)
        self.registry.register(_LiveFigures(daemon))
        daemon.add_listener(self.on_event)

    def on_event(self, event: JobEvent) -> None:
        job = event.job
        if job is None:
            return
        if event.event == EventKind.COMPLETED and event.result is not None:
            self.jobs.labels(JobStatus.COMPLETED.value).inc()
            seconds = float(event.result.get("processing_time_seconds") or 0)
            duration = float(event.result.get("duration_seconds") or 0)
            self.processing_seconds.observe(seconds)
            if duration > 0:
                self.real_time_factor.observe(seconds / duration)
        elif event.event == EventKind.QUARANTINED:
            self.jobs.labels(JobStatus.ERROR.value).inc()
        elif event.event == EventKind.DROPPED:
            self.jobs.labels("deleted").inc()
        elif event.event != EventKind.SAVED:
            return
        elif job.status is JobStatus.PROCESSING and event.previous_status is not JobStatus.PROCESSING:
            self.attempts.inc()
        elif job.status is JobStatus.RETRY_WAIT and event.previous_status is JobStatus.PROCESSING and job.last_error:
            self.retries.labels(job.last_error.code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveFigures(Collector):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        snapshot = self.daemon.health_snapshot()
        depth = GaugeMetricFamily("transcriber_queue_depth", "Queued files by priority", labels=["priority"])
        by_priority = snapshot.queue_depth_by_priority
        for priority in (1, 2):
            depth.add_metric([str(priority)], by_priority.get(priority, 0))
        yield depth
        workers = snapshot.workers
        yield CounterMetricFamily("transcriber_worker_restarts", "Worker processes restarted (kill, crash, recycle)",
                                  value=sum(w.restarts for w in workers))
        loads = [seconds for w in workers for seconds in w.model_load_seconds]
        yield SummaryMetricFamily("transcriber_model_load_seconds", "Model load time in the worker",
                                  count_value=len(loads), sum_value=sum(loads))
        yield GaugeMetricFamily("transcriber_paused", "1 while the .pause marker exists", value=int(snapshot.paused))
        health = snapshot.mirror
        if health is not None:
            yield CounterMetricFamily("transcriber_database_sync_failures",
                                      "Failed attempts to reach or write the PostgreSQL mirror",
                                      value=health["sync_failures"])
            yield GaugeMetricFamily("transcriber_database_sync_lag_seconds",
                                    "Age of the oldest change not yet in the mirror", value=health["sync_lag_seconds"])
            yield GaugeMetricFamily("transcriber_database_up", "1 while the mirror is up to date",
                                    value=int(health["state"] == "ok"))
