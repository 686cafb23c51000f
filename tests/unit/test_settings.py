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
