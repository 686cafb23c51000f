"""/health's ``whisperx_available``: what the workers have shown, not only that the package is installed."""

from __future__ import annotations

from transcriber.api.service import engine_available
from transcriber.scheduler.snapshot import WorkerState


def worker(last_load_ok: bool | None) -> WorkerState:
    return WorkerState("worker-1", 42, True, 0, 0, None, (), last_load_ok=last_load_ok)


def test_a_model_loaded_through_the_engine_proves_it_whatever_the_package_says() -> None:
    assert engine_available([worker(True)], installed=lambda: False) is True
    assert engine_available([worker(False), worker(True)], installed=lambda: False) is True


def test_a_failed_load_is_unavailable_even_when_the_package_is_installed() -> None:
    assert engine_available([worker(False)], installed=lambda: True) is False


def test_before_any_load_it_is_whether_the_package_is_installed() -> None:
    assert engine_available([worker(None)], installed=lambda: True) is True
    assert engine_available([], installed=lambda: False) is False
