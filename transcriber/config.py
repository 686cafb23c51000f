"""Configuration: one frozen settings object, loaded and validated once at start.

Sources, later ones winning: built-in defaults, the YAML file (``--config`` or
``CONFIG_PATH``), then environment variables: the seed's ``LOG_LEVEL``,
``WHISPERX_MODEL_SIZE``, ``WHISPERX_LANGUAGE``, ``WHISPERX_DEVICE``,
``TRANSCRIBER_API_TOKEN``, ``DATABASE_URL``, and ``TRANSCRIBER_<SECTION>__<KEY>``
for everything else.  A bad value raises :class:`ConfigError` whose message is
one line naming the key (the CLI turns it into exit code 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from transcriber.domain.analysis import DEFAULT_MIN_SILENCE_SECONDS
from transcriber.domain.settings import COMPUTE_TYPES, DEVICES, SPEAKER_HINTS, language_of, speaker_hints_error
from transcriber.errors import ConfigError
from transcriber.exports import FILE_FORMATS

DEFAULT_AUDIO_EXTENSIONS = (
    "mp3", "wav", "m4a", "ogg", "oga", "opus", "webm", "flac", "aac", "wma", "mp4", "mkv", "mov",
)



class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ApiConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    token: SecretStr = SecretStr("")
    allow_unauthenticated: bool = False
    file_wait_attempts: int = Field(5, ge=1)
    file_wait_interval: float = Field(1.0, gt=0)
    # The specification's limit for ``wait``; a waiting client costs a parked
    # coroutine, no thread (api_long_poll.py), so hundreds can wait this long.
    max_wait_seconds: float = Field(1800.0, ge=0)
    debug: bool = False
    access_log: bool = False  # one line per HTTP request, in the log format of logs.py
    public_docs: bool = False  # /docs and /openapi.json without the token
    # The specification's keys.  The folder has one owner (its lock), so the API
    # runs in the daemon's process: more than one worker process is refused.
    workers: int = Field(1, ge=1, description="one: the daemon owns the folder alone")
    max_concurrent_tasks: int | None = Field(None, ge=1, le=64, description="= processing.max_concurrent_tasks")

    @field_validator("workers")
    @classmethod
    def _one_process(cls, value: int) -> int:
        if value > 1:
            raise ValueError("the API runs inside the daemon, which owns the shared folder alone (its lock), "
                             "so it has one process; for parallel transcriptions set max_concurrent_tasks")
        return value


class WhisperXConfig(_Section):
    model_size: str = "base"
    language: str | None = "ru"
    temperature: float = Field(0.1, ge=0, le=1)
    compute_type: Literal[COMPUTE_TYPES] = "int8"  # type: ignore[valid-type]
    device: Literal[DEVICES] = "cpu"  # type: ignore[valid-type]
    batch_size: int = Field(4, ge=1)
    beam_size: int = Field(5, ge=1)
    cpu_threads: int = Field(0, ge=0, description="0 lets CTranslate2 use every core")
    word_timestamps: bool = False
    diarize: bool = False
    min_speakers: int | None = Field(None, ge=SPEAKER_HINTS[0], le=SPEAKER_HINTS[1])
    max_speakers: int | None = Field(None, ge=SPEAKER_HINTS[0], le=SPEAKER_HINTS[1])
    hf_token: SecretStr = SecretStr("")
    preload_model: bool = True
    model_idle_unload_seconds: float = Field(900.0, gt=0)
    debug: bool = False  # the specification's default of a request's ``debug``

    @field_validator("language", mode="before")
    @classmethod
    def _auto_means_detect(cls, value: Any) -> Any:
        return language_of(value)

    @model_validator(mode="before")
    @classmethod
    def _align_is_word_timestamps(cls, data: Any) -> Any:
        """``align`` (before word timing was offline) is read as ``word_timestamps``."""
        if isinstance(data, dict) and "align" in data:
            data = dict(data)
            align = data.pop("align")
            data.setdefault("word_timestamps", align)
        return data

    @model_validator(mode="after")
    def _speaker_hints(self) -> WhisperXConfig:
        error = speaker_hints_error(self.min_speakers, self.max_speakers)
        if error is not None:
            raise ValueError(error[1])
        return self


class ProcessingConfig(_Section):
    max_retry_attempts: int = Field(3, ge=1)
    timeout_seconds: float = Field(3600.0, gt=0)
    model_load_timeout_seconds: float = Field(600.0, gt=0)
    max_concurrent_tasks: int = Field(1, ge=1, le=64)
    retry_backoff_seconds: float = Field(30.0, ge=0)
    retry_backoff_max_seconds: float = Field(900.0, ge=0)
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    worker_memory_limit_mb: int = Field(4096, ge=256)
    # after a job, its freed heap given back, a worker holding more is restarted warm; 0: off
    worker_idle_memory_limit_mb: int = Field(1400, ge=0)
    worker_nice: int = Field(10, ge=0, le=19)
    progress_interval_seconds: float = Field(1.0, gt=0)
    # false keeps what interrupted atomic writes left behind (``.tmp-*``), for a
    # post-mortem; true (the default) removes it at start.
    cleanup_temp_files: bool = True


class WatchConfig(_Section):
    stability_seconds: float = Field(2.0, ge=0)
    close_settle_seconds: float = Field(0.25, ge=0)
    rescan_interval_seconds: float = Field(30.0, gt=0)
    observer: Literal["auto", "inotify", "polling"] = "auto"
    polling_interval_seconds: float = Field(2.0, gt=0)
    recursive: bool = False
    extensions: tuple[str, ...] = DEFAULT_AUDIO_EXTENSIONS

    @field_validator("extensions", mode="after")
    @classmethod
    def _normalise_extensions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(ext.lower().lstrip(".") for ext in value)
        if not all(cleaned):
            raise ValueError("an extension may not be empty")
        return cleaned


DIARIZATION_BACKENDS = ("auto", "campplus", "pyannote")


class DiarizationConfig(_Section):
    """Who speaks when (``whisperx.diarize`` turns it on): docs/CONFIGURATION.md, diarization."""

    backend: Literal[DIARIZATION_BACKENDS] = "auto"  # type: ignore[valid-type]
    # A local pyannote pipeline: a folder with its config.yaml (or its path); empty: none.
    pyannote_pipeline: str = ""


class AnalysisConfig(_Section):
    """The call facts of every ``.result`` (its ``analysis``): docs/CONFIGURATION.md, analysis."""

    # The shortest pause listed as a silence mark. The speech detector joins gaps under
    # 0.1 s, so less marks nothing more; past an hour it is seconds mistaken for milliseconds.
    min_silence_seconds: float = Field(DEFAULT_MIN_SILENCE_SECONDS, ge=0.1, le=3600)


class UploadConfig(_Section):
    """POST /upload: docs/CONFIGURATION.md, upload."""

    max_bytes: int = Field(200 * 1024 * 1024, ge=1, description="the largest audio file a client may upload")


class DatabaseConfig(_Section):
    url: SecretStr = SecretStr("")


class ModelsConfig(_Section):
    dir: Path = Path("models")
    cache_dir: Path = Path("models/cache")
    allow_download: bool = False


class OutputConfig(_Section):
    json_indent: int | None = Field(2, ge=0)
    # Renderings written next to the .result (call.mp3.srt, …), as subtitle daemons do.
    write_formats: tuple[Literal[FILE_FORMATS], ...] = ()  # type: ignore[valid-type]


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Config(_Section):
    shared_directory: Path = Path("shared")
    api: ApiConfig = ApiConfig()
    upload: UploadConfig = UploadConfig()
    whisperx: WhisperXConfig = WhisperXConfig()
    diarization: DiarizationConfig = DiarizationConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    processing: ProcessingConfig = ProcessingConfig()
    watch: WatchConfig = WatchConfig()
    database: DatabaseConfig = DatabaseConfig()
    models: ModelsConfig = ModelsConfig()
    output: OutputConfig = OutputConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _one_debug_default(self) -> Config:
        """``whisperx.debug`` (the specification's key) and ``api.debug`` are one default:
        either turns it on, and the code reads ``api.debug`` alone."""
        if self.whisperx.debug and not self.api.debug:
            return self.model_copy(update={"api": self.api.model_copy(update={"debug": True})})
        return self

    @model_validator(mode="after")
    def _one_concurrency(self) -> Config:
        """``api.max_concurrent_tasks`` (the specification's name) sets the number of slots."""
        wanted = self.api.max_concurrent_tasks
        if wanted is None:
            return self
        explicit = "max_concurrent_tasks" in self.processing.model_fields_set
        if explicit and self.processing.max_concurrent_tasks != wanted:
            raise ValueError(f"api.max_concurrent_tasks ({wanted}) and processing.max_concurrent_tasks "
                             f"({self.processing.max_concurrent_tasks}) disagree; set one of them")
        processing = self.processing.model_copy(update={"max_concurrent_tasks": wanted})
        return self.model_copy(update={"processing": processing})


# The seed's variable names, kept for compatibility with its deployments.
SEED_ENV_KEYS: dict[str, tuple[str, ...]] = {
    "LOG_LEVEL": ("logging", "level"),
    "WHISPERX_MODEL_SIZE": ("whisperx", "model_size"),
    "WHISPERX_LANGUAGE": ("whisperx", "language"),
    "WHISPERX_DEVICE": ("whisperx", "device"),
    "TRANSCRIBER_API_TOKEN": ("api", "token"),
    "DATABASE_URL": ("database", "url"),
}
ENV_PREFIX = "TRANSCRIBER_"


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file (if any), apply the environment, validate."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = _read_yaml(path) if path is not None else {}
    origins: dict[tuple[str, ...], str] = {}
    for name, key_path, value in _env_overrides(environ):
        _set_path(data, key_path, value)
        origins[key_path] = name
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origins)) from exc
    return _resolve_paths(config, path.parent if path is not None else Path.cwd())


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML ({_one_line(str(exc))})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of sections")
    return data


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[str, tuple[str, ...], Any]]:
    overrides = []
    for name, value in environ.items():
        if name in SEED_ENV_KEYS:
            overrides.append((name, SEED_ENV_KEYS[name], _parse_env_value(value)))
        elif name.startswith(ENV_PREFIX) and name not in SEED_ENV_KEYS:
            key_path = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
            if key_path[0] in Config.model_fields:
                overrides.append((name, key_path, _parse_env_value(value)))
    # Seed names first so that the precise TRANSCRIBER_ form wins a conflict.
    overrides.sort(key=lambda item: item[0] not in SEED_ENV_KEYS)
    return overrides


def _parse_env_value(value: str) -> Any:
    """Environment values are YAML scalars or flow lists: ``10``, ``true``, ``[mp3, wav]``."""
    try:
        return yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        return value


def _set_path(data: dict[str, Any], key_path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in key_path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[key_path[-1]] = value


def _describe(exc: ValidationError, origins: dict[tuple[str, ...], str]) -> str:
    error = exc.errors()[0]
    key_path = tuple(str(part) for part in error["loc"] if not str(part).isdigit())
    key = ".".join(key_path) or "configuration"
    unknown = error["type"] == "extra_forbidden"
    message = str(error["msg"]).removeprefix("Value error, ")
    if unknown:
        problem = "unknown key"
    elif key_path:
        problem = f"{message} (got {error.get('input')!r})"
    else:  # a rule across sections names its keys itself
        problem = message
    origin = origins.get(key_path)
    where = f" [from {origin}]" if origin else ""
    return f"config error: {key}: {_one_line(problem)}{where}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _resolve_paths(config: Config, base: Path) -> Config:
    """Relative paths in the file are relative to the file's folder, as users expect."""

    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    models = config.models.model_copy(
        update={"dir": absolute(config.models.dir), "cache_dir": absolute(config.models.cache_dir)}
    )
    return config.model_copy(update={"shared_directory": absolute(config.shared_directory), "models": models})
