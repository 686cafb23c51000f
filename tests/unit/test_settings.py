"""One definition of the transcription settings (domain/settings.py), read the same way everywhere."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from transcriber.api.schemas import TranscribeRequest
from transcriber.cli import build_parser
from transcriber.config import WhisperXConfig
from transcriber.domain.settings import OVERRIDABLE, TranscriptionSettings, apply_overrides

DEFAULTS = TranscriptionSettings("base", "ru", 0.1, "int8", "cpu")


def test_values_not_given_keep_the_defaults() -> None:
    assert apply_overrides(DEFAULTS, {}) == DEFAULTS
    assert apply_overrides(DEFAULTS, dict.fromkeys(OVERRIDABLE)) == DEFAULTS


def test_given_values_override_including_falsy_ones() -> None:
    changed = apply_overrides(DEFAULTS, {"model_size": "small", "temperature": 0.0, "language": "en",
                                         "compute_type": "float32", "device": "cuda"})
    assert changed == TranscriptionSettings("small", "en", 0.0, "float32", "cuda")


@pytest.mark.parametrize("spelling", ["auto", ""])
def test_auto_means_detect(spelling: str) -> None:
    assert apply_overrides(DEFAULTS, {"language": spelling}).language is None


def test_keys_that_are_not_settings_are_ignored() -> None:
    assert apply_overrides(DEFAULTS, {"debug": True, "filename": "x.wav", "wait": 3}) == DEFAULTS


def test_every_overridable_setting_is_a_field_of_the_settings_the_config_the_request_and_the_cli() -> None:
    assert set(OVERRIDABLE) <= {field.name for field in fields(TranscriptionSettings)}
    assert set(OVERRIDABLE) <= set(WhisperXConfig.model_fields)
    assert set(OVERRIDABLE) <= set(TranscribeRequest.model_fields)
    parser = build_parser()
    transcribe = next(action for action in parser._subparsers._group_actions  # type: ignore[union-attr]
                      if isinstance(action, argparse._SubParsersAction)).choices["transcribe"]
    assert set(OVERRIDABLE) <= {action.dest for action in transcribe._actions}


def test_the_cli_and_the_api_build_the_same_settings_from_the_same_choices() -> None:
    args = build_parser().parse_args(["transcribe", "call.wav", "--language", "auto", "--temperature", "0"])
    body = TranscribeRequest(filename="call.wav", language="auto", temperature=0)
    assert apply_overrides(DEFAULTS, vars(args)) == apply_overrides(DEFAULTS, body.model_dump())
    assert apply_overrides(DEFAULTS, vars(args)) == TranscriptionSettings("base", None, 0.0, "int8", "cpu")


def test_the_settings_the_api_answers_with_are_the_settings_and_debug() -> None:
    from transcriber.api.schemas import SettingsBody

    assert list(SettingsBody.model_fields) == [*(field.name for field in fields(TranscriptionSettings)), "debug"]


@pytest.mark.parametrize(("body", "field"), [
    ({"min_speakers": 0}, "min_speakers"), ({"max_speakers": 21}, "max_speakers"),
    ({"min_speakers": 3, "max_speakers": 2}, "max_speakers"), ({"min_speakers": "two"}, "min_speakers"),
])
def test_bad_speaker_hints_are_refused_naming_the_field(body: dict, field: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        TranscribeRequest(filename="call.wav", **body)
    assert caught.value.errors()[0]["loc"] == (field,)
    with pytest.raises(ValidationError, match=field):
        WhisperXConfig(**body)


def test_hints_that_contradict_the_configured_ones_are_an_invalid_settings_error() -> None:
    from transcriber.errors import ErrorCode, InvalidSettingsError

    configured = apply_overrides(DEFAULTS, {"max_speakers": 3})
    with pytest.raises(InvalidSettingsError) as caught:
        apply_overrides(configured, {"min_speakers": 5})
    assert caught.value.setting == "max_speakers" and caught.value.code is ErrorCode.INVALID_SETTINGS


def test_speakers_are_given_word_by_word_so_diarize_turns_word_timing_on() -> None:
    settings = apply_overrides(DEFAULTS, {"diarize": True})
    assert settings.diarize and settings.word_timestamps
    assert not apply_overrides(DEFAULTS, {"word_timestamps": False}).word_timestamps


def test_settings_recorded_before_words_and_speakers_are_read_with_them_off() -> None:
    old = {"model_size": "base", "language": "ru", "temperature": 0.1, "compute_type": "int8", "device": "cpu"}
    assert TranscriptionSettings.from_dict(old) == DEFAULTS
    full = apply_overrides(DEFAULTS, {"diarize": True, "min_speakers": 2, "max_speakers": 4})
    assert TranscriptionSettings.from_dict(full.to_dict()) == full


def test_the_config_reads_align_as_word_timestamps() -> None:
    assert WhisperXConfig(align=True).word_timestamps
    assert not WhisperXConfig(align=True, word_timestamps=False).word_timestamps


def test_the_cli_takes_the_speaker_settings_and_refuses_bad_ones(tmp_path, capsys) -> None:
    import json

    from transcriber.cli import main

    args = build_parser().parse_args(
        ["transcribe", "x.wav", "--diarize", "--min-speakers", "2", "--no-word-timestamps"])
    settings = apply_overrides(DEFAULTS, vars(args))
    assert settings.diarize and settings.min_speakers == 2 and settings.word_timestamps  # diarize wins
    config = tmp_path / "config.yaml"
    config.write_text(f"shared_directory: {tmp_path}\n")
    assert main(["--config", str(config), "transcribe", str(tmp_path / "x.wav"), "--max-speakers", "21"]) == 2
    error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert error["error_code"] == "invalid_settings" and "max_speakers" in error["message"]
