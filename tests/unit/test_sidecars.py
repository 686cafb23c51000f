from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from transcriber.domain.job import Source, Stage, fail_attempt, new_job, report_progress, start_attempt
from transcriber.domain.settings import TranscriptionSettings
from transcriber.errors import JobTimeoutError
from transcriber.folder import sidecars

NOW = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


def test_in_progress_round_trip_with_the_design_fields(tmp_path: Path) -> None:
    job = new_job("звонок.mp3", TranscriptionSettings("base", None, 0.1, "int8", "cpu"), Source.API, 3, NOW)
    job = report_progress(start_attempt(job, NOW), Stage.TRANSCRIBING, 45)
    job = fail_attempt(job, JobTimeoutError("too slow"), NOW, NOW)
    audio = tmp_path / "звонок.mp3"
    sidecars.write_json_atomic(sidecars.in_progress_path(audio), sidecars.job_to_dict(job))
    document = json.loads((tmp_path / "звонок.mp3.in_progress").read_text(encoding="utf-8"))
    assert set(document) >= {
        "task_id", "filename", "creation_time", "status", "source", "priority", "current_attempt", "max_attempts",
        "next_attempt_at", "settings", "progress_info", "attempts",
    }
    assert document["creation_time"] == "2026-03-04T05:06:07.890Z"
    assert document["status"] == "retry_wait" and document["source"] == "api" and document["priority"] == 1
    assert document["attempts"][0]["error"] == {"code": "timeout", "message": "too slow"}
    assert "звонок" in (tmp_path / "звонок.mp3.in_progress").read_text(encoding="utf-8")  # not \u-escaped
    assert sidecars.read_in_progress(audio) == job


@pytest.mark.parametrize("content", ["", "{", "[1, 2]", '{"task_id": 1}', "\x00\x01"])
def test_unreadable_sidecars_are_treated_as_absent(tmp_path: Path, content: str) -> None:
    (tmp_path / "a.wav.in_progress").write_text(content)
    assert sidecars.read_in_progress(tmp_path / "a.wav") is None


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "a.wav.result"
    sidecars.write_json_atomic(target, {"v": 1})

    def no_space(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError):
        sidecars.write_json_atomic(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav.result"]


def test_times_are_utc_with_a_z() -> None:
    assert sidecars.format_time(NOW) == "2026-03-04T05:06:07.890Z"
    assert sidecars.parse_time("2026-03-04T05:06:07.890Z") == NOW
