"""Static checks of the Dockerfile, compose file and systemd unit (no Docker engine runs here).

They stand in for building the image: every file the image copies exists and
is not excluded, the commands it runs are the real entry point, port and
route, and the environment compose sets is exactly what the config loader reads.
"""

from __future__ import annotations

import ast
import configparser
import json
import re
from pathlib import Path

import pytest
import yaml

from transcriber.config import SEED_ENV_KEYS, Config, load_config
from transcriber.server import check_exposure

REPO = Path(__file__).resolve().parents[2]
ENV_REFERENCE = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, argument = line.strip().partition(" ")
            instructions.append((keyword.upper(), argument.strip()))
    return instructions


def instruction(keyword: str) -> str:
    return [argument for kind, argument in dockerfile() if kind == keyword][-1]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def expand(value: str, environ: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message}."""
    return ENV_REFERENCE.sub(lambda m: environ.get(m.group(1), m.group(2) or ""), str(value))


def test_dockerfile_copies_only_files_that_exist_and_are_not_dockerignored() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()}
    copies = [argument.split()[:-1] for kind, argument in dockerfile() if kind == "COPY"]
    assert copies
    for sources in copies:
        for source in sources:
            assert (REPO / source).exists(), source
            assert source.split("/")[0].rstrip("/") not in ignored, source


def test_the_model_layer_needs_only_the_files_it_copies() -> None:
    """The models are installed before the code is copied (a code change must not
    re-download them), from a bootstrap copy of models.py and what it imports."""
    tree = ast.parse((REPO / "transcriber" / "models.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    ours = {name.split(".")[1] for name in imported if name.startswith("transcriber.")}
    copied = next(argument for kind, argument in dockerfile() if kind == "COPY" and "bootstrap" in argument)
    assert {f"transcriber/{name}.py" for name in ours} <= set(copied.split())


def test_layers_put_torch_and_dependencies_before_the_code() -> None:
    steps = [argument for _, argument in dockerfile()]
    torch = next(i for i, step in enumerate(steps) if "torch==" in step)
    requirements = next(i for i, step in enumerate(steps) if "-r requirements.txt" in step)
    code = next(i for i, step in enumerate(steps) if step.startswith("transcriber ./transcriber"))
    assert torch < requirements < code
    assert "${TORCH_VARIANT}" in steps[torch] and "ARG TORCH_VARIANT=cpu" in (REPO / "Dockerfile").read_text()


def test_dockerfile_runs_the_real_entry_point_port_and_health_route() -> None:
    assert instruction("FROM").startswith("python:3.11-slim")
    command = json.loads(instruction("CMD"))
    assert command[:3] == ["python", "-m", "transcriber"] and (REPO / "transcriber" / "__main__.py").exists()
    config_path = command[command.index("--config") + 1]
    assert f"CONFIG_PATH={config_path}" in instruction("ENV")
    assert instruction("EXPOSE") == str(Config().api.port)
    health = instruction("HEALTHCHECK")
    assert f"http://127.0.0.1:{Config().api.port}/health" in health
    assert instruction("USER") == "transcriber"


def test_the_health_route_exists_and_needs_no_token() -> None:
    from transcriber.api import create_app

    source = (REPO / "transcriber" / "api.py").read_text()
    assert '@app.get("/health"' in source
    health_block = source[source.index('@app.get("/health"'):source.index("def health")]
    assert "authorised" not in health_block
    assert create_app  # importable without torch


def test_compose_mounts_existing_files_and_declares_its_volumes() -> None:
    document = compose()
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (REPO / source).exists(), (name, source)
            else:
                assert source in document["volumes"], (name, source)
            assert target.startswith(("/app/", "/var/lib/postgresql"))
        if "build" in service:
            assert (REPO / service["build"]["context"] / "Dockerfile").exists()
    transcriber = document["services"]["transcriber"]
    assert transcriber["restart"] == "unless-stopped"
    assert transcriber["deploy"]["resources"]["limits"] == {"cpus": "2", "memory": "2g"}
    assert transcriber["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in document["services"]["postgres"]
    assert document["services"]["postgres"]["image"].startswith("postgres:16")
    assert document["services"]["transcriber-gpu"]["profiles"] == ["gpu"]


@pytest.mark.parametrize("service", ["transcriber", "transcriber-gpu"])
def test_compose_environment_is_exactly_what_the_config_loader_reads(service: str) -> None:
    environment = compose()["services"][service]["environment"]
    operator = {"TRANSCRIBER_API_TOKEN": "a-long-random-token", "WHISPERX_MODEL_SIZE": "tiny.en"}
    environ = {key: expand(value, operator) for key, value in environment.items()}
    for key in environ:
        if key in SEED_ENV_KEYS or key == "CONFIG_PATH":
            continue
        assert key.startswith("TRANSCRIBER_") and "__" in key, key
        section, field = key[len("TRANSCRIBER_"):].lower().split("__")
        section_model = Config.model_fields[section].annotation
        assert field in section_model.model_fields, key  # type: ignore[union-attr]
    config = load_config(REPO / "config.yaml", environ=environ)
    assert config.whisperx.model_size == "tiny.en"
    assert config.whisperx.device == environ["WHISPERX_DEVICE"]
    assert config.api.host == "0.0.0.0" and config.api.token.get_secret_value() == "a-long-random-token"
    assert config.database.url.get_secret_value().startswith("postgresql://transcriber:")
    assert "@postgres:5432/" in config.database.url.get_secret_value()
    check_exposure(config)  # listening on 0.0.0.0 is allowed because a token is required
    assert "?" in environment["TRANSCRIBER_API_TOKEN"]  # compose refuses to start without one
    mounted = [v.split(":")[1] for v in compose()["services"][service]["volumes"]]
    assert environ["CONFIG_PATH"] in mounted


def test_systemd_unit_runs_the_daemon_and_stops_it_gracefully() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "deploy" / "transcriber.service")
    service = unit["Service"]
    assert re.search(r"\.venv/bin/python -m transcriber --config \S+config\.yaml$", service["ExecStart"])
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > Config().processing.shutdown_grace_seconds
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # config errors exit 2 (tests/unit/test_config.py)
    assert unit["Install"]["WantedBy"] == "multi-user.target"
