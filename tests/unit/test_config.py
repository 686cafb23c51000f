from __future__ import annotations

from pathlib import Path

import pytest

from transcriber.cli import main
from transcriber.config import Config, load_config
from transcriber.errors import ConfigError

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


def test_the_shipped_config_has_the_seed_defaults() -> None:
    config = load_config(REPO_CONFIG, environ={})
    w, p = config.whisperx, config.processing
    assert (w.model_size, w.language, w.temperature, w.compute_type, w.device) == ("base", "ru", 0.1, "int8", "cpu")
    assert (p.max_retry_attempts, p.timeout_seconds, p.max_concurrent_tasks) == (3, 3600, 1)
    assert config.watch.stability_seconds == 2
    assert config.analysis.min_silence_seconds == 2
    assert config.shared_directory == REPO_CONFIG.parent / "shared"
    assert config == load_config(None, environ={}).model_copy(
        update={"shared_directory": config.shared_directory, "models": config.models})


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "config.yaml"
    path.parent.mkdir()
    path.write_text("shared_directory: ../drop\nmodels: {dir: m}\n")
    config = load_config(path, environ={})
    assert config.shared_directory == tmp_path / "drop"
    assert config.models.dir == tmp_path / "conf" / "m"


@pytest.mark.parametrize(
    ("environ", "getter", "expected"),
    [
        ({"WHISPERX_MODEL_SIZE": "tiny.en"}, lambda c: c.whisperx.model_size, "tiny.en"),
        ({"WHISPERX_LANGUAGE": "en"}, lambda c: c.whisperx.language, "en"),
        ({"WHISPERX_LANGUAGE": "auto"}, lambda c: c.whisperx.language, None),
        ({"WHISPERX_DEVICE": "cuda"}, lambda c: c.whisperx.device, "cuda"),
        ({"LOG_LEVEL": "debug"}, lambda c: c.logging.level, "DEBUG"),
        ({"TRANSCRIBER_PROCESSING__TIMEOUT_SECONDS": "10"}, lambda c: c.processing.timeout_seconds, 10),
        ({"TRANSCRIBER_WATCH__EXTENSIONS": "[mp3, WAV]"}, lambda c: c.watch.extensions, ("mp3", "wav")),
        ({"TRANSCRIBER_WATCH__RECURSIVE": "true"}, lambda c: c.watch.recursive, True),
        ({"TRANSCRIBER_ANALYSIS__MIN_SILENCE_SECONDS": "5"}, lambda c: c.analysis.min_silence_seconds, 5.0),
        ({"TRANSCRIBER_API_TOKEN": "s3cret"}, lambda c: c.api.token.get_secret_value(), "s3cret"),
        ({"DATABASE_URL": "postgresql://x/y"}, lambda c: c.database.url.get_secret_value(), "postgresql://x/y"),
        ({"TRANSCRIBER_SHARED_DIRECTORY": "/data/in"}, lambda c: c.shared_directory, Path("/data/in")),
        ({"WHISPERX_LANGUAGE": "en", "TRANSCRIBER_WHISPERX__LANGUAGE": "de"}, lambda c: c.whisperx.language, "de"),
        ({"UNRELATED": "1", "TRANSCRIBER_NOT_A_SECTION": "x"}, lambda c: c.whisperx.model_size, "base"),
    ],
)
def test_environment_overrides(environ: dict[str, str], getter, expected) -> None:
    assert getter(load_config(REPO_CONFIG, environ=environ)) == expected


@pytest.mark.parametrize(
    ("yaml_text", "environ", "message"),
    [
        ("whisperx: {temperature: hot}", {}, "config error: whisperx.temperature: "),
        ("whisperx: {compute_type: int4}", {}, "config error: whisperx.compute_type: "),
        ("processing: {max_retry_attempts: 0}", {}, "config error: processing.max_retry_attempts: "),
        ("watch: {observer: magic}", {}, "config error: watch.observer: "),
        ("analysis: {min_silence_seconds: 0}", {}, "config error: analysis.min_silence_seconds: "),
        ("analysis: {min_silence_seconds: 2000 ms}", {}, "config error: analysis.min_silence_seconds: "),
        ("analysis: {min_silence_seconds: 7200}", {}, "config error: analysis.min_silence_seconds: "),
        ("whisperx: {model_sise: base}", {}, "config error: whisperx.model_sise: unknown key"),
        ("", {"TRANSCRIBER_PROCESSING__TIMEOUT_SECONDS": "-1"},
         "config error: processing.timeout_seconds: Input should be greater than 0 (got -1) "
         "[from TRANSCRIBER_PROCESSING__TIMEOUT_SECONDS]"),
        ("", {"WHISPERX_DEVICE": "tpu"}, "config error: whisperx.device: "),
        ("- just\n- a list", {}, "top level must be a mapping"),
        ("whisperx: [unclosed", {}, "not valid YAML"),
    ],
)
def test_bad_values_name_the_key_in_one_line(tmp_path: Path, yaml_text: str, environ, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_cli_exits_2_with_one_line_for_a_bad_value(tmp_path: Path, capsys) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("processing: {timeout_seconds: soon}\n")
    assert main(["--config", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("config error: processing.timeout_seconds:")
    assert len(error.splitlines()) == 1


def test_secrets_stay_out_of_repr() -> None:
    config = load_config(None, environ={"TRANSCRIBER_API_TOKEN": "s3cret", "DATABASE_URL": "postgresql://u:pw@h/db"})
    assert "s3cret" not in repr(config) and "pw@" not in repr(config)


def test_config_is_frozen() -> None:
    with pytest.raises(ValueError):
        Config().whisperx.language = "en"  # type: ignore[misc]


# The specification's example configuration, key for key (issue 13): every key loads.
SPECIFICATION_CONFIG = """\
api:
  host: 0.0.0.0
  port: 8000
  workers: 1
  max_concurrent_tasks: 2
shared_directory: /app/shared
whisperx:
  model_size: base
  language: ru
  temperature: 0.1
  compute_type: int8
  device: cpu
  debug: false
processing:
  max_retry_attempts: 3
  timeout_seconds: 3600
  cleanup_temp_files: true
"""


def test_the_specifications_example_config_loads_with_its_meaning(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(SPECIFICATION_CONFIG)
    config = load_config(path, environ={})
    assert config.api.host == "0.0.0.0" and config.api.workers == 1
    assert config.processing.max_concurrent_tasks == 2  # api.max_concurrent_tasks: concurrent jobs
    assert config.processing.cleanup_temp_files is True
    assert config.whisperx.debug is False
    assert config.shared_directory == Path("/app/shared")


def test_more_than_one_api_worker_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(SPECIFICATION_CONFIG.replace("workers: 1", "workers: 4"))
    with pytest.raises(ConfigError, match=r"^config error: api\.workers: .*owns the shared folder alone") as caught:
        load_config(path, environ={})
    assert "\n" not in caught.value.message


def test_two_different_concurrency_settings_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("api: {max_concurrent_tasks: 2}\nprocessing: {max_concurrent_tasks: 3}\n")
    with pytest.raises(ConfigError, match="disagree"):
        load_config(path, environ={})


def test_whisperx_debug_is_the_default_debug_flag(tmp_path: Path) -> None:

    path = tmp_path / "config.yaml"
    path.write_text("whisperx: {debug: true}\n")
    config = load_config(path, environ={})
    assert config.api.debug is True  # what the API and the daemon's jobs read
    assert load_config(None, environ={}).api.debug is False
