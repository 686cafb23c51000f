"""One error hierarchy with stable ``error_code`` strings.

The codes are a contract: they appear in sidecars, API bodies and the
database, and docs/TROUBLESHOOTING.md explains each.  Every code is a member
of ``ErrorCode``; every error the daemon raises on purpose derives from
``TranscriberError``.  Engine failures are classified once, at the engine
boundary, into one of these classes.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every error code the daemon writes or answers with."""

    # a transcription attempt (sidecars, results, the database)
    EMPTY_FILE = "empty_file"
    AUDIO_DECODE_FAILED = "audio_decode_failed"
    NO_AUDIO_STREAM = "no_audio_stream"
    MODEL_UNAVAILABLE = "model_unavailable"
    TIMEOUT = "timeout"
    WORKER_CRASHED = "worker_crashed"
    WORKER_START_FAILED = "worker_start_failed"
    OUT_OF_MEMORY = "out_of_memory"
    DAEMON_DIED = "daemon_died"
    ENGINE_ERROR = "engine_error"
    OUTPUT_WRITE_FAILED = "output_write_failed"
    # the API's answers
    INVALID_FILENAME = "invalid_filename"
    INVALID_JSON = "invalid_json"
    INVALID_REQUEST = "invalid_request"
    INVALID_SETTINGS = "invalid_settings"
    UNSUPPORTED_DEVICE = "unsupported_device"
    UNSUPPORTED_COMPUTE_TYPE = "unsupported_compute_type"
    UNSUPPORTED_MODEL_SIZE = "unsupported_model_size"
    UNAUTHORIZED = "unauthorized"
    FILE_NOT_FOUND = "file_not_found"
    RESULT_NOT_FOUND = "result_not_found"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    HTTP_ERROR = "http_error"
    IN_MANUAL_REVIEW = "in_manual_review"
    NAME_IN_USE = "name_in_use"
    FILE_EXISTS = "file_exists"
    UNSUPPORTED_EXTENSION = "unsupported_extension"
    INVALID_LINK = "invalid_link"
    REQUEST_TOO_LARGE = "request_too_large"
    INVALID_EDITS = "invalid_edits"
    EDIT_CONFLICT = "edit_conflict"
    INVALID_RANGE = "invalid_range"
    SIDECAR_UNREADABLE = "sidecar_unreadable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    INTERNAL_ERROR = "internal_error"
    # the daemon's own start and stop (the log and the exit status, never a client)
    CONFIG_INVALID = "config_invalid"
    ALREADY_RUNNING = "already_running"
    MODEL_INVALID = "model_invalid"
    INTERRUPTED = "interrupted"


# Codes no client receives: they end the daemon's start, or an attempt on purpose.
NOT_SENT = frozenset({ErrorCode.CONFIG_INVALID, ErrorCode.ALREADY_RUNNING, ErrorCode.MODEL_INVALID,
                      ErrorCode.INTERRUPTED})


class TranscriberError(Exception):
    """Base of every error the daemon raises on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EditConflict(TranscriberError):
    """Corrections based on a version (or a transcript) that is no longer the current one."""

    code = ErrorCode.EDIT_CONFLICT

    def __init__(self, message: str, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version


class SidecarUnreadable(TranscriberError):
    """A sidecar that exists but cannot be read (permissions, the share): never read as absent."""

    code = ErrorCode.SIDECAR_UNREADABLE


class ConfigError(TranscriberError):
    """A bad configuration value; the daemon refuses to start."""

    code = ErrorCode.CONFIG_INVALID


class AlreadyRunningError(TranscriberError):
    """Another daemon holds the folder's lock."""

    code = ErrorCode.ALREADY_RUNNING


class ModelError(TranscriberError):
    """A model is missing, incomplete or fails its checksum (at start, or installing).

    A job that meets one fails with ``ModelUnavailableError`` instead."""

    code = ErrorCode.MODEL_INVALID


class InvalidSettingsError(TranscriberError, ValueError):
    """Settings that contradict each other or leave their range (``setting`` names the field):
    a 422 from the API, exit code 2 from the CLI, a config error at start."""

    code = ErrorCode.INVALID_SETTINGS

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


class UnsupportedSettingError(TranscriberError):
    """A setting this host cannot run (a device it lacks, a compute type its device
    cannot compute); ``code`` names the setting: ``unsupported_device``, …"""

    def __init__(self, setting: str, message: str, supported: tuple[str, ...]) -> None:
        super().__init__(message)
        self.setting = setting
        self.supported = supported
        self.code = ErrorCode(f"unsupported_{setting}")


class Interrupted(TranscriberError):
    """A running job was stopped on purpose (cancel, shutdown, new settings)."""

    code = ErrorCode.INTERRUPTED


class JobError(TranscriberError):
    """A failure of one transcription attempt.

    ``permanent`` errors will fail the same way on every attempt, so the file
    goes straight to ``manual_review/``; the others are retried with backoff.
    An error that is not the file's fault (``uses_attempt`` false) does not
    count against ``max_attempts``: the file waits for the folder to recover.
    """

    permanent = False
    uses_attempt = True


class PermanentJobError(JobError):
    permanent = True


class EmptyFileError(PermanentJobError):
    code = ErrorCode.EMPTY_FILE


class AudioDecodeError(PermanentJobError):
    code = ErrorCode.AUDIO_DECODE_FAILED


class NoAudioStreamError(PermanentJobError):
    code = ErrorCode.NO_AUDIO_STREAM


class ModelUnavailableError(PermanentJobError):
    code = ErrorCode.MODEL_UNAVAILABLE


class TransientJobError(JobError):
    pass


class JobTimeoutError(TransientJobError):
    code = ErrorCode.TIMEOUT


class WorkerCrashedError(TransientJobError):
    code = ErrorCode.WORKER_CRASHED


class WorkerStartError(TransientJobError):
    """The worker died before it was ready for work: the host's trouble, not the
    file's, so it uses up no attempt.  Counting it sent every file of an image
    whose workers could not start to ``manual_review/`` (issue 13)."""

    code = ErrorCode.WORKER_START_FAILED
    uses_attempt = False


class OutOfMemoryError(TransientJobError):
    code = ErrorCode.OUT_OF_MEMORY


class DaemonDiedError(TransientJobError):
    """The daemon itself stopped abruptly while the file was processing."""

    code = ErrorCode.DAEMON_DIED


class EngineError(TransientJobError):
    """The engine raised something we could not classify more precisely."""

    code = ErrorCode.ENGINE_ERROR


class OutputWriteError(TransientJobError):
    """The transcript could not be written (disk full, read-only folder).

    The folder's trouble, not the file's: counting it as a failed attempt sent
    a good file to ``manual_review/`` after a disk was full for a while
    (tests/reliability/test_disk_trouble.py), so it is retried until it fits.
    """

    code = ErrorCode.OUTPUT_WRITE_FAILED
    uses_attempt = False


_JOB_ERRORS: dict[ErrorCode, type[JobError]] = {
    cls.code: cls
    for cls in (
        EmptyFileError, AudioDecodeError, NoAudioStreamError, ModelUnavailableError,
        JobTimeoutError, WorkerCrashedError, WorkerStartError, OutOfMemoryError, DaemonDiedError,
        EngineError, OutputWriteError,
    )
}


def job_error_from_code(code: str, message: str) -> JobError:
    """Rebuild an error sent across the worker pipe as (code, message)."""
    return _JOB_ERRORS.get(code, EngineError)(message)  # type: ignore[call-overload]


JOB_ERROR_CODES: tuple[ErrorCode, ...] = tuple(_JOB_ERRORS)


class DatabaseUnavailable(TranscriberError):
    """PostgreSQL cannot be reached (down, slow, refusing); the message says why."""

    code = ErrorCode.DATABASE_UNAVAILABLE


class MirrorDisabled(DatabaseUnavailable):
    """The mirror is off (no ``database.url``): there is no database to ask."""


class InvalidFilename(TranscriberError):
    """A name from a client that is not a plain file of the folder; the reason is safe to show."""

    code = ErrorCode.INVALID_FILENAME


# The next step a person should take, by error code: sent as ``suggestion`` in the
# API's error bodies and error objects, and the "what to do" column of
# docs/TROUBLESHOOTING.md word for word (tests/unit/test_docs.py holds them together).
SUGGESTIONS: dict[ErrorCode, str] = {
    ErrorCode.EMPTY_FILE: "re-export or re-copy the recording; the copy may have failed at the source",
    ErrorCode.AUDIO_DECODE_FAILED: (
        "check the file with `ffprobe FILE`; convert it with `ffmpeg -i FILE out.wav` if it plays elsewhere"
    ),
    ErrorCode.NO_AUDIO_STREAM: "export the recording with its audio",
    ErrorCode.MODEL_UNAVAILABLE: (
        "`.venv/bin/transcriber models install`, or point `whisperx.model_size` at a complete CTranslate2 "
        "folder"
    ),
    ErrorCode.TIMEOUT: "a very long recording on a slow machine: raise `timeout_seconds`",
    ErrorCode.WORKER_CRASHED: (
        "retried automatically; if a file crashes it every time it lands in review — convert it to WAV and drop "
        "it again"
    ),
    ErrorCode.WORKER_START_FAILED: (
        "see `/health` (`crash_loop`, `last_death`) and the worker's last log lines; the file waits without "
        "using up its attempts"
    ),
    ErrorCode.OUT_OF_MEMORY: (
        "give the container more memory, use a smaller model or `compute_type: int8`, lower "
        "`whisperx.batch_size`"
    ),
    ErrorCode.DAEMON_DIED: "nothing: it counts one attempt and goes on",
    ErrorCode.ENGINE_ERROR: "retried; if it repeats, report it with the message",
    ErrorCode.OUTPUT_WRITE_FAILED: (
        "free space / fix permissions; the job waits and is retried (backing off up to "
        "`retry_backoff_max_seconds`) for as long as it takes, without using up its attempts"
    ),
    ErrorCode.INVALID_FILENAME: "send the plain name of a file in the shared folder",
    ErrorCode.INVALID_JSON: "send `Content-Type: application/json` with a JSON object",
    ErrorCode.INVALID_REQUEST: "check the body against `/docs`",
    ErrorCode.INVALID_SETTINGS: "the message names the field",
    ErrorCode.UNSUPPORTED_DEVICE: "use a device from `supported` (`cpu` on a host without a CUDA GPU)",
    ErrorCode.UNSUPPORTED_COMPUTE_TYPE: "use a compute type from `supported` (`int8` runs everywhere)",
    ErrorCode.UNSUPPORTED_MODEL_SIZE: "use a model from `supported`, or install it with `transcriber models install`",
    ErrorCode.UNAUTHORIZED: "`Authorization: Bearer <token>` or `X-API-Key: <token>`",
    ErrorCode.FILE_NOT_FOUND: "copy the file first, or raise the wait for slow shares",
    ErrorCode.RESULT_NOT_FOUND: "poll `/status`, or use `wait`",
    ErrorCode.NOT_FOUND: "see `/docs`",
    ErrorCode.HTTP_ERROR: "see `/docs`",
    ErrorCode.METHOD_NOT_ALLOWED: "see `/docs`",
    ErrorCode.IN_MANUAL_REVIEW: "fix the cause, then `force: true`",
    ErrorCode.NAME_IN_USE: "rename or remove one of them",
    ErrorCode.FILE_EXISTS: "upload it under another name, or send `overwrite=true` or `rename=true`",
    ErrorCode.UNSUPPORTED_EXTENSION: "send an audio file with one of the extensions the message lists",
    ErrorCode.INVALID_LINK: "ask `GET /links` for a new link, or send the API token",
    ErrorCode.REQUEST_TOO_LARGE: "send only the fields of the request",
    ErrorCode.INVALID_EDITS: "the message names the field; GET /edits shows the document to start from",
    ErrorCode.EDIT_CONFLICT: "someone saved corrections since you read them: GET /edits again, redo yours on it",
    ErrorCode.INVALID_RANGE: "`from` and `to` are seconds, 0 <= from < to, `from` before the recording's end",
    ErrorCode.SIDECAR_UNREADABLE: (
        "fix the permissions of the file the message names, or its content if edited by hand; a forced re-run "
        "writes a new `.result`"
    ),
    ErrorCode.DATABASE_UNAVAILABLE: "set `database.url`, or wait for PostgreSQL",
    ErrorCode.INTERNAL_ERROR: "the daemon log has the traceback; please report it",
}


def suggestion_for(code: str | None) -> str | None:
    return SUGGESTIONS.get(code) if code else None  # type: ignore[call-overload]
