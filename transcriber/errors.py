"""One error hierarchy with stable ``error_code`` strings.

The codes are a contract: they appear in sidecars, API bodies and the
database, and docs/TROUBLESHOOTING.md explains each.  Engine failures are
classified once, at the engine boundary, into one of these classes.
"""

from __future__ import annotations


class TranscriberError(Exception):
    """Base of every error the daemon raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(TranscriberError):
    """A bad configuration value; the daemon refuses to start."""

    code = "config_invalid"


class AlreadyRunningError(TranscriberError):
    """Another daemon holds the folder's lock."""

    code = "already_running"


class ModelError(TranscriberError):
    """A model is missing, incomplete or fails its checksum."""

    code = "model_unavailable"


class UnsupportedSettingError(TranscriberError):
    """A setting this host cannot run (a device it lacks, a compute type its device
    cannot compute); ``code`` names the setting: ``unsupported_device``, …"""

    def __init__(self, setting: str, message: str, supported: tuple[str, ...]) -> None:
        super().__init__(message)
        self.setting = setting
        self.supported = supported
        self.code = f"unsupported_{setting}"


class Interrupted(TranscriberError):
    """A running job was stopped on purpose (cancel, shutdown, new settings)."""

    code = "interrupted"


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
    code = "empty_file"


class AudioDecodeError(PermanentJobError):
    code = "audio_decode_failed"


class NoAudioStreamError(PermanentJobError):
    code = "no_audio_stream"


class ModelUnavailableError(PermanentJobError):
    code = "model_unavailable"


class TransientJobError(JobError):
    pass


class JobTimeoutError(TransientJobError):
    code = "timeout"


class WorkerCrashedError(TransientJobError):
    code = "worker_crashed"


class WorkerStartError(TransientJobError):
    """The worker died before it was ready for work: the host's trouble, not the
    file's, so it uses up no attempt.  Counting it sent every file of an image
    whose workers could not start to ``manual_review/`` (issue 13)."""

    code = "worker_start_failed"
    uses_attempt = False


class OutOfMemoryError(TransientJobError):
    code = "out_of_memory"


class DaemonDiedError(TransientJobError):
    """The daemon itself stopped abruptly while the file was processing."""

    code = "daemon_died"


class EngineError(TransientJobError):
    """The engine raised something we could not classify more precisely."""

    code = "engine_error"


class OutputWriteError(TransientJobError):
    """The transcript could not be written (disk full, read-only folder).

    The folder's trouble, not the file's: counting it as a failed attempt sent
    a good file to ``manual_review/`` after a disk was full for a while
    (tests/reliability/test_disk_trouble.py), so it is retried until it fits.
    """

    code = "output_write_failed"
    uses_attempt = False


_JOB_ERRORS: dict[str, type[JobError]] = {
    cls.code: cls
    for cls in (
        EmptyFileError, AudioDecodeError, NoAudioStreamError, ModelUnavailableError,
        JobTimeoutError, WorkerCrashedError, WorkerStartError, OutOfMemoryError, DaemonDiedError,
        EngineError, OutputWriteError,
    )
}


def job_error_from_code(code: str, message: str) -> JobError:
    """Rebuild an error sent across the worker pipe as (code, message)."""
    return _JOB_ERRORS.get(code, EngineError)(message)


ERROR_CODES: tuple[str, ...] = tuple(_JOB_ERRORS)


# The next step a person should take, by error code: sent as ``suggestion`` in the
# API's error bodies and error objects, and the "what to do" column of
# docs/TROUBLESHOOTING.md word for word (tests/unit/test_docs.py holds them together).
SUGGESTIONS: dict[str, str] = {
    "empty_file": "re-export or re-copy the recording; the copy may have failed at the source",
    "audio_decode_failed": "check the file with `ffprobe FILE`; convert it with `ffmpeg -i FILE out.wav` if it plays "
                           "elsewhere",
    "no_audio_stream": "export the recording with its audio",
    "model_unavailable": "`.venv/bin/transcriber models install`, or point `whisperx.model_size` at a complete "
                         "CTranslate2 folder",
    "timeout": "a very long recording on a slow machine: raise `timeout_seconds`",
    "worker_crashed": "retried automatically; if a file crashes it every time it lands in review — convert it to WAV "
                      "and drop it again",
    "worker_start_failed": "see `/health` (`crash_loop`, `last_death`) and the worker's last log lines; the file "
                           "waits without using up its attempts",
    "out_of_memory": "give the container more memory, use a smaller model or `compute_type: int8`, lower "
                     "`whisperx.batch_size`",
    "daemon_died": "nothing: it counts one attempt and goes on",
    "engine_error": "retried; if it repeats, report it with the message",
    "output_write_failed": "free space / fix permissions; the job waits and is retried (backing off up to "
                           "`retry_backoff_max_seconds`) for as long as it takes, without using up its attempts",
    "invalid_filename": "send the plain name of a file in the shared folder",
    "invalid_json": "send `Content-Type: application/json` with a JSON object",
    "invalid_request": "check the body against `/docs`",
    "invalid_settings": "the message names the field",
    "unsupported_device": "use a device from `supported` (`cpu` on a host without a CUDA GPU)",
    "unsupported_compute_type": "use a compute type from `supported` (`int8` runs everywhere)",
    "unsupported_model_size": "use a model from `supported`, or install it with `transcriber models install`",
    "unauthorized": "`Authorization: Bearer <token>` or `X-API-Key: <token>`",
    "file_not_found": "copy the file first, or raise the wait for slow shares",
    "result_not_found": "poll `/status`, or use `wait`",
    "not_found": "see `/docs`",
    "method_not_allowed": "see `/docs`",
    "in_manual_review": "fix the cause, then `force: true`",
    "name_in_use": "rename or remove one of them",
    "request_too_large": "send only the fields of the request",
    "database_unavailable": "set `database.url`, or wait for PostgreSQL",
    "internal_error": "the daemon log has the traceback; please report it",
}


def suggestion_for(code: str | None) -> str | None:
    return SUGGESTIONS.get(code) if code else None
