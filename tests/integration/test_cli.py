"""The command line, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, write_config


def run_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "transcriber", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_transcribe_a_broken_file_exits_1_with_the_error_code(tmp_path: Path) -> None:
    (tmp_path / "notes.mp3").write_text("not audio")
    completed = run_cli("transcribe", str(tmp_path / "notes.mp3"), config=write_config(tmp_path))
    assert completed.returncode == 1
    assert completed.stdout == ""
    error = json.loads(completed.stderr.strip().splitlines()[-1])
    assert error["error_code"] == "audio_decode_failed"


def test_transcribe_with_a_missing_model_exits_2(tmp_path: Path) -> None:
    completed = run_cli("transcribe", str(tmp_path / "x.wav"), "--model-size", "large-v3",
                        config=write_config(tmp_path))
    assert completed.returncode == 2
    assert json.loads(completed.stderr.strip().splitlines()[-1])["error_code"] == "model_unavailable"


def test_daemon_with_a_missing_model_refuses_to_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"models": {"dir": str(tmp_path / "empty-models")}})
    completed = run_cli(config=config)
    assert completed.returncode == 2
    assert "model 'base' is not installed" in completed.stdout + completed.stderr


def test_models_verify_reports_the_installed_models(tmp_path: Path) -> None:
    completed = run_cli("models", "verify", config=write_config(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert "base: ok" in completed.stdout and "tiny.en: ok" in completed.stdout
    assert "speakers: ok" in completed.stdout
    unknown = run_cli("models", "verify", "speaker", config=write_config(tmp_path))
    assert unknown.returncode == 2 and "known: base, tiny.en, speakers" in unknown.stderr


def test_daemon_refuses_defaults_this_host_cannot_run_in_one_line(tmp_path: Path) -> None:
    # float16 on a CPU made every file fail in the worker (ValueError) and land in
    # manual_review/ after one attempt; the daemon now refuses to start (issue 13).
    completed = run_cli(config=write_config(tmp_path, {"whisperx": {"compute_type": "float16"}}))
    assert completed.returncode == 2
    errors = [line for line in (completed.stdout + completed.stderr).splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "whisperx.compute_type" in errors[0] and "int8" in errors[0]
    cuda = run_cli(config=write_config(tmp_path, {"whisperx": {"device": "cuda"}}))
    assert cuda.returncode == 2 and "whisperx.device" in cuda.stdout + cuda.stderr


def test_transcribe_refuses_a_compute_type_the_host_cannot_run(tmp_path: Path) -> None:
    completed = run_cli("transcribe", str(tmp_path / "x.wav"), "--compute-type", "float16",
                        config=write_config(tmp_path))
    assert completed.returncode == 2
    assert json.loads(completed.stderr.strip().splitlines()[-1])["error_code"] == "unsupported_compute_type"


def test_config_path_is_the_default_of_config(tmp_path: Path) -> None:
    # The image sets CONFIG_PATH and runs the CLI without --config (issue 13, point 9).
    config = write_config(tmp_path, {"models": {"dir": str(tmp_path / "models-from-config-path")}})
    completed = subprocess.run([sys.executable, "-m", "transcriber", "models", "verify", "base"],
                               capture_output=True, text=True, timeout=120, cwd=tmp_path,
                               env={**os.environ, "CONFIG_PATH": str(config)})
    assert completed.returncode == 2
    assert "models-from-config-path" in completed.stderr
