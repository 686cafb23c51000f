"""Static checks of the Dockerfile and compose file (no Docker engine runs here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from transcriber.config import SEED_ENV_KEYS, load_config

REPO = Path(__file__).resolve().parents[2]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_copies_only_files_that_exist_and_are_not_dockerignored() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()}
    sources = [arg.split()[:-1] for kind, arg in dockerfile_instructions() if kind == "COPY"]
    assert sources
    for group in sources:
        for source in group:
            assert (REPO / source).exists(), source
            assert source.rstrip("/") not in ignored, source


def test_dockerfile_runs_the_real_entry_point() -> None:
    instructions = dict(dockerfile_instructions())
    assert instructions["FROM"].startswith("python:3.11-slim")
    assert json.loads(instructions["CMD"])[:3] == ["python", "-m", "transcriber"]
    assert (REPO / "transcriber" / "__main__.py").exists()
    assert "8000" in instructions["EXPOSE"]
    assert instructions["USER"] != "root"


def test_compose_mounts_existing_files_and_sets_only_variables_the_config_reads() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    service = compose["services"]["transcriber"]
    for volume in service["volumes"]:
        host, container = volume.split(":")[:2]
        assert (REPO / host).exists(), host
        assert container.startswith("/app/")
    environment = {key: re.sub(r"\$\{\w+:-(.*)\}", r"\1", value) for key, value in service["environment"].items()}
    read_by_loader = set(SEED_ENV_KEYS) | {"CONFIG_PATH"}
    assert set(environment) <= read_by_loader
    config = load_config(REPO / "config.yaml", environ=environment)
    assert config.whisperx.model_size == environment["WHISPERX_MODEL_SIZE"]
    assert config.whisperx.device == environment["WHISPERX_DEVICE"]
    assert service["deploy"]["resources"]["limits"] == {"cpus": "2", "memory": "2g"}
