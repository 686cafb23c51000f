"""Sidecar files: the job state on disk, written atomically (docs/ARCHITECTURE.md, a file's own files).

``call.mp3.in_progress`` holds a queued, processing or failing job;
``call.mp3.result`` the finished transcript; ``call.mp3.edits`` the human
corrections of it (``domain/edits.py``), versioned; ``call.mp3.srt`` and the other
renderings of ``output.write_formats`` are copies of it in other formats
(:func:`rendering_path`).  Every write goes to a temp file
in the same folder, is fsynced, replaces the target with ``os.replace`` and
fsyncs the folder, so a reader (or a restart after a crash) sees the old file
or the new one, never a torn one.  An unreadable sidecar is logged and
treated as absent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transcriber.domain import edits as corrections
from transcriber.domain.job import (
    Attempt,
    AttemptError,
    AttemptStatus,
    Job,
    JobStatus,
    Progress,
    Source,
    Stage,
    recorded_settings,
)
from transcriber.domain.settings import TranscriptionSettings
from transcriber.errors import SidecarUnreadable

log = logging.getLogger("Sidecars")

IN_PROGRESS_SUFFIX = ".in_progress"
RESULT_SUFFIX = ".result"
EDITS_SUFFIX = ".edits"
TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".json"
UPLOAD_PREFIX, UPLOAD_SUFFIX = ".upload-", ".part"  # an upload being written (folder/intake.py)
SIDECAR_MODE = 0o644


def in_progress_path(audio: Path) -> Path:
    return audio.with_name(audio.name + IN_PROGRESS_SUFFIX)


def result_path(audio: Path) -> Path:
    return audio.with_name(audio.name + RESULT_SUFFIX)


def edits_path(audio: Path) -> Path:
    return audio.with_name(audio.name + EDITS_SUFFIX)


def read_edits(audio: Path) -> corrections.Edits:
    """The file's corrections; none (version 0) when there is no ``.edits``.  One that is not
    a corrections document is logged, read as none, and kept aside as
    ``call.mp3.edits.unreadable`` by the next write.  One that exists but cannot be read
    (permissions, the share) raises :class:`SidecarUnreadable`: read as none, its version
    would be 0, and a save on version 0 would replace corrections only out of reach."""
    return _edits_at(edits_path(audio)) or corrections.Edits()


def _edits_at(path: Path) -> corrections.Edits | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SidecarUnreadable(f"{path.name} cannot be read: {exc.strerror or exc}") from exc
    try:
        document = json.loads(raw)
        if not isinstance(document, dict):
            raise TypeError("not a JSON object")
        return corrections.from_dict(document)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        log.warning("Ignoring malformed sidecar %s: %s", path.name, exc)
        return None


def write_edits(audio: Path, edits: corrections.Edits, indent: int | None = 2) -> None:
    """Atomically, durably; an unreadable ``.edits`` it replaces is kept aside, not lost."""
    path = edits_path(audio)
    if path.exists() and _edits_at(path) is None:
        with contextlib.suppress(OSError):
            os.replace(path, path.with_name(path.name + ".unreadable"))
    write_json_atomic(path, corrections.to_dict(edits), indent)


def rendering_path(audio: Path, fmt: str) -> Path:
    """``call.mp3`` -> ``call.mp3.srt``: the rendering that ``output.write_formats`` writes."""
    return audio.with_name(f"{audio.name}.{fmt}")


def format_time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def write_json_atomic(path: Path, document: dict[str, Any], indent: int | None = 2, durable: bool = True) -> None:
    """Write ``document`` so that ``path`` is never seen half-written.

    ``durable`` adds the fsyncs that make the write survive a power loss.
    Without them the write is still atomic for every reader and survives a
    crash of the process; it is for state the daemon can rebuild (a newly
    queued file, progress figures).  Raises OSError (ENOSPC, EROFS, …) with
    the target untouched.
    """
    write_bytes_atomic(path, json.dumps(document, ensure_ascii=False, indent=indent).encode("utf-8"), durable)


def write_bytes_atomic(path: Path, data: bytes, durable: bool = True, sync_folder: bool = True) -> None:
    """:func:`write_json_atomic` for any content (the renderings of ``output.write_formats``).

    ``sync_folder=False`` leaves the folder's fsync to the caller, who writes
    several files and syncs the folder once after the last."""
    fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, SIDECAR_MODE)  # mkstemp's 0600 would hide results from other users of a share
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            if durable:
                os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        _remove_quietly(Path(temp_name))
        raise
    if durable and sync_folder:
        fsync_folder(path.parent)


def is_temp_name(name: str) -> bool:
    """A temp file of :func:`write_json_atomic` or of an upload (what a crash mid-write leaves behind)."""
    return ((name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX))
            or (name.startswith(UPLOAD_PREFIX) and name.endswith(UPLOAD_SUFFIX)))


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path) -> dict[str, Any] | None:
    """The parsed document, or None when absent or unreadable (logged)."""
    try:
        with path.open("rb") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("Ignoring unreadable sidecar %s: %s", path.name, exc)
        return None
    if not isinstance(document, dict):
        log.warning("Ignoring sidecar %s: not a JSON object", path.name)
        return None
    return document


def read_in_progress(audio: Path) -> Job | None:
    document = read_json(in_progress_path(audio))
    if document is None:
        return None
    try:
        return job_from_dict(document)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("Ignoring malformed sidecar %s: %s", in_progress_path(audio).name, exc)
        return None


def remove_in_progress(audio: Path) -> None:
    _remove_quietly(in_progress_path(audio))
    fsync_folder(audio.parent)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def job_to_dict(job: Job) -> dict[str, Any]:
    return {
        "task_id": job.task_id,
        "filename": job.filename,
        "creation_time": format_time(job.creation_time),
        "status": job.status.value,
        "source": job.source.value,
        "priority": job.priority,
        "current_attempt": job.current_attempt,
        "max_attempts": job.max_attempts,
        "next_attempt_at": format_time(job.next_attempt_at),
        "settings": recorded_settings(job.settings, job.debug),
        "progress_info": {"stage": job.progress.stage.value, "percentage": job.progress.percentage},
        "attempts": [_attempt_to_dict(a) for a in job.attempts],
        "detected_at": format_time(job.detected_at),
    }


def _attempt_to_dict(attempt: Attempt) -> dict[str, Any]:
    error = None if attempt.error is None else {"code": attempt.error.code, "message": attempt.error.message}
    return {
        "attempt_number": attempt.attempt_number,
        "start_time": format_time(attempt.start_time),
        "end_time": format_time(attempt.end_time),
        "status": attempt.status.value,
        "error": error,
    }


def job_from_dict(document: dict[str, Any]) -> Job:
    progress = document.get("progress_info") or {}
    return Job(
        task_id=str(document["task_id"]),
        filename=str(document["filename"]),
        creation_time=parse_time(document["creation_time"]) or utc_now(),
        status=JobStatus(document["status"]),
        source=Source(document.get("source", "scan")),
        priority=int(document.get("priority", 2)),
        settings=TranscriptionSettings.from_dict(document["settings"]),
        debug=bool(document["settings"].get("debug", False)),
        max_attempts=int(document["max_attempts"]),
        current_attempt=int(document.get("current_attempt", 0)),
        next_attempt_at=parse_time(document.get("next_attempt_at")),
        progress=Progress(Stage(progress.get("stage", "queued")), float(progress.get("percentage", 0.0))),
        attempts=tuple(_attempt_from_dict(a) for a in document.get("attempts", [])),
        detected_at=parse_time(document.get("detected_at")),
    )


def _attempt_from_dict(document: dict[str, Any]) -> Attempt:
    error = document.get("error")
    return Attempt(
        attempt_number=int(document["attempt_number"]),
        start_time=parse_time(document["start_time"]) or utc_now(),
        status=AttemptStatus(document["status"]),
        end_time=parse_time(document.get("end_time")),
        error=None if not error else AttemptError(str(error["code"]), str(error["message"])),
    )
