"""Request and response bodies of the HTTP API (docs/API.md), with examples for /docs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from transcriber.domain.settings import AUTO_LANGUAGE, COMPUTE_TYPES, DEVICES, SPEAKER_HINTS, speaker_hints_error

# Whisper's language codes (faster_whisper.tokenizer._LANGUAGE_CODES), kept
# here so validating a request does not import the engine's libraries.
WHISPER_LANGUAGES = frozenset({
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da", "de", "el",
    "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi", "hr", "ht", "hu", "hy",
    "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi",
    "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru",
    "sa", "sd", "si", "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
    "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "yue", "zh",
})

FILENAME_EXAMPLE = "звонок 2026-11-24.mp3"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TranscribeRequest(_Body):
    filename: str = Field(max_length=4096, examples=[FILENAME_EXAMPLE])
    language: str | None = Field(None, description="a Whisper language code, or 'auto'", examples=["ru"])
    model_size: str | None = Field(None, max_length=4096, examples=["base"])
    temperature: float | None = Field(None, ge=0, le=1, examples=[0.1])
    compute_type: Literal[COMPUTE_TYPES] | None = None  # type: ignore[valid-type]
    device: Literal[DEVICES] | None = None  # type: ignore[valid-type]
    word_timestamps: bool | None = Field(None, description="every word's start, end and probability")
    diarize: bool | None = Field(None, description="who speaks when (turns word timing on)")
    min_speakers: int | None = Field(None, ge=SPEAKER_HINTS[0], le=SPEAKER_HINTS[1], examples=[2])
    max_speakers: int | None = Field(None, ge=SPEAKER_HINTS[0], le=SPEAKER_HINTS[1], examples=[3])
    debug: bool | None = None
    force: bool = Field(False, description="transcribe again even if done, or take the file back from review")
    wait: float = Field(0, ge=0, description="seconds to wait for the result (bounded by api.max_wait_seconds)")

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        if value is None or value == AUTO_LANGUAGE:
            return value
        if value.lower() not in WHISPER_LANGUAGES:
            raise ValueError("not a Whisper language code (e.g. 'ru', 'en', 'auto')")
        return value.lower()

    @field_validator("max_speakers")
    @classmethod
    def _not_fewer_than_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        error = speaker_hints_error(info.data.get("min_speakers"), value)
        if error is not None:
            raise ValueError(error[1].split(": ", 1)[1])
        return value


class UploadRequest(TranscribeRequest):
    """POST /upload's form fields: those of POST /transcribe (``filename`` is the file part's
    name unless given), and what to do with a name already taken by other content."""

    overwrite: bool = Field(False, description="replace a file of that name with other content")
    rename: bool = Field(False, description="store it as 'name (2).ext' when the name is taken by other content")

    @field_validator("rename")
    @classmethod
    def _one_way(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("overwrite"):
            raise ValueError("overwrite and rename exclude each other")
        return value


class DeleteRequest(_Body):
    filename: str = Field(max_length=4096, examples=[FILENAME_EXAMPLE])


class SettingsBody(BaseModel):
    model_size: str
    language: str | None
    temperature: float
    compute_type: str
    device: str
    word_timestamps: bool = False
    diarize: bool = False
    min_speakers: int | None = None
    max_speakers: int | None = None
    debug: bool = False


class LastError(BaseModel):
    """An error object, as the specification has it; ``suggestion`` is the next step for a person."""

    code: str | None = None
    message: str | None = None
    timestamp: str | None = Field(None, description="when the attempt that failed ended")
    attempt: int | None = None
    suggestion: str | None = None


class QueuedResponse(BaseModel):
    status: str = Field(examples=["queued"])
    message: str
    filename: str
    settings: SettingsBody
    queue_position: int | None = Field(None, description="1-based; null while processing")
    priority: Literal["high", "normal"]
    restarted: bool = False
    stage: str | None = Field(None, description="after a `wait` that ran out: where the job is")
    progress: float | None = None
    current_attempt: int | None = None
    max_attempts: int | None = None
    start_time: str | None = None
    next_attempt_at: str | None = None
    last_error: LastError | None = None


class CompletedResponse(BaseModel):
    status: Literal["completed"]
    filename: str
    result: dict[str, Any]


class DeletedResponse(BaseModel):
    status: Literal["deleted"]
    message: str
    filename: str
    deleted_files: list[str]
    processing_interrupted: bool
    removed_from_queue: bool


class StatusResponse(BaseModel):
    status: str = Field(examples=["processing"], description="pending, queued, processing, completed or error")
    filename: str
    stage: str | None = Field(None, examples=["transcribing"])
    progress: float | None = Field(None, examples=[45.0])
    current_attempt: int | None = None
    max_attempts: int | None = None
    queue_position: int | None = None
    start_time: str | None = None
    next_attempt_at: str | None = None
    last_error: LastError | None = None
    debug_info: dict[str, Any] | None = Field(
        None, description="with debug: in_progress_content, full_error_history, processing_timeline")


class ErrorResponse(BaseModel):
    status: str = Field(examples=["error"])
    error_code: str = Field(examples=["file_not_found"])
    message: str
    filename: str | None = None
    suggestion: str | None = Field(None, description="the next step a person should take (docs/TROUBLESHOOTING.md)")
    setting: str | None = Field(None, description="unsupported_*: the setting this host cannot run")
    supported: list[str] | None = Field(None, description="unsupported_*: what this host supports instead")
    debug_info: dict[str, Any] | None = None
    last_error: LastError | None = None
    current_status: str | None = None


class HealthResponse(BaseModel):
    status: Literal["healthy", "unhealthy"]
    whisperx_available: bool
    models_loaded: list[str]
    memory_usage_mb: float = Field(description="resident memory of the daemon and its workers together")
    memory_breakdown_mb: dict[str, float] = Field(description="daemon and workers apart")
    queue_depth: int
    worker: list[dict[str, Any]]
    watcher: dict[str, Any]
    shared_folder_writable: bool
    shared_folder_error: str | None = Field(
        None, description="why the folder is not writable: the health probe's error, or a sidecar write it refused")
    database: Literal["ok", "down", "disabled"]
    database_sync: dict[str, Any] | None = Field(
        None, description="pending_changes, sync_lag_seconds, sync_failures, last_error")
    paused: bool


class TaskSummary(BaseModel):
    task_id: str
    filename: str
    status: str
    source: str | None = None
    priority: int | None = None
    settings: dict[str, Any] = {}
    attempts: int = 0
    max_attempts: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    audio_duration: float | None = None
    processing_time: float | None = None
    speakers: list[str] = []  # its transcript's speakers, when diarized


class TaskPage(BaseModel):
    total: int
    limit: int
    offset: int
    tasks: list[TaskSummary]


class SegmentHit(BaseModel):
    start: float | None = None
    end: float | None = None
    text: str | None = None  # corrected, where the file has corrections (/edits)
    speaker: str | None = None
    speaker_name: str | None = None  # the name people gave the speaker, if any


class SearchHit(BaseModel):
    task_id: str
    filename: str
    status: str
    language: str | None = None
    finished_at: datetime | None = None
    snippet: str
    segments: list[SegmentHit]


class SearchResults(BaseModel):
    query: str
    limit: int
    offset: int
    results: list[SearchHit]
