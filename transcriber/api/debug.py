"""What clients read about a file's history: error objects and ``debug_info``.

Pure functions of a sidecar document (``sidecars.job_to_dict`` of an active job,
or the ``.in_progress`` kept in ``manual_review/``), so a job in memory and one in
review are described alike.  The specification's names (``in_progress_content``,
``full_error_history``, ``processing_timeline``; errors as ``{code, message,
timestamp, attempt}``) sit beside the first release's (``in_progress``,
``attempt_timeline``), which clients already read.
"""

from __future__ import annotations

from typing import Any

from transcriber.errors import suggestion_for


def error_history(sidecar: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every attempt's error, oldest first."""
    history = []
    for attempt in (sidecar or {}).get("attempts") or []:
        error = attempt.get("error") or None
        if error:
            history.append(error_object(error.get("code"), error.get("message"),
                                        attempt.get("end_time") or attempt.get("start_time"),
                                        attempt.get("attempt_number")))
    return history


def error_object(code: str | None, message: str | None, timestamp: str | None, attempt: int | None) -> dict[str, Any]:
    return {"code": code, "message": message, "timestamp": timestamp, "attempt": attempt,
            "suggestion": suggestion_for(code)}


def last_error(sidecar: dict[str, Any] | None) -> dict[str, Any] | None:
    history = error_history(sidecar)
    return history[-1] if history else None


def processing_timeline(sidecar: dict[str, Any] | None, result: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """What happened to the file, in order: found, queued, each attempt's start and end.
    A completed file has no sidecar left: its ``.result`` says when each phase began."""
    if sidecar is None:
        timeline = ((result or {}).get("metadata") or {}).get("timeline") or {}
        return [{"event": event, "at": timeline[event]} for event in ("detected", "queued", "started", "finished")
                if timeline.get(event)]
    events: list[dict[str, Any]] = []
    if sidecar.get("detected_at"):
        events.append({"event": "detected", "at": sidecar["detected_at"]})
    if sidecar.get("creation_time"):
        events.append({"event": "queued", "at": sidecar["creation_time"]})
    for attempt in sidecar.get("attempts") or []:
        number = attempt.get("attempt_number")
        events.append({"event": "attempt_started", "attempt": number, "at": attempt.get("start_time")})
        if attempt.get("status") != "running":
            ended = {"event": f"attempt_{attempt.get('status')}", "attempt": number, "at": attempt.get("end_time")}
            if attempt.get("error"):
                ended["error_code"] = attempt["error"].get("code")
            events.append(ended)
    return events


def debug_info(sidecar: dict[str, Any] | None, current_status: str,
               result: dict[str, Any] | None = None) -> dict[str, Any]:
    attempts = (sidecar or {}).get("attempts") or []
    return {
        "in_progress_content": sidecar,
        "full_error_history": error_history(sidecar),
        "processing_timeline": processing_timeline(sidecar, result),
        "current_status": current_status,
        # The first release's names, kept for the clients that read them.
        "in_progress": sidecar,
        "attempt_timeline": [{k: a.get(k) for k in ("attempt_number", "start_time", "end_time", "status", "error")}
                             for a in attempts],
    }
