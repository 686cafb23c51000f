"""What ``GET /tasks`` can ask the mirror for: one definition, from the query string to the SQL."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TaskFilter:
    """None (or empty) filters nothing; every field is a parameter of queries.sql's ``task_filter``."""

    status: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    speaker: str | None = None  # a speaker of its transcript (SPEAKER_00, …)
    speakers: int | None = None  # how many speakers its transcript has
    min_silence: float | None = None  # its transcript has a silence at least this long (seconds)

    def params(self) -> dict[str, Any]:
        return {name: (value if value != "" else None) for name, value in asdict(self).items()}
